"""The second stage of a method with a localizer (DCL): a network at full resolution that takes
the image and the frozen counter's coarse map, trained against a Gaussian density map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CounterConditionedLocalizer(nn.Module):
    def __init__(self, counter: nn.Module, localizer: nn.Module, counter_stride: int, map_scale: float):
        super().__init__()
        self.counter = counter.requires_grad_(False).eval()
        self.localizer = localizer
        self.counter_stride = counter_stride
        self.map_scale = map_scale  # brings the coarse map to the scale of the localizer's target

    def train(self, mode: bool = True):
        super().train(mode)
        self.counter.eval()  # frozen: never in training mode
        return self

    def coarse_map(self, x: torch.Tensor) -> torch.Tensor:
        """The counter's map at full resolution with its sum preserved (nearest, divided by stride^2)."""
        with torch.no_grad():
            z = self.counter(x).float()
        s = self.counter_stride
        return F.interpolate(z, scale_factor=s, mode="nearest") / (s * s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = self.coarse_map(x) * self.map_scale
        return self.localizer(torch.cat([x, coarse.to(x.dtype)], dim=1))
