"""CSRNet (Li et al., CVPR 2018): VGG-16 front end (10 conv layers, stride 8), dilated back end."""

from __future__ import annotations

import torch
from torch import nn

from cellbench.backbones import before_pool, conv_block, from_scratch, init_new_layers, scaled, vgg_channels, vgg_features


class CSRNet(nn.Module):
    def __init__(self, backend: tuple[int, ...] = (512, 512, 512, 256, 128, 64), dilation: int = 2,
                 pretrained: str = "none", width_multiplier: float = 1.0):
        super().__init__()
        features, self.init_description = vgg_features("vgg16", pretrained, width_multiplier)
        self.frontend = before_pool(features, 4)  # conv1_1 .. conv4_3 with ReLU: 10 convs, 3 pools
        layers, cin = [], vgg_channels(width_multiplier)
        norm = from_scratch(self.init_description)   # batch norm after a random trunk, as the trunk has
        for cout in (scaled(c, width_multiplier) for c in backend):
            layers.append(conv_block(cin, cout, 3, norm=norm, dilation=dilation))
            cin = cout
        self.backend = nn.Sequential(*layers)
        self.output = nn.Conv2d(cin, 1, kernel_size=1)
        init_new_layers([self.backend, self.output], self.init_description)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.backend(self.frontend(x)))
