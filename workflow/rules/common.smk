# Shared set-up: the config validated (defaults filled in from workflow/schemas), the datasets,
# methods and seeds to run, and helpers for the rules.

import json
from pathlib import Path

from snakemake.exceptions import WorkflowError

from cellbench.config import check_datasets, coerce_command_line_strings, seeds_of, subset_runs
from cellbench.data.splits import subset_suffix
from cellbench.config import validate as validate_config
from cellbench.errors import CellbenchError
from cellbench.methods import discover, selected_methods
from cellbench import runs
from cellbench.runs import run_path

try:
    validated = validate_config(coerce_command_line_strings(config))
    # Refused before any job runs, not after the counters trained: every dataset's definition and files.
    check_datasets(validated)
    # A broken method folder stops the workflow only when the config selects it.
    METHODS = selected_methods(validated)
    METHOD_SPECS = discover()
    SUBSET_RUNS = {d: subset_runs(validated, d, METHODS) for d in validated["datasets"]}
except CellbenchError as exc:
    raise WorkflowError(str(exc))
config.clear()
config.update(validated)


onstart:
    # The configuration against the machine, once a real run starts (not in a dry run): the full
    # protocol on a CPU stops here with its estimated time unless asked for (CELLBENCH_ALLOW_CPU=1 or
    # train.device: cpu), as `bash run.sh full` always did. Jobs sent to a cluster run on its GPU nodes,
    # not on this machine: not checked here.
    if workflow.local_exec:
        from cellbench.preflight import preflight

        message = preflight(config)
        if message:
            raise WorkflowError(f"cellbench: {message}")

DATASETS = config["datasets"]
LOCALIZED = [m for m in METHODS if METHOD_SPECS[m].localizer]
TRAIN_SECTIONS = ("track", "train", "localizer")
# GPUs a run job asks for (Snakemake resource `gpu`; on SLURM, `--gpus`).
GPUS = 0 if config["train"]["device"] == "cpu" else 1
PREPARED = "results/prepared/{dataset}/patches.npz"
SPLIT = "results/splits/{dataset}/seed{seed}.json"
RUN_SPLIT = "results/splits/{dataset}/seed{seed}{subset}.json"   # a seed's split or a training subset of it
CONDA_ENV = "../../environment.yml"   # the conda environment at the repository root


def config_json(*sections):
    """The config sections a job depends on, as JSON (a change to them reruns those jobs only).
    train.threads is left out: it schedules runs (run_threads) and does not make a run another one."""
    chosen = {k: config[k] for k in sections}
    if "train" in chosen:
        chosen["train"] = {k: v for k, v in chosen["train"].items() if k != "threads"}
    return json.dumps(chosen, sort_keys=True)


def dataset_cells_json(dataset):
    """A dataset's cell knowledge (its dataset.yaml's cells: spacing, sigma, density scale), as JSON:
    a change to it reruns that dataset's runs, and only them."""
    from dataclasses import asdict
    from cellbench.data.registry import dataset_cells
    return json.dumps(asdict(dataset_cells(dataset)), sort_keys=True)


def run_outputs(name, datasets=None):
    return [path for dataset in datasets or DATASETS
            for path in expand(run_path(name), dataset=dataset, method=METHODS, seed=seeds_of(config, dataset),
                               subset="")]


def subset_outputs(name, dataset):
    """A file of every data-efficiency run on ``dataset``, and of the whole split's runs of those methods."""
    seed = config["data_efficiency"]["split_seed"]
    runs_ = SUBSET_RUNS[dataset]
    whole = sorted({m for m, _, _ in runs_})
    return ([run_path(name, dataset, m, seed, subset_suffix(size, r)) for m, size, r in runs_]
            + [run_path(name, dataset, m, seed, "") for m in whole])


EFFICIENCY_DATASETS = [d for d in DATASETS if SUBSET_RUNS[d]]


def method_sources(wildcards):
    """A method's files: editing its model, loss or method.yaml reruns its jobs."""
    here = Path.cwd()
    files = (p for p in METHOD_SPECS[wildcards.method].directory.glob("*") if p.suffix in (".py", ".yaml"))
    return sorted(str(p.relative_to(here)) if p.is_relative_to(here) else str(p) for p in files)


def run_threads(wildcards):
    """A run job's threads: its method's on this track, else train.threads, else 4 (Snakemake caps them at --cores)."""
    own = METHOD_SPECS[wildcards.method].track_settings(config["track"]).get("threads")
    return own or config["train"]["threads"] or 4


def run_stage(stage):
    """The shell command of a per-run stage (run; or train, localizer, evaluate, localize alone), on a
    seed's split or a training subset of it."""
    return (f"python -m cellbench --config-json {{params.config:q}} {stage} --dataset {{wildcards.dataset}} "
            "--method {wildcards.method} --seed {wildcards.seed} --prepared {input.prepared} "
            "--split {input.split} --run-dir {params.run_dir} --threads {threads} 2>&1 | tee {log}")


def figure(kind, caption):
    return report(f"reports/figures/{kind}_{{dataset}}.png", category="{dataset}", subcategory="Figures",
                  caption=f"../report/{caption}.rst", labels={"dataset": "{dataset}", "figure": kind})
