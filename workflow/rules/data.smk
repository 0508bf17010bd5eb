# Data: fetch (mirror or download) and verify, convert to patches, split per seed (and training
# subsets of a split, for the data-efficiency study), statistics.
# On a cluster, fetch runs where the workflow is started (login nodes reach the network),
# as do the small split and stats jobs; prepare runs as a CPU job.

localrules: fetch, split, subset, stats


rule fetch:
    output:
        "results/raw/{dataset}/verified.json",
    params:
        config=lambda w: config_json("data"),
    conda:
        CONDA_ENV
    log:
        "results/logs/fetch/{dataset}.log",
    shell:
        "python -m cellbench --config-json {params.config:q} fetch --dataset {wildcards.dataset} "
        "--out {output} 2>&1 | tee {log}"


rule prepare:
    input:
        rules.fetch.output,
    output:
        "results/prepared/{dataset}/patches.npz",
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        CONDA_ENV
    log:
        "results/logs/prepare/{dataset}.log",
    shell:
        "python -m cellbench prepare --dataset {wildcards.dataset} --verified {input} --out {output} 2>&1 | tee {log}"


rule split:
    input:
        rules.prepare.output,
    output:
        "results/splits/{dataset}/seed{seed}.json",
    params:
        config=lambda w: config_json("split"),
    conda:
        CONDA_ENV
    log:
        "results/logs/split/{dataset}_seed{seed}.log",
    shell:
        "python -m cellbench --config-json {params.config:q} split --dataset {wildcards.dataset} "
        "--seed {wildcards.seed} --prepared {input} --out {output} 2>&1 | tee {log}"


rule subset:
    input:
        prepared=rules.prepare.output,
        split=SPLIT,
    output:
        "results/splits/{dataset}/seed{seed}-n{size}-r{repeat}.json",
    wildcard_constraints:
        size=r"\d+",
        repeat=r"\d+",
    conda:
        CONDA_ENV
    log:
        "results/logs/split/{dataset}_seed{seed}-n{size}-r{repeat}.log",
    shell:
        "python -m cellbench subset --dataset {wildcards.dataset} --size {wildcards.size} --repeat {wildcards.repeat} "
        "--prepared {input.prepared} --split {input.split} --out {output} 2>&1 | tee {log}"


rule stats:
    input:
        rules.prepare.output,
    output:
        "results/stats/{dataset}.json",
    conda:
        CONDA_ENV
    log:
        "results/logs/stats/{dataset}.log",
    shell:
        "python -m cellbench stats --dataset {wildcards.dataset} --prepared {input} --out {output} 2>&1 | tee {log}"
