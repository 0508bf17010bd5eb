# Evaluation: per test image counts (summed over an image's patches) and metrics.


rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        predictions="results/{dataset}/{method}/seed{seed}/predictions.csv",
        metrics="results/{dataset}/{method}/seed{seed}/metrics.json",
    params:
        config=lambda w: config_json(*TRAIN_SECTIONS),
        run_dir=subpath(output.metrics, parent=True),
    threads: 4
    resources:
        gpu=GPUS,
        mem_mb=4000,
        runtime=30,
    conda:
        "../environment.yml"
    log:
        "results/logs/evaluate/{dataset}_{method}_seed{seed}.log",
    shell:
        "python -m cellbench --config-json {params.config:q} evaluate --dataset {wildcards.dataset} "
        "--method {wildcards.method} --seed {wildcards.seed} --prepared {input.prepared} --split {input.split} "
        "--run-dir {params.run_dir} --threads {threads} 2>&1 | tee {log}"
