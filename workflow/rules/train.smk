# Training: one job per dataset, method and seed; a second stage for methods with a localizer.
# A job that is interrupted resumes from its checkpoint when the workflow is run again.

rule train:
    input:
        prepared=PREPARED,
        split=SPLIT,
        method=method_sources,
    output:
        model=run_path(runs.COUNTER),
        log_csv=run_path(runs.COUNTER_LOG),
        metadata=run_path(runs.METADATA),
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        run_dir=subpath(output.model, parent=True),
    threads: 4
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=360,
    conda:
        CONDA_ENV
    log:
        "results/logs/train/{dataset}_{method}_seed{seed}.log",
    shell:
        run_stage("train")


rule train_localizer:
    input:
        prepared=PREPARED,
        split=SPLIT,
        counter=run_path(runs.COUNTER),
        method=method_sources,
    output:
        model=run_path(runs.LOCALIZER),
        log_csv=run_path(runs.LOCALIZER_LOG),
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        run_dir=subpath(output.model, parent=True),
    threads: 4
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=180,
    conda:
        CONDA_ENV
    log:
        "results/logs/localizer/{dataset}_{method}_seed{seed}.log",
    shell:
        run_stage("localizer")
