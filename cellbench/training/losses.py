"""Losses a method can name in its method.yaml (or it gives ``file.py:function`` of its own).

Every loss takes the model output (B, 1, h, w) and a ``Batch`` (and, as keyword arguments, the
method's ``loss_options``) and returns a scalar. A loss says which target it compares against
with ``@loss_target("density" | "count" | "points")``: a method whose ``target`` disagrees is
refused before it trains (a count loss against a density target trains on numbers 100x off).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LOSSES: dict[str, Callable] = {}


TARGETS = ("count", "density", "points")


def loss_target(target: str) -> Callable[[Callable], Callable]:
    """Declare the target a loss compares against (what ``target`` its method must have)."""
    if target not in TARGETS:
        raise ValueError(f"loss_target: {target!r} is not one of {', '.join(TARGETS)}")

    def mark(fn: Callable) -> Callable:
        fn.target = target
        return fn
    return mark


def register_loss(fn: Callable) -> Callable:
    LOSSES[fn.__name__] = fn
    return fn


@register_loss
@loss_target("count")
def count_l1(pred: torch.Tensor, batch) -> torch.Tensor:
    """| sum(z) - y | per image, averaged over the batch (the DCL counter loss)."""
    return (pred.float().sum(dim=(1, 2, 3)) - batch.counts).abs().mean()


@register_loss
@loss_target("density")
def density_mse(pred: torch.Tensor, batch) -> torch.Tensor:
    """Pixel-wise squared error against the scaled density map sum-pooled to the output stride."""
    return F.mse_loss(pred.float(), batch.density)
