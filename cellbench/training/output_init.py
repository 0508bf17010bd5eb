"""Outputs that start at the data's scale: the output layer's bias set from the training split.

With a default initialisation a softplus head predicts about 0.69 per output position (about
700 cells per 256x256 patch at stride 8); Adam's first steps then overshoot and a DCL counter
can collapse to zero within a few steps and never recover (the softplus gradient vanishes).
Starting every method at the mean target per output position removes that first jump: the output
layer's weights are zeroed and its bias set so that activation(bias) is that mean. The weights get
gradients from the first step (the features reach them), and the layers below from the second.
Zeroing matters for full-resolution density maps: with default weights the random term W . f is
already several times the mean (FCRN-A started at 6 to 8 times the true count).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from ..data.prepare import PreparedDataset
from ..errors import MethodError

log = logging.getLogger(__name__)

# The value b with activation(b) = m, for m > 0.
_INVERSE = {
    "identity": lambda m: m,
    "relu": lambda m: m,
    "softplus": lambda m: m + math.log(-math.expm1(-m)),  # log(exp(m) - 1), stable for small and large m
    "exp": math.log,
    "abs": lambda m: m,   # the positive branch
}


def inverse_activation(activation: str, value: float) -> float:
    if activation not in _INVERSE:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(_INVERSE)}")
    return _INVERSE[activation](value)


def mean_target_per_position(data: PreparedDataset, stride: int, scale: float = 1.0) -> float:
    """The training split's mean target per output position: dots per patch spread over the
    (H/stride) x (W/stride) output, times ``scale`` (the density scale of density targets)."""
    h, w = data.images.shape[1:3]
    return float(data.patch_counts().mean()) / ((h // stride) * (w // stride)) * scale


def _layers(model: nn.Module, output: dict, where: str) -> list[nn.Module]:
    names = output["layer"] if isinstance(output["layer"], list) else [output["layer"]]
    layers = []
    for name in names:
        try:
            layer = model.get_submodule(name)
        except AttributeError as exc:
            raise MethodError(f"{where}: output.layer {name!r} is not a submodule of the model") from exc
        if not isinstance(getattr(layer, "bias", None), torch.Tensor) or not isinstance(layer.weight, torch.Tensor):
            raise MethodError(f"{where}: output.layer {name!r} ({type(layer).__name__}) has no weight and bias to set")
        layers.append(layer)
    return layers


def init_output(model: nn.Module, output: dict, value: float, where: str) -> float:
    """Zero the weights of ``output['layer']`` (one name or a list: every head whose output is
    mixed into the map) and set its bias so that the output starts at ``value``; the bias set.

    ``where`` names the definition that declared ``output`` in error messages."""
    layers = _layers(model, output, where)
    if value <= 0:
        log.warning("%s: the training split has no dots; the output layer keeps its initialisation", where)
        return float("nan")
    b = inverse_activation(output["activation"], value)
    with torch.no_grad():
        for layer in layers:
            layer.weight.zero_()
            layer.bias.fill_(b)
    return b
