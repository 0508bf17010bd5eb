"""DCL counter (Zheng et al., MICCAI 2024): VGG-19 trunk, x2 upsampling, global message passing.

The official repository publishes no GMP module; this follows the paper's equations and the
choices listed in this folder's README.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cellbench.backbones import before_pool, vgg_channels, vgg_features


class GlobalMessagePassing(nn.Module):
    """Per position p, K offsets (u, v) = (w_u x_p, w_v x_p) from 1x1 convolutions; features are
    sampled at p + (u, v) with bilinear interpolation and averaged with no parameters (eq. 7).

    Offsets are in feature-map cells and unbounded, so a position can draw on any part of the map.
    """

    def __init__(self, channels: int, num_points: int = 9, init_radius: float = 2.0, combine: str = "residual"):
        super().__init__()
        if combine not in ("residual", "replace"):
            raise ValueError(f"combine must be 'residual' or 'replace', got {combine!r}")
        self.num_points = num_points
        self.combine = combine
        self.offset_u = nn.Conv2d(channels, num_points, kernel_size=1)
        self.offset_v = nn.Conv2d(channels, num_points, kernel_size=1)
        # As in deformable attention: weights start at zero and the K points start spread on a
        # ring of `init_radius` cells, so they differ from the first step (identical points
        # would receive identical gradients forever).
        for conv in (self.offset_u, self.offset_v):
            nn.init.zeros_(conv.weight)
        angles = torch.arange(num_points, dtype=torch.float32) * (2 * math.pi / num_points)
        with torch.no_grad():
            self.offset_u.bias.copy_(init_radius * torch.cos(angles))
            self.offset_v.bias.copy_(init_radius * torch.sin(angles))

    def offsets(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.offset_u(x), self.offset_v(x)

    @staticmethod
    def aggregate(x: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Mean over k of x sampled (bilinear, zeros outside) at (col + u_k, row + v_k)."""
        b, c, h, w = x.shape
        k = u.shape[1]
        rows = torch.arange(h, device=x.device, dtype=u.dtype).view(1, 1, h, 1)
        cols = torch.arange(w, device=x.device, dtype=u.dtype).view(1, 1, 1, w)
        # grid_sample with align_corners=True maps -1..1 onto the centres of the first..last cell.
        gx = (cols + u) * (2.0 / max(w - 1, 1)) - 1.0
        gy = (rows + v) * (2.0 / max(h - 1, 1)) - 1.0
        grid = torch.stack([gx, gy], dim=-1).reshape(b, k * h, w, 2)
        sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return sampled.view(b, c, k, h, w).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In fp32 even under autocast: in bf16 the sampling grid moves positions by up to 0.06
        # cells and the aggregate by several per cent; the module is small, so this costs little.
        with torch.autocast(device_type=x.device.type, enabled=False):
            x32 = x.float()
            u, v = self.offsets(x32)
            a = self.aggregate(x32, u, v)
            out = x32 + a if self.combine == "residual" else a
        return out.to(x.dtype)


class DCLCounter(nn.Module):
    """Counter: VGG-19 features without the last max-pool (stride 16), bilinear x2 (stride 8),
    GMP (or the identity), 1x1 conv to one channel, softplus (a non-negative density). Trained from
    scratch the trunk is VGG-19-BN (``cellbench.backbones``)."""

    def __init__(self, gmp: bool = True, num_points: int = 9, init_radius: float = 2.0,
                 combine: str = "residual", pretrained: str = "none", width_multiplier: float = 1.0):
        super().__init__()
        features, self.init_description = vgg_features("vgg19", pretrained, width_multiplier)
        self.trunk = before_pool(features, 5)  # drop the last max-pool
        channels = vgg_channels(width_multiplier)
        # The head is built before GMP, so that at one seed the model with and without GMP draw
        # the same trunk and head weights: the ablation is paired at initialisation.
        self.head = nn.Conv2d(channels, 1, kernel_size=1)
        self.gmp = GlobalMessagePassing(channels, num_points, init_radius, combine) if gmp else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trunk(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.gmp(x)
        return F.softplus(self.head(x))
