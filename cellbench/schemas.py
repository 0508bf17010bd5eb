"""YAML files and the JSON schemas that describe them: the one place definition files are read,
merged and validated.

Three schemas live in ``workflow/schemas/``: the workflow configuration, a method's
``method.yaml`` and a dataset's ``dataset.yaml``. Each key has a description and, where it is
optional, a default; validation fills the defaults in, so no other module repeats them, and
``python -m cellbench docs`` writes the key tables of the READMEs from the same descriptions.
"""

from __future__ import annotations

import copy
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "workflow" / "schemas"


def load_yaml(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def deep_merge(base: dict, overlay: dict) -> dict:
    """Return ``base`` updated recursively with ``overlay`` (as Snakemake merges config files)."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@lru_cache(maxsize=None)
def _load_schema(name: str) -> dict:
    return load_yaml(SCHEMA_DIR / f"{name}.schema.yaml")


def schema(name: str) -> dict:
    """The schema ``workflow/schemas/<name>.schema.yaml`` (a copy: callers may not change it)."""
    return copy.deepcopy(_load_schema(name))


def _fill_defaults(instance: Any, node: dict) -> None:
    """Insert each missing key that has a ``default`` in ``node``, recursively (in place)."""
    if not isinstance(instance, dict):
        return
    properties = node.get("properties", {})
    for key, sub in properties.items():
        default = sub.get("default")
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(default)
        elif isinstance(default, dict) and isinstance(instance.get(key), dict):
            # A mapping given in part keeps the default's other entries (e.g. targets).
            instance[key] = deep_merge(default, instance[key])
        if key in instance:
            _fill_defaults(instance[key], sub)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in properties:
                _fill_defaults(value, extra)


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, and for a choice of forms (oneOf, anyOf) what the key accepts: its
    "is not valid under any of the given schemas" names neither."""
    if error.validator in ("oneOf", "anyOf"):
        accepted = error.schema.get("description", "").strip().rstrip(".")
        return f"{error.instance!r} is none of the accepted forms" + (f": {accepted}" if accepted else "")
    return error.message


def validate(instance: Any, name: str, where: str, docs: str) -> dict:
    """``instance`` with its defaults filled in, or ConfigError naming ``where`` (a file), every
    offending key and ``docs`` (where the keys are documented)."""
    if not isinstance(instance, dict):
        raise ConfigError(f"{where}: expected a mapping of keys (see {docs}), got {type(instance).__name__}")
    filled = copy.deepcopy(instance)
    node = _load_schema(name)
    _fill_defaults(filled, node)
    errors = sorted(jsonschema.Draft202012Validator(node).iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)}: {_message(e)}" for e in errors]
        raise ConfigError(f"{where}: invalid (keys documented in {docs}):\n" + "\n".join(lines))
    return filled
