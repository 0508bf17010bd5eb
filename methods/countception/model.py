"""Count-ception (Cohen, Boucher, Glastonbury, Lo and Bengio, ICCV workshops 2017): redundant
counting. Every output position regresses the number of dots inside a 32x32 window around it, so
each dot is counted once by each of the (32 / stride)^2 windows that hold it; the count of an image
is the sum of the map divided by that redundancy.

In cellbench's contract the sum of the output map must itself be the count, so the division is
done inside the model: the output convolution's weights are multiplied by 1 / redundancy
(``RedundancyScaledConv2d``), and the loss below builds the redundant target from the batch's
dot map and compares the two on the original's scale. See README.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cellbench.backbones import scaled

PATCH = 32        # side of the counting window in input pixels (the original's patch_size)
LEAK = 0.01       # Lasagne's leaky_rectify
BN_EPS = 1e-4     # Lasagne's BatchNormLayer epsilon
SHRINK = 32       # the unpadded 3x3, 14x14 and 18x18 convolutions shrink the map by 2 + 13 + 17


class ConvBN(nn.Sequential):
    """Convolution (no bias), batch normalisation, leaky ReLU: Lasagne's batch_norm(Conv2DLayer)."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int = 0):
        super().__init__(nn.Conv2d(cin, cout, kernel, padding=padding, bias=False),
                         nn.BatchNorm2d(cout, eps=BN_EPS), nn.LeakyReLU(LEAK, inplace=True))


class Simple(nn.Module):
    """The Count-ception 'simple' module: a 1x1 and a 3x3 ConvBN side by side, concatenated."""

    def __init__(self, cin: int, ch_1x1: int, ch_3x3: int):
        super().__init__()
        self.branch1 = ConvBN(cin, ch_1x1, 1)
        self.branch3 = ConvBN(cin, ch_3x3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x)], dim=1)


class RedundancyScaledConv2d(nn.Conv2d):
    """A convolution whose weights are multiplied by a fixed ``scale`` (1 / redundancy): the weights
    learn on the redundant-count scale of the original, the output is per-window count / redundancy,
    and the bias (which the trainer sets to the mean target) is on the output's scale."""

    def __init__(self, *args, scale: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.scale, self.bias)


class Countception(nn.Module):
    def __init__(self, stride: int = 1, width_multiplier: float = 1.0):
        super().__init__()
        if stride < 1 or PATCH % stride:
            raise ValueError(f"stride must divide the {PATCH}-pixel window, got {stride}")
        self.stride = stride
        self.redundancy = (PATCH // stride) ** 2
        c = lambda n: scaled(n, width_multiplier)  # noqa: E731
        self.features = nn.Sequential(
            ConvBN(3, c(64), 3, padding=SHRINK // 2),   # the original pads by 32 and crops nothing:
            Simple(c(64), c(16), c(16)),                # here by 16, so that the map has the input's size
            Simple(c(16) + c(16), c(16), c(32)),
            ConvBN(c(16) + c(32), c(16), 14),
            Simple(c(16), c(112), c(48)),
            Simple(c(112) + c(48), c(64), c(32)),
            Simple(c(64) + c(32), c(40), c(40)),
            Simple(c(40) + c(40), c(32), c(96)),
            ConvBN(c(32) + c(96), c(32), 18),
            ConvBN(c(32), c(64), 1),
            ConvBN(c(64), c(64), 1))
        self.output = RedundancyScaledConv2d(c(64), 1, 1, stride=stride, scale=1.0 / self.redundancy)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # Lasagne GlorotUniform(gain='relu')
                nn.init.xavier_uniform_(module.weight, gain=2 ** 0.5)
        nn.init.zeros_(self.output.bias)
        self.init_description = "random initialisation (Glorot uniform, gain sqrt(2); trained from scratch)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.stride // 2  # sample the feature at the centre of each output cell
        # Linear, not ReLU: with pixel L1 the map first drifts down (towards each window's median
        # count); a ReLU output died there within a few dozen steps (README.md).
        return self.output(self.features(x)[..., offset:, offset:])


def window_coverage(size: int, stride: int, device=None) -> torch.Tensor:
    """(size,) how many of the size/stride windows along one axis hold each input pixel. Window i
    spans [i * stride - lo, i * stride - lo + PATCH), centred on output cell i."""
    lo = (PATCH - stride + 1) // 2
    y = torch.arange(size, device=device)
    first = torch.div(y + lo - PATCH + stride, stride, rounding_mode="floor").clamp(min=0)
    last = torch.div(y + lo, stride, rounding_mode="floor").clamp(max=size // stride - 1)
    return (last - first + 1).float()


def redundant_target(dots: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, 1, H/stride, W/stride): for each output cell, the dots inside its PATCH x PATCH window,
    each dot weighted by 1 / (the number of windows that hold it). Inside the image (a dot held by
    all (PATCH / stride)^2 windows) this is the original's redundant count / redundancy; near the
    border, where fewer windows hold a dot, its share is larger, so the map sums to the count."""
    h, w = dots.shape[-2:]
    lo = (PATCH - stride + 1) // 2
    hi = PATCH - stride - lo
    coverage = window_coverage(h, stride, dots.device)[:, None] * window_coverage(w, stride, dots.device)[None, :]
    shares = F.pad(dots.float() / coverage, (lo, hi, lo, hi))
    return F.avg_pool2d(shares, PATCH, stride=stride) * (PATCH * PATCH)


def redundant_count_l1(pred: torch.Tensor, batch) -> torch.Tensor:
    """Pixel-wise L1 between predicted and target redundant count maps, on the original's scale
    (counts per window, i.e. the model's output times the redundancy)."""
    stride = batch.dots.shape[-1] // pred.shape[-1]
    redundancy = (PATCH // stride) ** 2
    target = redundant_target(batch.dots, stride)
    return (pred.float() - target).abs().mean() * redundancy
