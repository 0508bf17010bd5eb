"""DM-Count (Wang, Liu, Samaras and Nguyen, NeurIPS 2020): VGG-19 trunk and a regression head.

The model returns the non-negative, unnormalised density; its sum is the predicted count. The
loss (loss.py) normalises it to a distribution for the optimal-transport and total-variation
terms, as the original's second output ``mu_normed`` did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cellbench.backbones import vgg_features


class DMCount(nn.Module):
    def __init__(self, pretrained: str = "none"):
        super().__init__()
        features, self.init_description = vgg_features("vgg19", pretrained)
        self.features = features[:-1]  # all 16 convs, without the last max-pool: stride 16
        self.regression = nn.Sequential(
            nn.Conv2d(512, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 128, 3, padding=1), nn.ReLU(inplace=True))
        self.density = nn.Conv2d(128, 1, kernel_size=1)
        self.relu = nn.ReLU()
        # The new layers keep PyTorch's default initialisation, as in the original code.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        # Back to stride 8; the original's F.upsample_bilinear aligns corners.
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.relu(self.density(self.regression(x)))
