"""FCRN-A (Xie, Noble and Zisserman, 2016): a small fully convolutional regression network that
maps the image to a full-resolution density map (three 2x2 max-pools down, three 2x upsamplings
back)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cellbench.backbones import orthogonal_init, scaled

DOWN = 8  # three 2x2 max-pools: the input is padded to a multiple of this and the output cropped


def conv_bn_relu(cin: int, cout: int, batch_norm: bool) -> list[nn.Module]:
    """A 3x3 'same' convolution, optional batch normalisation, ReLU (bias only without BN)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    return layers + [nn.ReLU(inplace=True)]


class FCRNA(nn.Module):
    """Conv 32 - pool - conv 64 - pool - conv 128 - pool - conv 512 - (up - conv) 128, 64, 32 -
    1x1 conv to one channel at the input's resolution (stride 1)."""

    def __init__(self, down: tuple[int, ...] = (32, 64, 128), middle: int = 512,
                 up: tuple[int, ...] = (128, 64, 32), batch_norm: bool = True, upsample: str = "bilinear",
                 width_multiplier: float = 1.0):
        super().__init__()
        if len(down) != 3 or len(up) != 3:
            raise ValueError("FCRN-A has three pooling and three upsampling stages")
        if upsample not in ("bilinear", "nearest"):
            raise ValueError(f"upsample must be bilinear or nearest, not {upsample!r}")
        down, up = [scaled(c, width_multiplier) for c in down], [scaled(c, width_multiplier) for c in up]
        middle = scaled(middle, width_multiplier)
        layers, cin = [], 3
        for cout in down:
            layers += conv_bn_relu(cin, cout, batch_norm) + [nn.MaxPool2d(2)]
            cin = cout
        layers += conv_bn_relu(cin, middle, batch_norm)  # the paper's "fully connected" layer, as a 3x3 conv
        cin = middle
        for cout in up:
            layers += [nn.Upsample(scale_factor=2, mode=upsample)] + conv_bn_relu(cin, cout, batch_norm)
            cin = cout
        self.features = nn.Sequential(*layers)
        self.output = nn.Conv2d(cin, 1, kernel_size=1)  # linear output; its bias is set by the trainer
        orthogonal_init(self)  # as the authors' Keras code
        self.init_description = "random initialisation (orthogonal; FCRN-A is trained from scratch)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % DOWN, 0, -h % DOWN))
        return self.output(self.features(x))[..., :h, :w]
