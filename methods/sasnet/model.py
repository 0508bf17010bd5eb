"""SASNet (Song, Wang et al., AAAI 2021): U-shaped VGG-16-BN, a density and a confidence head per
level, and the output chosen per 32 x 32 block by a softmax over the levels' confidences."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cellbench.backbones import conv_block, from_scratch, scaled, vgg_features

# Per level, from the deepest (level 5, stride 16) to level 1: the encoder stage's channels (the
# skip), and the decoder's middle and output channels. A level's decoder takes its skip
# concatenated with the level below's output (the deepest takes its skip alone).
SKIPS = (512, 512, 256, 128, 64)
DECODER = ((1024, 512), (512, 256), (256, 128), (128, 64), (64, 64))


def decoder_channels(width: float) -> list[tuple[int, int, int]]:
    """(in, middle, out) channels of each level's decoder at width multiplier ``width``."""
    channels, below = [], 0
    for skip, (mid, out) in zip(SKIPS, DECODER):
        channels.append((scaled(skip, width) + below, scaled(mid, width), scaled(out, width)))
        below = scaled(out, width)
    return channels


def _conv_relu(cin: int, cout: int, kernel: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.ReLU(inplace=True)]


class _ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU(inplace=True))


class MultiBranch(nn.Module):
    """Three bottleneck branches (1x1, 3x3, 5x5) concatenated with the input: 4x the channels."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.branches = nn.ModuleList(
            nn.Sequential(_ConvBNReLU(channels, half, 1), _ConvBNReLU(half, channels, k)) for k in (1, 3, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches] + [x], dim=1)


class SASNet(nn.Module):
    def __init__(self, block_size: int = 32, pretrained: str = "none", width_multiplier: float = 1.0):
        super().__init__()
        features, self.init_description = vgg_features("vgg16_bn", pretrained, width_multiplier)
        decoder = decoder_channels(width_multiplier)
        # Encoder stages: full resolution, then strides 2, 4, 8, 16 (the last max-pool is unused).
        self.stages = nn.ModuleList([features[0:6], features[6:13], features[13:23], features[23:33], features[33:43]])
        norm = from_scratch(self.init_description)   # batch norm after a random trunk, as the trunk has
        self.decoders = nn.ModuleList(nn.Sequential(conv_block(cin, mid, 3, norm=norm), conv_block(mid, cout, 3, norm=norm))
                                      for cin, mid, cout in decoder)
        out_channels = [cout for _, _, cout in decoder]
        # Density head per level: multi-branch module, then a 1x1 conv with ReLU (non-negative density).
        self.density_heads = nn.ModuleList(nn.Sequential(MultiBranch(c), *_conv_relu(4 * c, 1, 1))
                                           for c in out_channels)
        # Confidence head per level, on the level's features averaged over each block: one logit.
        self.confidence_heads = nn.ModuleList(nn.Sequential(*_conv_relu(c, c // 2, 1),
                                                            nn.Conv2d(c // 2, 1, 1))
                                              for c in out_channels)
        self.block_size = block_size
        # New layers keep PyTorch's default initialisation (the original code sets none).

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        levels = []  # decoder outputs, deepest first
        y = None
        for decoder, skip in zip(self.decoders, reversed(skips)):
            if y is not None:
                y = torch.cat([skip, F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=True)], 1)
            else:
                y = skip
            y = decoder(y)
            levels.append(y)
        full = skips[0].shape[-2:]
        blocks = (size[0] // self.block_size, size[1] // self.block_size)
        density = torch.cat([F.interpolate(head(level), size=full, mode="nearest")
                             for head, level in zip(self.density_heads, levels)], dim=1)
        confidence = torch.cat([F.interpolate(head(F.adaptive_avg_pool2d(level, blocks)), size=full, mode="nearest")
                                for head, level in zip(self.confidence_heads, levels)], dim=1)
        # The original's soft selection: softmax over the levels of the sigmoid of the confidences.
        weights = torch.softmax(torch.sigmoid(confidence), dim=1)
        return (density * weights).sum(dim=1, keepdim=True)
