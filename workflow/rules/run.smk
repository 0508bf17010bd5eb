# A run: one job per dataset, method and seed (and training subset, for the data-efficiency study) trains the counter (and the localizer, for a method
# that declares one), evaluates it and localizes the test cells, in one process (python -m
# cellbench run): the device is held once per run, and Python, torch and the device start once.
# An interrupted job resumes its training from the checkpoint when the workflow is run again.

RUN_OUTPUTS = {
    "model": run_path(runs.COUNTER),
    "log_csv": run_path(runs.COUNTER_LOG),
    "metadata": run_path(runs.METADATA),
    "predictions": run_path(runs.PREDICTIONS),
    "metrics": run_path(runs.METRICS),
    "localization": run_path(runs.LOCALIZATION),
    "points": run_path(runs.POINTS),
    "summary": run_path(runs.LOCALIZATION_SUMMARY),
}
LOCALIZER_OUTPUTS = {"localizer": run_path(runs.LOCALIZER), "localizer_log": run_path(runs.LOCALIZER_LOG)}
# Methods with a localizer have more outputs: their runs match the second rule only.
LOCALIZED_PATTERN = "(?:" + "|".join(LOCALIZED) + ")" if LOCALIZED else "(?!)"


rule run:
    input:
        prepared=PREPARED,
        split=RUN_SPLIT,
        method=method_sources,
    output:
        **RUN_OUTPUTS,
    wildcard_constraints:
        # Any name but those: the lookahead refuses a localized name followed by a non-name character.
        method=rf"(?!{LOCALIZED_PATTERN}(?![A-Za-z0-9_]))[A-Za-z0-9_]+",
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        cells=lambda w: dataset_cells_json(w.dataset),
        run_dir=subpath(output.metrics, parent=True),
    threads: run_threads
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=420,
    conda:
        CONDA_ENV
    log:
        "results/logs/run/{dataset}_{method}_seed{seed}{subset}.log",
    shell:
        run_stage("run")


rule run_localized:
    input:
        prepared=PREPARED,
        split=RUN_SPLIT,
        method=method_sources,
    output:
        **RUN_OUTPUTS,
        **LOCALIZER_OUTPUTS,
    wildcard_constraints:
        method=LOCALIZED_PATTERN,
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        cells=lambda w: dataset_cells_json(w.dataset),
        run_dir=subpath(output.metrics, parent=True),
    threads: run_threads
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=600,
    conda:
        CONDA_ENV
    log:
        "results/logs/run/{dataset}_{method}_seed{seed}{subset}.log",
    shell:
        run_stage("run")
