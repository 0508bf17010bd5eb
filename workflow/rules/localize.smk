# Localization: where each run puts the cells on the test images (points from its maps, matched to
# the true dots); the threshold rule's threshold is chosen on the validation split.


rule localize:
    input:
        unpack(evaluation_inputs),
    output:
        localization=run_path(runs.LOCALIZATION),
        points=run_path(runs.POINTS),
        summary=run_path(runs.LOCALIZATION_SUMMARY),
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        run_dir=subpath(output.localization, parent=True),
    threads: 4
    resources:
        gpu=GPUS,
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    log:
        "results/logs/localize/{dataset}_{method}_seed{seed}.log",
    shell:
        run_stage("localize")
