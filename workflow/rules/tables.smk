# Tables: per-dataset figures, then the tables, the summary figure and reports/README.md.
# Everything is computed from the runs' outputs (predictions.csv, localization.csv, points.csv, logs,
# saved models).

# Both read small files and draw: they run where the workflow is started, also on a cluster.
localrules: figures, tables


rule figures:
    input:
        prepared=PREPARED,
        split=lambda w: SPLIT.format(dataset=w.dataset, seed=seeds_of(config, w.dataset)[0]),
        predictions=lambda w: run_outputs(runs.PREDICTIONS, [w.dataset]),
        localization=lambda w: run_outputs(runs.LOCALIZATION, [w.dataset]),
    output:
        scatter=figure("pred_vs_true", "scatter"),
        curves=figure("learning_curves", "curves"),
        examples=figure("examples", "examples"),
        localization=figure("localization", "localization"),
        f1_by_radius=figure("f1_by_radius", "f1_by_radius"),
        pdfs=multiext("reports/figures/", *[f"{k}_{{dataset}}.pdf" for k in ("pred_vs_true", "learning_curves", "examples",
                                                                            "localization", "f1_by_radius")]),
    params:
        config=lambda w: config_json("track", "datasets", "methods", "exclude_methods", "seeds", "dataset_seeds", "train", "report"),
    conda:
        CONDA_ENV
    log:
        "results/logs/figures/{dataset}.log",
    shell:
        "python -m cellbench --config-json {params.config:q} figures --dataset {wildcards.dataset} "
        "--prepared {input.prepared} --split {input.split} --results results --out reports 2>&1 | tee {log}"


rule tables:
    input:
        predictions=run_outputs(runs.PREDICTIONS),
        metrics=run_outputs(runs.METRICS),
        localization=run_outputs(runs.LOCALIZATION),
        stats=expand("results/stats/{dataset}.json", dataset=DATASETS),
        figures=expand("reports/figures/examples_{dataset}.png", dataset=DATASETS),
    output:
        table2=report(multiext("reports/table2", ".md", ".csv", ".tex"), category="Tables",
                      caption="../report/table2.rst", labels={"table": "Table 2"}),
        table2_game=report(multiext("reports/table2_game", ".md", ".csv", ".tex"), category="Tables",
                           caption="../report/table2_game.rst", labels={"table": "Table 2 (GAME)"}),
        published=report(multiext("reports/published_anchors", ".md", ".csv", ".tex"), category="Tables",
                         caption="../report/published_anchors.rst", labels={"table": "Published (other protocols)"}),
        table3=report(multiext("reports/table3", ".md", ".csv", ".tex"), category="Tables",
                      caption="../report/table3.rst", labels={"table": "Table 3"}),
        table1=report(multiext("reports/table1_datasets", ".md", ".csv", ".tex"), category="Tables",
                      caption="../report/table1.rst", labels={"table": "Table 1"}),
        table4=report(multiext("reports/table4_localization", ".md", ".csv", ".tex"), category="Tables",
                      caption="../report/table4.rst", labels={"table": "Table 4"}),
        table4_paired=report(multiext("reports/table4_paired", ".md", ".csv", ".tex"), category="Tables",
                             caption="../report/table4_paired.rst", labels={"table": "Table 4 (paired)"}),
        localization_per_seed="reports/localization_per_seed.csv",
        paired=report(multiext("reports/paired", ".md", ".csv"), category="Tables",
                      caption="../report/paired.rst", labels={"table": "paired comparisons"}),
        selection=report("reports/model_selection.csv", category="Tables", caption="../report/selection.rst",
                         labels={"table": "model selection"}),
        per_seed="reports/per_seed_metrics.csv",
        mae=report("reports/figures/mae_by_method.png", category="Summary", caption="../report/mae.rst"),
        mae_pdf="reports/figures/mae_by_method.pdf",
        readme="reports/README.md",
    params:
        config=lambda w: config_json("track", "datasets", "methods", "exclude_methods", "seeds", "dataset_seeds", "train", "report"),
    conda:
        CONDA_ENV
    log:
        "results/logs/tables.log",
    shell:
        "python -m cellbench --config-json {params.config:q} tables --results results --out reports 2>&1 | tee {log}"


# The data-efficiency study (config data_efficiency): test MAE and GAME against training images.
rule data_efficiency:
    input:
        metrics=[p for d in EFFICIENCY_DATASETS for p in subset_outputs(runs.METRICS, d)],
    output:
        table=report(multiext("reports/data_efficiency", ".md", ".csv", ".tex"), category="Tables",
                     caption="../report/data_efficiency.rst", labels={"table": "data efficiency"}),
        game=report(multiext("reports/data_efficiency_game", ".md", ".csv", ".tex"), category="Tables",
                    caption="../report/data_efficiency_game.rst", labels={"table": "data efficiency (GAME)"}),
        runs="reports/data_efficiency_runs.csv",
        figure=report("reports/figures/data_efficiency.png", category="Summary",
                      caption="../report/data_efficiency_figure.rst"),
        figure_pdf="reports/figures/data_efficiency.pdf",
    params:
        config=lambda w: config_json("track", "datasets", "methods", "exclude_methods", "seeds", "dataset_seeds",
                                     "data_efficiency", "train", "report"),
    conda:
        CONDA_ENV
    log:
        "results/logs/data_efficiency.log",
    shell:
        "python -m cellbench --config-json {params.config:q} data-efficiency --results results --out reports "
        "2>&1 | tee {log}"
