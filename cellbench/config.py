"""The workflow configuration: loaded, merged, validated, with the checks a schema cannot express.

The keys, their meaning and defaults are in ``workflow/schemas/config.schema.yaml`` (and the
tables of config/README.md generated from it); this module adds fractions that must add up and
datasets and methods that must exist, and gives the command-line tools the same config as the
workflow.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import project_root
from .data.registry import available_datasets
from .errors import CellbenchError, ConfigError
from .methods import scan
from .schemas import deep_merge, load_yaml, schema
from .schemas import validate as validate_schema

log = logging.getLogger(__name__)

MIRROR_ENV = "CELLBENCH_DATA_MIRROR"
CONFIG_DOCS = "config/README.md"


def load_config(*overlays: str | os.PathLike) -> dict:
    """config/config.yaml with each overlay file merged on top, validated, defaults filled in."""
    config = load_yaml(project_root() / "config" / "config.yaml") or {}
    for overlay in overlays:
        config = deep_merge(config, load_yaml(overlay) or {})
    return validate(config)


def coerce_command_line_strings(value: Any, node: dict | None = None) -> Any:
    """Snakemake reads ``--config`` lists and mappings with YAML's BaseLoader, so ``seeds=[0,1]``
    arrives as ``['0', '1']``. Where the schema admits no string, re-read such a string as YAML."""
    node = schema("config") if node is None else node
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        return {k: coerce_command_line_strings(v, props.get(k, extra if isinstance(extra, dict) else {}))
                for k, v in value.items()}
    if isinstance(value, list):
        return [coerce_command_line_strings(v, node.get("items", {})) for v in value]
    types = node.get("type")
    types = [types] if isinstance(types, str) else types or []
    if isinstance(value, str) and types and "string" not in types:
        for parse in (int, float):  # before YAML, which reads 1e-3 as a string
            try:
                return parse(value)
            except ValueError:
                pass
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value  # left for the validator to name
    return value


def validate(config: dict, known_datasets: Iterable[str] | None = None,
             known_methods: Iterable[str] | None = None) -> dict:
    """The config with defaults filled in; ConfigError naming the first offending key."""
    config = validate_schema(config, "config", "the configuration", CONFIG_DOCS)
    split = config["split"]
    total = split["train"] + split["test"] + split["val"]
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(
            f"split: train + test + val must add up to 1, got "
            f"{split['train']} + {split['test']} + {split['val']} = {total:g}")
    known_datasets = sorted(available_datasets() if known_datasets is None else known_datasets)
    for name in config["datasets"]:
        if name not in known_datasets:
            raise ConfigError(f"datasets: unknown dataset {name!r}; known: {', '.join(known_datasets)}")
    # An overlay written for other datasets (config/cpu.yaml's VGG seeds) applies to those it names
    # that are selected; the others are dropped, said in the log, not refused.
    ignored = sorted(set(config["dataset_seeds"]) - set(config["datasets"]))
    if ignored:
        log.info("dataset_seeds: %s not among datasets (%s): ignored", ", ".join(ignored), ", ".join(config["datasets"]))
        config["dataset_seeds"] = {k: v for k, v in config["dataset_seeds"].items() if k in config["datasets"]}
    _check_data_efficiency(config)
    named = ([] if config["methods"] == "all" else config["methods"]) + config["exclude_methods"]
    if named:
        if known_methods is None:  # a broken method is known: it may be named in exclude_methods
            specs, broken = scan()
            known_methods = [*specs, *broken]
        known_methods = sorted(known_methods)
        for name in named:
            if name not in known_methods:
                raise ConfigError(f"methods: unknown method {name!r}; known: {', '.join(known_methods)}")
    return config


def check_datasets(config: dict) -> None:
    """Every selected dataset can run before a job starts: its definition valid (the cell spacing,
    sigma and density scale every stage reads from it, datasets/<NAME>/dataset.yaml), and its files
    somewhere: its own ``location``, the data mirror, or an address to download from. ConfigError
    naming each dataset and what is wrong (DataError's, for a definition that does not load)."""
    from .data.registry import load_dataset

    problems = []
    mirror = data_mirror(config)
    for name in config["datasets"]:
        try:
            spec = load_dataset(name)
        except CellbenchError as exc:
            problems.append(str(exc))
            continue
        if spec.location is not None:
            if not (spec.location / spec.folder).is_dir():
                problems.append(f"{spec.definition}: location {spec.location} holds no folder {spec.folder}/")
        elif not (mirror is not None and (mirror / spec.folder).is_dir()) and not (spec.urls or spec.drive_folder):
            where = f"the data mirror {mirror} has no {spec.folder}/" if mirror else "no data mirror is set"
            problems.append(f"{spec.definition}: no files: {where}, and it names no location and no urls to "
                            f"download from")
    if problems:
        raise ConfigError("datasets: " + "\n  ".join(["nothing was started:", *problems]))


def _check_data_efficiency(config: dict) -> None:
    study = config["data_efficiency"]
    for key in ("sizes", "methods"):
        for name in study[key]:
            if name not in config["datasets"]:
                raise ConfigError(f"data_efficiency.{key}: {name!r} is not one of datasets "
                                  f"({', '.join(config['datasets'])})")
    cut = config["train"]["max_images"].get("train")
    if cut and study["sizes"]:
        raise ConfigError(f"data_efficiency: train.max_images.train is {cut}, which cuts every training split to "
                          f"{cut} images, so the study's sizes would not be what they say; set it to null for the "
                          f"study (a smoke config sets it)")
    for name in study["sizes"]:
        if study["split_seed"] not in seeds_of(config, name):
            raise ConfigError(f"data_efficiency.split_seed: {study['split_seed']} is not a seed run on {name} "
                              f"(seeds {', '.join(map(str, seeds_of(config, name)))}): the whole split is that "
                              f"seed's ordinary run")


def subset_runs(config: dict, dataset: str, selected: Iterable[str]) -> list[tuple[str, int, int]]:
    """The data-efficiency runs on ``dataset``: (method, size, repeat) for every size and repeat of
    ``data_efficiency`` and every method it names there (default: the ``selected`` ones)."""
    study = config["data_efficiency"]
    selected = list(selected)
    methods = study["methods"].get(dataset, selected)
    unknown = [m for m in methods if m not in selected]
    if unknown:
        raise ConfigError(f"data_efficiency.methods.{dataset}: {', '.join(unknown)} not among the selected methods "
                          f"({', '.join(selected)})")
    return [(m, size, r) for m in methods for size in study["sizes"].get(dataset, [])
            for r in range(study["repeats"])]


def seeds_of(config: dict, dataset: str) -> list[int]:
    """The seeds run on a dataset: its ``dataset_seeds`` entry, else ``seeds``."""
    return list(config["dataset_seeds"].get(dataset, config["seeds"]))


def all_seeds(config: dict) -> list[int]:
    """Every seed run on some dataset, in order."""
    return sorted({s for d in config["datasets"] for s in seeds_of(config, d)})


def data_mirror(config: dict) -> Path | None:
    """The local mirror folder: $CELLBENCH_DATA_MIRROR, else data.mirror, else None."""
    value = os.environ.get(MIRROR_ENV) or config["data"]["mirror"]
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (project_root() / path).resolve()
