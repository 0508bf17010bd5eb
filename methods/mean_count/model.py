"""The mean-count floor: one number, the training split's mean count per output position."""

from __future__ import annotations

import torch
from torch import nn


class MeanCount(nn.Module):
    """Outputs a constant map; its level is the bias of a 1x1 convolution of a zero input, which
    the shared trainer sets from the training data (the ``output`` key of method.yaml)."""

    def __init__(self, stride: int = 8, width_multiplier: float = 1.0):
        super().__init__()  # width_multiplier: accepted on every track; a constant has no channels
        self.stride = stride
        self.level = nn.Conv2d(1, 1, kernel_size=1)
        nn.init.zeros_(self.level.weight)
        nn.init.zeros_(self.level.bias)
        self.requires_grad_(False)
        self.init_description = "no learning: the training split's mean count"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        return self.level(x.new_zeros(b, 1, h // self.stride, w // self.stride))
