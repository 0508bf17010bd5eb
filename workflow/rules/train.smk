# Training: one job per dataset, method and seed; a second stage for methods with a localizer.
# A job that is interrupted resumes from its checkpoint when the workflow is run again.

rule train:
    input:
        prepared=PREPARED,
        split=SPLIT,
        method=method_sources,
    output:
        model=run_path("counter.pt"),
        log_csv=run_path("counter_log.csv"),
        metadata=run_path("metadata.json"),
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
        counter=run_path("counter.pt"),
        method=method_sources,
    output:
        model=run_path("localizer.pt"),
        log_csv=run_path("localizer_log.csv"),
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
