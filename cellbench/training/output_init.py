"""Outputs that start at the data's scale: the output layer's bias set from the training split.

With a default initialisation a softplus head predicts about 0.69 per output position (about
700 cells per 256x256 patch at stride 8); Adam's first steps then overshoot and a DCL counter
can collapse to zero within a few steps and never recover (the softplus gradient vanishes).
Starting every method at the mean target per output position removes that first jump.
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


def init_output(model: nn.Module, output: dict, value: float, where: str) -> float:
    """Set the bias of ``output['layer']`` so that the output starts at ``value``; the bias set.

    ``where`` names the definition that declared ``output`` in error messages."""
    try:
        layer = model.get_submodule(output["layer"])
    except AttributeError as exc:
        raise MethodError(f"{where}: output.layer {output['layer']!r} is not a submodule of the model") from exc
    bias = getattr(layer, "bias", None)
    if not isinstance(bias, torch.Tensor):
        raise MethodError(f"{where}: output.layer {output['layer']!r} ({type(layer).__name__}) has no bias to set")
    if value <= 0:
        log.warning("%s: the training split has no dots; the output layer keeps its initialisation", where)
        return float("nan")
    b = inverse_activation(output["activation"], value)
    with torch.no_grad():
        bias.fill_(b)
    return b
