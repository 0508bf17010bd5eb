"""U-Net density regression for cell counting, as in the counting U-Net of Xie's
cell_counting_v2 code (after Ronneberger, Fischer and Brox, MICCAI 2015): three max-pools down,
three upsamplings back, each concatenated with the encoder features of the same resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cellbench.backbones import orthogonal_init, scaled


def block(cin: int, cout: int, convs: int) -> nn.Sequential:
    """``convs`` times: 3x3 'same' convolution (no bias), batch normalisation, ReLU."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    def __init__(self, width: int = 64, depth: int = 3, upsample: str = "nearest", width_multiplier: float = 1.0):
        super().__init__()
        self.depth, self.upsample = depth, upsample
        width = scaled(width, width_multiplier)
        self.encoder = nn.ModuleList(block(3 if i == 0 else width, width, 2) for i in range(depth))
        self.bottom = block(width, width, 2)
        # Decoder stages take the upsampled map concatenated with the encoder map (2 * width);
        # the last stage has one convolution, as in the authors' code.
        self.decoder = nn.ModuleList(block(2 * width, width, 2 if i < depth - 1 else 1) for i in range(depth))
        self.output = nn.Conv2d(width, 1, kernel_size=1)  # linear output; its bias is set by the trainer
        orthogonal_init(self)  # as the authors' Keras code
        self.init_description = "random initialisation (orthogonal; trained from scratch)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        multiple = 2 ** self.depth
        x = F.pad(x, (0, -w % multiple, 0, -h % multiple))
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for stage, skip in zip(self.decoder, reversed(skips)):
            x = stage(torch.cat([F.interpolate(x, scale_factor=2.0, mode=self.upsample), skip], dim=1))
        return self.output(x)[..., :h, :w]
