"""The mean-count floor: one number, the training split's mean count per output position."""

from __future__ import annotations

import torch
from torch import nn


class MeanCount(nn.Module):
    """Outputs a constant map; its level is the bias of a 1x1 convolution of a zero input, which
    ``fit`` sets to the training split's mean count per output position."""

    def __init__(self, stride: int = 8):
        super().__init__()
        self.stride = stride
        self.level = nn.Conv2d(1, 1, kernel_size=1)
        nn.init.zeros_(self.level.weight)
        nn.init.zeros_(self.level.bias)
        self.requires_grad_(False)
        self.init_description = "no learning: the training split's mean count"

    def fit(self, data) -> dict:
        """The training split's mean count per patch, spread over the output positions of a patch."""
        h, w = data.images.shape[-2:]
        per_patch = float(data.patch_counts.mean())
        with torch.no_grad():
            self.level.bias.fill_(per_patch / ((h // self.stride) * (w // self.stride)))
        mae = float(abs(data.image_totals(data.patch_counts * 0 + per_patch) - data.image_counts).mean())
        return {"mean_count_per_patch": round(per_patch, 4), "train_mae": round(mae, 4)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        return self.level(x.new_zeros(b, 1, h // self.stride, w // self.stride))
