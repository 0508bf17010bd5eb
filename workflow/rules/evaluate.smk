# Evaluation: per test image counts (summed over an image's patches) and metrics.


rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        predictions=run_path(runs.PREDICTIONS),
        metrics=run_path(runs.METRICS),
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        run_dir=subpath(output.metrics, parent=True),
    threads: 4
    resources:
        gpu=GPUS,
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    log:
        "results/logs/evaluate/{dataset}_{method}_seed{seed}.log",
    shell:
        run_stage("evaluate")
