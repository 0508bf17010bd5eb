"""Building a method's networks and loss from its ``MethodSpec``, with the contract checked.

The contract a model must meet is written in methods/README.md: a wrong output shape is refused
here, naming the method's ``method.yaml``.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Callable, Iterable

import torch
from torch import nn

from ..errors import MethodError
from ..plugins import is_reference, load_callable
from ..training.losses import LOSSES
from .registry import MethodSpec


#: The constructor argument that receives ``train.width``, the channel-width multiplier.
WIDTH_ARGUMENT = "width_multiplier"


def _construct(factory: Callable, options: dict, pretrained: str, where: str, width: float = 1.0,
               any_width: bool = False) -> nn.Module:
    """The model from its factory; ``any_width``: a model without channels (a fitted method) is
    built whatever ``train.width`` says."""
    kwargs = copy.deepcopy(options)
    parameters = inspect.signature(factory).parameters
    if "pretrained" in parameters:
        kwargs["pretrained"] = pretrained
    if WIDTH_ARGUMENT in parameters:
        kwargs[WIDTH_ARGUMENT] = width
    elif width != 1.0 and not any_width:
        raise MethodError(f"{where}: train.width is {width:g} but the model takes no {WIDTH_ARGUMENT!r} argument; "
                          f"a model that can be built narrower accepts it and scales its channels "
                          f"(methods/README.md, the contract), or run it with train.width: 1")
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise MethodError(f"{where}: cannot build the model with options {options}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise MethodError(f"{where}: the model factory returned {type(model).__name__}, not a torch.nn.Module")
    return model


#: The side of the prepared patches: what validation and evaluation feed a model, and training
#: too unless ``train.crop_size`` crops them.
PATCH_SIZE = 256


def training_sizes(config: dict, spec: MethodSpec | None = None) -> list[int]:
    """The square input sizes training will feed a model: whole patches, and the crop when one is
    set (the method's own on the config's track, else ``train.crop_size``)."""
    own = spec.track_settings(config["track"]) if spec else {}
    crop = own.get("crop_size", config["train"]["crop_size"])
    return [PATCH_SIZE] + ([crop] if crop and crop < PATCH_SIZE else [])


def check_output(model: nn.Module, stride: int, where: str, in_channels: int = 3,
                 sizes: Iterable[int] = (64,)) -> None:
    """Run a zero input of each size (square, side ``size``) through the model; refuse an output
    that breaks the contract, naming the size."""
    was_training = model.training
    model.eval()
    try:
        for size in sizes:
            expected = (1, 1, size // stride, size // stride)
            try:
                with torch.no_grad():
                    out = model(torch.zeros(1, in_channels, size, size))
            except Exception as exc:
                raise MethodError(f"{where}: the model fails on a {size}x{size} input: "
                                  f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise MethodError(f"{where}: for a {size}x{size} input the model must return shape {expected} "
                                  f"(one channel at stride {stride}), got {got}")
    finally:
        model.train(was_training)


def build_model(spec: MethodSpec, pretrained: str = "none", sizes: Iterable[int] = (64,),
                width: float = 1.0) -> nn.Module:
    """The method's counter network at channel width ``width``; its output checked at each input
    size in ``sizes``."""
    factory = load_callable(spec.directory, spec.model, spec.definition, MethodError)
    model = _construct(factory, spec.options, pretrained, str(spec.definition), width, any_width=spec.fitted)
    if spec.fitted and not callable(getattr(model, "fit", None)):
        raise MethodError(f"{spec.definition}: training: fit, but the model {spec.model} has no fit(data) method "
                          f"(cellbench.training.fitting; methods/README.md, fitted methods)")
    check_output(model, spec.stride, f"{spec.definition} ({spec.model})", sizes=sizes)
    check_activation(model, spec.output, f"{spec.definition} ({spec.model})")
    return model


#: Declared activations whose output cannot be negative.
NON_NEGATIVE = ("relu", "softplus", "exp", "abs")


def check_activation(model: nn.Module, output: dict | None, where: str, in_channels: int = 3) -> None:
    """A model that declares a non-negative activation must give no negative output: fed a random
    image, with its output layer's bias pushed down (so the activation, not a positive bias, is
    what keeps the map non-negative)."""
    if not output or output.get("activation") not in NON_NEGATIVE:
        return
    layers = output["layer"] if isinstance(output["layer"], list) else [output["layer"]]
    probe = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name in layers:
            try:
                layer = probe.get_submodule(name)
            except AttributeError:
                return   # named elsewhere (training_health): not this check's message
            if getattr(layer, "bias", None) is not None:
                layer.bias.fill_(-5.0)
        generator = torch.Generator().manual_seed(0)
        try:
            out = probe(torch.randn(2, in_channels, 64, 64, generator=generator))
        except Exception:   # a model that cannot take 64x64: check_output names its sizes; not this check's
            return
    if float(out.min()) < 0:
        raise MethodError(f"{where}: output.activation is {output['activation']!r} but the model's output has "
                          f"negative values (min {float(out.min()):.3g}): apply {output['activation']} at the end of "
                          f"forward, or declare the activation the model applies")


def build_localizer(spec: MethodSpec, sizes: Iterable[int] = (64,), width: float = 1.0) -> nn.Module:
    """The localizer network alone; it takes the image and the counter map (4 channels) at stride 1."""
    if not spec.localizer:
        raise MethodError(f"{spec.definition}: method {spec.name} declares no localizer")
    factory = load_callable(spec.directory, spec.localizer["model"], spec.definition, MethodError)
    model = _construct(factory, spec.localizer.get("options") or {}, "none", f"{spec.definition} localizer", width)
    check_output(model, 1, f"{spec.definition} localizer ({spec.localizer['model']})", in_channels=4, sizes=sizes)
    return model


def validate_method(spec: MethodSpec, sizes: Iterable[int], width: float = 1.0) -> None:
    """Build the method's counter (and localizer) and loss as training will; MethodError when one fails."""
    sizes = list(sizes)
    build_model(spec, "none", sizes, width)
    if spec.localizer:
        build_localizer(spec, sizes, width)
    if not spec.fitted:   # a fitted method has no loss
        resolve_loss(spec)


def _loss_function(spec: MethodSpec) -> Callable:
    if is_reference(spec.loss):
        return load_callable(spec.directory, spec.loss, spec.definition, MethodError)
    if spec.loss not in LOSSES:
        raise MethodError(f"{spec.definition}: unknown loss {spec.loss!r}; built in: {', '.join(sorted(LOSSES))}, "
                          f"or give file.py:function")
    return LOSSES[spec.loss]


def method_target(spec: MethodSpec) -> str:
    """The method's target: its ``target`` key and its loss's declared target (``loss_target``)
    must agree; either alone decides; neither is refused (a default would hide a mismatch). A fitted
    method has no loss: its own ``target`` (count, when it gives none: its map sums to the count)."""
    if spec.fitted:
        return spec.target or "count"
    declared = getattr(_loss_function(spec), "target", None)
    if spec.target and declared and spec.target != declared:
        raise MethodError(f"{spec.definition}: target is {spec.target!r} but its loss {spec.loss} compares against "
                          f"target {declared!r} (cellbench.training.losses.loss_target): set target: {declared}, "
                          f"or choose a loss for {spec.target}")
    if not (spec.target or declared):
        raise MethodError(f"{spec.definition}: no target, and its loss {spec.loss} does not declare one: set target "
                          f"(density, count or points; methods/README.md, the contract) or decorate the loss with "
                          f"@loss_target(...)")
    return spec.target or declared


def resolve_loss(spec: MethodSpec) -> Callable:
    """The method's loss with its ``loss_options`` bound; MethodError naming an option it does not take."""
    fn = _loss_function(spec)
    method_target(spec)
    try:
        inspect.signature(fn).bind(None, None, **spec.loss_options)
    except TypeError as exc:
        raise MethodError(f"{spec.definition}: loss_options {spec.loss_options} do not fit the loss {spec.loss} "
                          f"(called as loss(output, batch, **loss_options)) "
                          f"({exc}); its keyword arguments: {list(inspect.signature(fn).parameters)[2:]}") from exc
    if not spec.loss_options:
        return fn
    bound = functools.partial(fn, **spec.loss_options)
    bound.target = getattr(fn, "target", None)
    return bound
