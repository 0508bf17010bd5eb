"""SFCN (Wang, Gao, Lin and Yuan, CVPR 2019): VGG-16 front end, dilated back end, spatial encoder."""

from __future__ import annotations

import torch
from torch import nn

from cellbench.backbones import before_pool, conv_block, from_scratch, init_new_layers, scaled, vgg_channels, vgg_features


class SpatialPass(nn.Module):
    """One axis of the spatial encoder (SCNN-style message passing, the original's convDU / convLR).

    Slices of the map along ``dim`` (rows for dim=2, columns for dim=3) are visited in order and
    each receives ``relu(conv(previous slice))``, first forwards then backwards, with one shared
    convolution whose kernel lies along the slice (1 x k for rows, k x 1 for columns).
    """

    def __init__(self, channels: int, kernel: int, dim: int):
        super().__init__()
        self.dim = dim
        shape = (1, kernel) if dim == 2 else (kernel, 1)
        self.conv = nn.Conv2d(channels, channels, shape, padding=(shape[0] // 2, shape[1] // 2))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slices = list(x.split(1, dim=self.dim))
        for i in range(1, len(slices)):
            slices[i] = slices[i] + self.relu(self.conv(slices[i - 1]))
        for i in range(len(slices) - 2, -1, -1):
            slices[i] = slices[i] + self.relu(self.conv(slices[i + 1]))
        return torch.cat(slices, dim=self.dim)


class SFCN(nn.Module):
    def __init__(self, backend: tuple[int, ...] = (512, 512, 512, 256, 128, 64), dilation: int = 2,
                 encoder_kernel: int = 9, pretrained: str = "none", width_multiplier: float = 1.0):
        super().__init__()
        features, self.init_description = vgg_features("vgg16", pretrained, width_multiplier)
        self.frontend = before_pool(features, 4)  # conv1_1 .. conv4_3 with ReLU: 10 convs, 3 pools (stride 8)
        layers, cin = [], vgg_channels(width_multiplier)
        norm = from_scratch(self.init_description)   # batch norm after a random trunk, as the trunk has
        for cout in (scaled(c, width_multiplier) for c in backend):
            layers.append(conv_block(cin, cout, 3, norm=norm, dilation=dilation))
            cin = cout
        self.backend = nn.Sequential(*layers)
        self.encoder = nn.Sequential(SpatialPass(cin, encoder_kernel, dim=2),   # down-up (convDU)
                                     SpatialPass(cin, encoder_kernel, dim=3))   # left-right (convLR)
        self.output = nn.Conv2d(cin, 1, kernel_size=1)
        self.relu = nn.ReLU()
        init_new_layers([self.backend, self.output], self.init_description)
        # The spatial encoder is a recurrence over up to 32 slices: it keeps the original's N(0, 0.01)
        # (gain about 0.25 per slice); He-normal there multiplied the features by ~500 at the output.
        for conv in (self.encoder[0].conv, self.encoder[1].conv):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.output(self.encoder(self.backend(self.frontend(x)))))
