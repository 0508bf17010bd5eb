"""Method discovery: every ``methods/<name>/method.yaml`` is a method; its ``variants`` are more.

The keys of ``method.yaml``, their meaning and defaults are in
``workflow/schemas/method.schema.yaml``; this module reads the files, applies variants and
gives each method a ``MethodSpec``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .. import project_root
from ..errors import ConfigError, MethodError
from ..schemas import deep_merge, load_yaml
from ..schemas import validate as validate_schema

METHOD_DOCS = "methods/README.md"
#: The published numbers a method's ``paper_name`` refers to (Tables 2 and 3 of the DCL paper).
PAPER_CSV = Path(__file__).resolve().parent.parent / "reporting" / "paper_dcl_miccai2024.csv"


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
    target: str | None = None  # or declared by the loss (methods.factory.method_target)
    loss: str = "density_mse"
    loss_options: dict = field(default_factory=dict)   # keyword arguments of the loss
    localizer: dict | None = None
    base: str | None = None    # the method a variant derives from
    paper_name: str | None = None
    reference: bool = False
    ablation_of: str | None = None
    output: dict | None = None      # {layer, activation}: the layer the trainer initialises
    training: str = "gradient"   # or "fit": the model's fit(data) on the training split (training/fitting.py)
    floor: bool = False
    tracks: dict = field(default_factory=dict)   # {track: {lr, localizer_lr}}: chosen per track

    @property
    def fitted(self) -> bool:
        """Fitted once on the training split, without gradient steps (no deep learning)."""
        return self.training == "fit"

    def track_settings(self, track: str) -> dict:
        """This method's own settings on ``track`` (empty when it has none)."""
        return dict(self.tracks.get(track) or {})

    @property
    def definition(self) -> Path:
        return self.directory / "method.yaml"


def _validated(raw: dict, where: str) -> dict:
    try:
        return validate_schema(raw, "method", where, METHOD_DOCS)
    except ConfigError as exc:
        raise MethodError(str(exc)) from None


def _spec(name: str, directory: Path, raw: dict, base: str | None) -> MethodSpec:
    keys = {k: raw.get(k) for k in ("description", "model", "options", "stride", "target", "loss", "loss_options",
                                    "localizer", "paper_name", "reference", "ablation_of", "output", "training",
                                    "floor", "tracks")}
    return MethodSpec(name=name, directory=directory, base=base, **keys)


def _variant(raw: dict, overrides: dict | None) -> dict:
    merged = deep_merge(raw, overrides or {})
    # A variant may drop a mapping (e.g. the localizer) by setting it to null.
    merged.update({k: v for k, v in (overrides or {}).items() if v is None})
    return merged


def paper_names() -> list[str]:
    """The rows a ``paper_name`` may name: the methods of the paper's tables."""
    with open(PAPER_CSV, newline="") as f:
        return sorted({row["method"] for row in csv.DictReader(f)})


def _check_paper_name(spec: MethodSpec, valid: list[str], where: str) -> None:
    if spec.paper_name is not None and spec.paper_name not in valid:
        raise MethodError(f"{where}: paper_name {spec.paper_name!r} is not a row of {PAPER_CSV.name}; "
                          f"valid: {', '.join(repr(v) for v in valid)} (or leave paper_name out)")


def _read_folder(definition: Path, valid_papers: list[str]) -> dict[str, MethodSpec]:
    """The method of one folder and its variants; MethodError naming the file when it is broken."""
    directory = definition.parent
    try:
        raw = load_yaml(definition)
    except ConfigError as exc:
        raise MethodError(str(exc)) from None
    variants = (raw or {}).pop("variants", None) if isinstance(raw, dict) else None
    base = _validated(raw, str(definition))
    specs = {directory.name: _spec(directory.name, directory, base, None)}
    _check_paper_name(specs[directory.name], valid_papers, str(definition))
    for variant, overrides in (variants or {}).items():
        if variant == directory.name or (methods_dir() / variant).is_dir():
            raise MethodError(f"{definition}: variant {variant!r} clashes with another method")
        where = f"{definition} (variant {variant})"
        merged = _validated(_variant(raw, overrides), where)
        specs[variant] = _spec(variant, directory, merged, directory.name)
        _check_paper_name(specs[variant], valid_papers, where)
    return specs


def scan() -> tuple[dict[str, MethodSpec], dict[str, str]]:
    """Every method found, and the broken folders: {folder name: what is wrong}. A broken folder
    stops only the runs that select it (see ``selected_methods`` and ``get_method``)."""
    specs: dict[str, MethodSpec] = {}
    broken: dict[str, str] = {}
    valid_papers = paper_names()
    for definition in sorted(methods_dir().glob("*/method.yaml")):
        try:
            found = _read_folder(definition, valid_papers)
        except MethodError as exc:
            broken[definition.parent.name] = str(exc)
            continue
        clash = sorted(set(found) & set(specs))
        if clash:
            broken[definition.parent.name] = f"{definition}: variant {clash[0]!r} clashes with another method"
            continue
        specs.update(found)
    return specs, broken


def discover() -> dict[str, MethodSpec]:
    """The methods that load; broken folders are left out (``scan`` names them)."""
    return scan()[0]


def broken_methods() -> dict[str, str]:
    return scan()[1]


def available_methods() -> list[str]:
    return sorted(discover())


def _broken_message(broken: dict[str, str], excluded: list[str] = ()) -> str:
    names = list(excluded) + [n for n in broken if n not in excluded]
    reasons = "\n".join(f"method {name!r} is broken: {reason}" for name, reason in broken.items())
    return (f"{reasons}\n  fix {'it' if len(broken) == 1 else 'them'}, or leave "
            f"{'it' if len(broken) == 1 else 'them'} out of the run with `exclude_methods: [{', '.join(names)}]` "
            f"in your config (or --config 'exclude_methods=[{','.join(names)}]')")


def get_method(name: str) -> MethodSpec:
    specs, broken = scan()
    if name in broken:
        raise MethodError(_broken_message({name: broken[name]}))
    if name not in specs:
        raise MethodError(f"unknown method {name!r}; found under {methods_dir()}: {', '.join(sorted(specs))}"
                          + (f" (broken, their variants unknown: {', '.join(sorted(broken))})" if broken else ""))
    return specs[name]


def selected_methods(config: dict) -> list[str]:
    """The methods a configuration runs: every one found, or its list; less ``exclude_methods``.
    MethodError when a selected method's folder is broken (a broken one not selected is ignored)."""
    specs, broken = scan()
    excluded = config.get("exclude_methods", [])
    chosen = sorted(set(specs) | set(broken)) if config["methods"] == "all" else list(config["methods"])
    chosen = [m for m in chosen if m not in excluded]
    bad = [m for m in chosen if m in broken]
    if bad:
        raise MethodError(_broken_message({m: broken[m] for m in bad}, excluded))
    return chosen


def describe(spec: MethodSpec) -> dict:
    return {"name": spec.name, "base": spec.base, "model": spec.model, "options": spec.options,
            "stride": spec.stride, "target": spec.target, "loss": spec.loss, "loss_options": spec.loss_options,
            "localizer": spec.localizer,
            "output": spec.output, "training": spec.training, "floor": spec.floor, "tracks": spec.tracks}


def fitted_method(described: dict | None) -> bool:
    """Whether a run's recorded method (``describe``'s dict in its metadata.json) was fitted without
    gradients; runs recorded before ``training`` said ``trainable: false``."""
    described = described or {}
    return described.get("training", "gradient" if described.get("trainable", True) else "fit") == "fit"
