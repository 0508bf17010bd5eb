# cellbench: cell counting methods, rerun on DCC, ADI, MBM and VGG with one command.
#
#   snakemake --cores all                               full benchmark (profiles/default)
#   snakemake --cores 2 --workflow-profile profiles/smoke   minutes on a CPU
#
# Stages (one rules file each): data -> train -> evaluate -> report.

import json
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"


validate(config, "config/schema.yaml")

from cellbench.config import validate as validate_semantics, selected_methods
from cellbench.data.registry import available_datasets
from cellbench.errors import CellbenchError
from cellbench.methods import discover

try:
    validate_semantics(config)
    METHOD_SPECS = discover()
except CellbenchError as exc:
    raise WorkflowError(str(exc))

DATASETS = config["datasets"]
METHODS = selected_methods(config)
SEEDS = config["seeds"]
LOCALIZED = [m for m in METHODS if METHOD_SPECS[m].localizer]
PYTHON = sys.executable


def config_json(*sections):
    """The config sections a rule depends on, as JSON: a change to them reruns the rule, nothing else."""
    return json.dumps({k: config[k] for k in sections}, sort_keys=True)


wildcard_constraints:
    dataset="|".join(available_datasets()),
    method="|".join(sorted(METHOD_SPECS)),
    seed=r"\d+",


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        rules.report.output,
