# Training: one job per dataset, method and seed; a second stage for methods with a localizer.
# A job that is interrupted resumes from its checkpoint when the workflow is run again.

rule train:
    input:
        prepared="results/prepared/{dataset}/patches.npz",
        split="results/splits/{dataset}/seed{seed}.json",
    output:
        model="results/{dataset}/{method}/seed{seed}/counter.pt",
        log_csv="results/{dataset}/{method}/seed{seed}/counter_log.csv",
        metadata="results/{dataset}/{method}/seed{seed}/metadata.json",
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        run_dir=subpath(output.model, parent=True),
    threads: 4
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=360,
    conda:
        "../environment.yml"
    log:
        "results/logs/train/{dataset}_{method}_seed{seed}.log",
    shell:
        "python -m cellbench --config-json {params.config:q} train --dataset {wildcards.dataset} "
        "--method {wildcards.method} --seed {wildcards.seed} --prepared {input.prepared} --split {input.split} "
        "--run-dir {params.run_dir} --threads {threads} 2>&1 | tee {log}"


rule train_localizer:
    input:
        prepared="results/prepared/{dataset}/patches.npz",
        split="results/splits/{dataset}/seed{seed}.json",
        counter="results/{dataset}/{method}/seed{seed}/counter.pt",
    output:
        model="results/{dataset}/{method}/seed{seed}/localizer.pt",
        log_csv="results/{dataset}/{method}/seed{seed}/localizer_log.csv",
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        run_dir=subpath(output.model, parent=True),
    threads: 4
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=180,
    conda:
        "../environment.yml"
    log:
        "results/logs/localizer/{dataset}_{method}_seed{seed}.log",
    shell:
        "python -m cellbench --config-json {params.config:q} localizer --dataset {wildcards.dataset} "
        "--method {wildcards.method} --seed {wildcards.seed} --prepared {input.prepared} --split {input.split} "
        "--run-dir {params.run_dir} --threads {threads} 2>&1 | tee {log}"
