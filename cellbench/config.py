"""Load, merge and validate the workflow configuration.

The Snakefile validates with ``snakemake.utils.validate`` against the same schema; this module
adds the checks a schema cannot express (fractions that add up, known datasets and methods) and
gives the command-line tools the same config outside Snakemake.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from . import project_root
from .errors import ConfigError

MIRROR_ENV = "CELLBENCH_DATA_MIRROR"


def deep_merge(base: dict, overlay: dict) -> dict:
    """Return ``base`` updated recursively with ``overlay`` (as Snakemake merges config files)."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def load_config(*overlays: str | os.PathLike, validated: bool = True) -> dict:
    """The default config with each overlay file merged on top, validated."""
    config = load_yaml(project_root() / "config" / "config.yaml")
    for overlay in overlays:
        config = deep_merge(config, load_yaml(overlay) or {})
    if validated:
        validate(config)
    return config


def _schema() -> dict:
    return load_yaml(project_root() / "config" / "schema.yaml")


def coerce_command_line_strings(value: Any, schema: dict | None = None) -> Any:
    """Snakemake reads ``--config`` lists and mappings with YAML's BaseLoader, so ``seeds=[0,1]``
    arrives as ``['0', '1']``. Where the schema admits no string, re-read such a string as YAML."""
    schema = _schema() if schema is None else schema
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: coerce_command_line_strings(v, props.get(k, {})) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce_command_line_strings(v, schema.get("items", {})) for v in value]
    types = schema.get("type")
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


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate_schema(config: dict) -> None:
    schema = _schema()
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError("invalid configuration (see config/README.md):\n" + "\n".join(lines))


def validate(config: dict, known_datasets: Iterable[str] | None = None,
             known_methods: Iterable[str] | None = None) -> None:
    """Raise ConfigError naming the first offending key; checks schema, then semantics."""
    validate_schema(config)
    split = config["split"]
    total = split["train"] + split["test"] + split["val"]
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(
            f"split: train + test + val must add up to 1, got "
            f"{split['train']} + {split['test']} + {split['val']} = {total:g}")
    if known_datasets is None:
        from .data.registry import available_datasets
        known_datasets = available_datasets()
    known_datasets = sorted(known_datasets)
    for name in config["datasets"]:
        if name not in known_datasets:
            raise ConfigError(f"datasets: unknown dataset {name!r}; known: {', '.join(known_datasets)}")
        if name not in config["targets"]:
            raise ConfigError(f"targets: no entry for dataset {name!r} (needs sigma and density_scale)")
    if config["methods"] != "all":
        if known_methods is None:
            from .methods import available_methods
            known_methods = available_methods()
        known_methods = sorted(known_methods)
        for name in config["methods"]:
            if name not in known_methods:
                raise ConfigError(f"methods: unknown method {name!r}; known: {', '.join(known_methods)}")


def selected_methods(config: dict) -> list[str]:
    from .methods import available_methods
    return available_methods() if config["methods"] == "all" else list(config["methods"])


def data_mirror(config: dict) -> Path | None:
    """The local mirror folder: $CELLBENCH_DATA_MIRROR, else data.mirror, else None."""
    value = os.environ.get(MIRROR_ENV) or config["data"]["mirror"]
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (project_root() / path).resolve()
