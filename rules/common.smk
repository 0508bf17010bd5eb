# Shared set-up: config validation, the datasets, methods and seeds to run, helper functions.

import json

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cellbench.config import coerce_command_line_strings, selected_methods
from cellbench.config import validate as validate_semantics
from cellbench.data.registry import available_datasets
from cellbench.errors import CellbenchError
from cellbench.methods import discover

config.update(coerce_command_line_strings(config))
validate(config, "../config/schema.yaml")

try:
    validate_semantics(config)
    METHOD_SPECS = discover()
except CellbenchError as exc:
    raise WorkflowError(str(exc))

DATASETS = config["datasets"]
METHODS = selected_methods(config)
SEEDS = config["seeds"]
LOCALIZED = [m for m in METHODS if METHOD_SPECS[m].localizer]
TRAIN_SECTIONS = ("train", "localizer", "targets")
# GPUs a training or evaluation job asks for (Snakemake resource `gpu`; on SLURM, `--gpus`).
GPUS = 0 if config["train"]["device"] == "cpu" else 1


def config_json(*sections):
    """The config sections a job depends on, as JSON (a change to them reruns those jobs only)."""
    return json.dumps({k: config[k] for k in sections}, sort_keys=True)


def run_path(name, dataset="{dataset}", method="{method}", seed="{seed}"):
    return f"results/{dataset}/{method}/seed{seed}/{name}"


def run_outputs(name, datasets=None):
    return expand(run_path(name), dataset=datasets or DATASETS, method=METHODS, seed=SEEDS)


def evaluation_inputs(wildcards):
    inputs = {
        "prepared": f"results/prepared/{wildcards.dataset}/patches.npz",
        "split": f"results/splits/{wildcards.dataset}/seed{wildcards.seed}.json",
        "counter": run_path("counter.pt", wildcards.dataset, wildcards.method, wildcards.seed),
    }
    if wildcards.method in LOCALIZED:
        inputs["localizer"] = run_path("localizer.pt", wildcards.dataset, wildcards.method, wildcards.seed)
    return inputs


def figure(kind, caption):
    return report(f"reports/figures/{kind}_{{dataset}}.png", category="{dataset}", subcategory="Figures",
                  caption=f"../report/{caption}.rst", labels={"dataset": "{dataset}", "figure": kind})
