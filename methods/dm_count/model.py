"""DM-Count (Wang, Liu, Samaras and Nguyen, NeurIPS 2020): VGG-19 trunk and a regression head.

The model returns the non-negative, unnormalised density; its sum is the predicted count. The
loss (loss.py) normalises it to a distribution for the optimal-transport and total-variation
terms, as the original's second output ``mu_normed`` did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cellbench.backbones import before_pool, conv_block, from_scratch, scaled, vgg_channels, vgg_features


class DMCount(nn.Module):
    def __init__(self, pretrained: str = "none", width_multiplier: float = 1.0):
        super().__init__()
        features, self.init_description = vgg_features("vgg19", pretrained, width_multiplier)
        self.features = before_pool(features, 5)  # all 16 convs, without the last max-pool: stride 16
        c256, c128 = scaled(256, width_multiplier), scaled(128, width_multiplier)
        norm = from_scratch(self.init_description)   # batch norm after a random trunk, as the trunk has
        self.regression = nn.Sequential(conv_block(vgg_channels(width_multiplier), c256, 3, norm=norm),
                                        conv_block(c256, c128, 3, norm=norm))
        self.density = nn.Conv2d(c128, 1, kernel_size=1)
        self.relu = nn.ReLU()
        # The new layers keep PyTorch's default initialisation, as in the original code.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        # Back to stride 8; the original's F.upsample_bilinear aligns corners.
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.relu(self.density(self.regression(x)))
