"""MCNN (Zhang et al., CVPR 2016): three columns of different receptive fields, fused by a 1x1 conv."""

from __future__ import annotations

import torch
from torch import nn

from cellbench.backbones import conv_block, init_new_layers, scaled

# (kernel, channels) of the four convolutions of each column; max-pools after the first two.
COLUMNS = (
    ((9, 16), (7, 32), (7, 16), (7, 8)),
    ((7, 20), (5, 40), (5, 20), (5, 10)),
    ((5, 24), (3, 48), (3, 24), (3, 12)),
)


def _column(spec, in_channels: int, width: float) -> nn.Sequential:
    layers, cin = [], in_channels
    for i, (kernel, cout) in enumerate(spec):
        cout = scaled(cout, width)
        # Batch norm: MCNN always starts from random initialisation (cellbench.backbones, conv_block).
        layers.append(conv_block(cin, cout, kernel, norm=True))
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        cin = cout
    return nn.Sequential(*layers)


class MCNN(nn.Module):
    def __init__(self, in_channels: int = 3, width_multiplier: float = 1.0):
        super().__init__()
        self.columns = nn.ModuleList(_column(spec, in_channels, width_multiplier) for spec in COLUMNS)
        self.fuse = nn.Conv2d(sum(scaled(spec[-1][1], width_multiplier) for spec in COLUMNS), 1, kernel_size=1)
        self.init_description = "random initialisation (MCNN has no pretrained trunk; batch norm)"
        # He-normal, not the original's N(0, 0.01): see README.md (with it the features reaching the
        # output are ~1e-3 of the input's and the model stays at its starting output).
        init_new_layers([self.columns, self.fuse], self.init_description)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([column(x) for column in self.columns], dim=1))
