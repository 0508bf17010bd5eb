"""Losses a method can name in its method.yaml (or it gives ``file.py:function`` of its own).

Every loss takes the model output (B, 1, h, w) and a ``Batch`` and returns a scalar.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LOSSES: dict[str, Callable] = {}


def register_loss(fn: Callable) -> Callable:
    LOSSES[fn.__name__] = fn
    return fn


@register_loss
def count_l1(pred: torch.Tensor, batch) -> torch.Tensor:
    """| sum(z) - y | per image, averaged over the batch (the DCL counter loss)."""
    return (pred.float().sum(dim=(1, 2, 3)) - batch.counts).abs().mean()


@register_loss
def density_mse(pred: torch.Tensor, batch) -> torch.Tensor:
    """Pixel-wise squared error against the scaled density map sum-pooled to the output stride."""
    return F.mse_loss(pred.float(), batch.density)
