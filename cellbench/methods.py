"""Method discovery: every ``methods/<name>/method.yaml`` is a method; its ``variants`` are more.

A method directory holds only what is special to the method: its model(s), optionally its own
loss, its defaults and a README. The contract a model must meet is written in methods/README.md
and checked here when the model is built (a wrong output shape is refused by name).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import project_root
from .config import deep_merge, load_yaml
from .errors import MethodError
from .losses import LOSSES

TARGETS = ("count", "density", "points")
_KNOWN_KEYS = {"description", "model", "options", "stride", "target", "loss", "localizer", "variants", "paper_name",
               "output"}  # output: read by the trainer (bias initialisation; see /work/notes/method_contract.md)


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
    target: str = "density"    # count: only the image count is used; density: a density map
    loss: str = "density_mse"  # a name in cellbench.losses or "file.py:function"
    localizer: dict | None = None  # {"model": "file.py:Callable", "options": {...}}
    base: str | None = None    # the method a variant derives from
    paper_name: str | None = None  # row name in the paper's tables, if any

    @property
    def definition(self) -> Path:
        return self.directory / "method.yaml"


def _load_definition(path: Path) -> dict:
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise MethodError(f"{path}: expected a mapping")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise MethodError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN_KEYS))}")
    if "model" not in raw:
        raise MethodError(f"{path}: missing key 'model' (the model, as file.py:ClassName)")
    return raw


def _spec(name: str, directory: Path, raw: dict, base: str | None) -> MethodSpec:
    spec = MethodSpec(
        name=name, directory=directory, description=raw.get("description", ""), model=raw["model"],
        options=dict(raw.get("options") or {}), stride=int(raw.get("stride", 8)),
        target=raw.get("target", "density"), loss=raw.get("loss", "density_mse"),
        localizer=raw.get("localizer"), base=base, paper_name=raw.get("paper_name"))
    if spec.target not in TARGETS:
        raise MethodError(f"{spec.definition}: target {spec.target!r} must be one of {', '.join(TARGETS)}")
    return spec


def discover() -> dict[str, MethodSpec]:
    specs: dict[str, MethodSpec] = {}
    for definition in sorted(methods_dir().glob("*/method.yaml")):
        directory = definition.parent
        raw = _load_definition(definition)
        variants = raw.pop("variants", None) or {}
        specs[directory.name] = _spec(directory.name, directory, raw, None)
        for variant, overrides in variants.items():
            if variant in specs or (methods_dir() / variant).is_dir():
                raise MethodError(f"{definition}: variant {variant!r} clashes with another method")
            merged = deep_merge(raw, overrides or {})
            # A variant may drop a mapping (e.g. the localizer) by setting it to null.
            merged.update({k: v for k, v in (overrides or {}).items() if v is None})
            specs[variant] = _spec(variant, directory, merged, directory.name)
    return specs


def available_methods() -> list[str]:
    return sorted(discover())


def get_method(name: str) -> MethodSpec:
    specs = discover()
    if name not in specs:
        raise MethodError(f"unknown method {name!r}; found under {methods_dir()}: {', '.join(sorted(specs))}")
    return specs[name]


def _load_callable(directory: Path, reference: str, definition: Path) -> Callable:
    file_name, _, attr = reference.partition(":")
    path = directory / file_name
    if not attr or not path.is_file():
        raise MethodError(f"{definition}: {reference!r} must name an existing file and a callable, "
                          f"as model.py:ClassName ({path} not found)" if not path.is_file()
                          else f"{definition}: {reference!r} lacks ':ClassName'")
    module_name = f"cellbench_methods.{directory.name}.{path.stem}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise MethodError(f"{path}: cannot be imported: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        raise MethodError(f"{definition}: {path} defines no {attr!r}")
    return getattr(module, attr)


def _construct(factory: Callable, options: dict, pretrained: str, where: str) -> nn.Module:
    kwargs = copy.deepcopy(options)
    if "pretrained" in inspect.signature(factory).parameters:
        kwargs["pretrained"] = pretrained
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise MethodError(f"{where}: cannot build the model with options {options}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise MethodError(f"{where}: the model factory returned {type(model).__name__}, not a torch.nn.Module")
    return model


def check_output(model: nn.Module, stride: int, where: str, in_channels: int = 3, size: int = 64) -> None:
    """Run a tiny input through the model; refuse an output that breaks the contract."""
    expected = (1, 1, size // stride, size // stride)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, in_channels, size, size))
    model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise MethodError(f"{where}: for a {size}x{size} input the model must return shape {expected} "
                          f"(one channel at stride {stride}), got {got}")


def build_model(spec: MethodSpec, pretrained: str = "none") -> nn.Module:
    factory = _load_callable(spec.directory, spec.model, spec.definition)
    model = _construct(factory, spec.options, pretrained, str(spec.definition))
    check_output(model, spec.stride, f"{spec.definition} ({spec.model})")
    return model


def build_localizer(spec: MethodSpec) -> nn.Module:
    """The localizer network alone; it takes the image and the counter map (4 channels) at stride 1."""
    if not spec.localizer:
        raise MethodError(f"{spec.definition}: method {spec.name} declares no localizer")
    factory = _load_callable(spec.directory, spec.localizer["model"], spec.definition)
    model = _construct(factory, spec.localizer.get("options") or {}, "none", f"{spec.definition} localizer")
    check_output(model, 1, f"{spec.definition} localizer ({spec.localizer['model']})", in_channels=4)
    return model


def resolve_loss(spec: MethodSpec) -> Callable:
    if ":" in spec.loss:
        return _load_callable(spec.directory, spec.loss, spec.definition)
    if spec.loss not in LOSSES:
        raise MethodError(f"{spec.definition}: unknown loss {spec.loss!r}; built in: {', '.join(sorted(LOSSES))}, "
                          f"or give file.py:function")
    return LOSSES[spec.loss]


def describe(spec: MethodSpec) -> dict[str, Any]:
    return {"name": spec.name, "base": spec.base, "model": spec.model, "options": spec.options,
            "stride": spec.stride, "target": spec.target, "loss": spec.loss, "localizer": spec.localizer}
