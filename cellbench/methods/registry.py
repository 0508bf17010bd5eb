"""Method discovery: every ``methods/<name>/method.yaml`` is a method; its ``variants`` are more.

The keys of ``method.yaml``, their meaning and defaults are in
``workflow/schemas/method.schema.yaml``; this module reads the files, applies variants and
gives each method a ``MethodSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import project_root
from ..errors import ConfigError, MethodError
from ..schemas import deep_merge, load_yaml
from ..schemas import validate as validate_schema

METHOD_DOCS = "methods/README.md"


def methods_dir() -> Path:
    return project_root() / "methods"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    directory: Path
    description: str
    model: str                 # "file.py:Callable"
    options: dict = field(default_factory=dict)
    stride: int = 8
    target: str = "density"
    loss: str = "density_mse"
    localizer: dict | None = None
    base: str | None = None    # the method a variant derives from
    paper_name: str | None = None
    reference: bool = False
    ablation_of: str | None = None
    output: dict | None = None      # {layer, activation}: the layer the trainer initialises
    trainable: bool = True
    floor: bool = False

    @property
    def definition(self) -> Path:
        return self.directory / "method.yaml"


def _validated(raw: dict, where: str) -> dict:
    try:
        return validate_schema(raw, "method", where, METHOD_DOCS)
    except ConfigError as exc:
        raise MethodError(str(exc)) from None


def _spec(name: str, directory: Path, raw: dict, base: str | None) -> MethodSpec:
    keys = {k: raw[k] for k in ("description", "model", "options", "stride", "target", "loss", "localizer",
                                "paper_name", "reference", "ablation_of", "output", "trainable", "floor")}
    return MethodSpec(name=name, directory=directory, base=base, **keys)


def _variant(raw: dict, overrides: dict | None) -> dict:
    merged = deep_merge(raw, overrides or {})
    # A variant may drop a mapping (e.g. the localizer) by setting it to null.
    merged.update({k: v for k, v in (overrides or {}).items() if v is None})
    return merged


def discover() -> dict[str, MethodSpec]:
    specs: dict[str, MethodSpec] = {}
    for definition in sorted(methods_dir().glob("*/method.yaml")):
        directory = definition.parent
        raw = load_yaml(definition)
        variants = (raw or {}).pop("variants", None) if isinstance(raw, dict) else None
        base = _validated(raw, str(definition))
        specs[directory.name] = _spec(directory.name, directory, base, None)
        for variant, overrides in (variants or {}).items():
            if variant in specs or (methods_dir() / variant).is_dir():
                raise MethodError(f"{definition}: variant {variant!r} clashes with another method")
            merged = _validated(_variant(raw, overrides), f"{definition} (variant {variant})")
            specs[variant] = _spec(variant, directory, merged, directory.name)
    return specs


def available_methods() -> list[str]:
    return sorted(discover())


def get_method(name: str) -> MethodSpec:
    specs = discover()
    if name not in specs:
        raise MethodError(f"unknown method {name!r}; found under {methods_dir()}: {', '.join(sorted(specs))}")
    return specs[name]


def selected_methods(config: dict) -> list[str]:
    """The methods a configuration runs: every one found, or its list; less ``exclude_methods``."""
    chosen = available_methods() if config["methods"] == "all" else list(config["methods"])
    return [m for m in chosen if m not in config.get("exclude_methods", [])]


def describe(spec: MethodSpec) -> dict:
    return {"name": spec.name, "base": spec.base, "model": spec.model, "options": spec.options,
            "stride": spec.stride, "target": spec.target, "loss": spec.loss, "localizer": spec.localizer,
            "output": spec.output, "trainable": spec.trainable}
