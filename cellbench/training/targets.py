"""Training targets built from dot coordinates: exact-count Gaussian density maps and dot maps."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _axis_kernels(coords: torch.Tensor, length: int, sigma: float) -> torch.Tensor:
    """(n, length) Gaussian profiles, each normalised to sum 1 inside the image."""
    grid = torch.arange(length, dtype=torch.float64)
    profiles = torch.exp(-0.5 * ((grid[None, :] - coords[:, None].double()) / sigma) ** 2)
    return profiles / profiles.sum(dim=1, keepdim=True)


def density_map(points: np.ndarray, height: int, width: int, sigma: float) -> torch.Tensor:
    """(H, W) density whose sum equals the number of points exactly (kernels renormalised at borders)."""
    if len(points) == 0:
        return torch.zeros(height, width)
    pts = torch.as_tensor(points, dtype=torch.float64)
    gx = _axis_kernels(pts[:, 0], width, sigma)
    gy = _axis_kernels(pts[:, 1], height, sigma)
    # Sum of separable outer products gy_i x gx_i, as one matrix product.
    return (gy.T @ gx).float()


def dot_map(points: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(H, W) map holding the number of dots whose centre lies in each pixel."""
    out = torch.zeros(height * width)
    if len(points):
        cols = np.clip(np.floor(points[:, 0] + 0.5), 0, width - 1).astype(np.int64)
        rows = np.clip(np.floor(points[:, 1] + 0.5), 0, height - 1).astype(np.int64)
        out.index_add_(0, torch.as_tensor(rows * width + cols), torch.ones(len(points)))
    return out.view(height, width)


def sum_pool(density: torch.Tensor, stride: int) -> torch.Tensor:
    """Downsample a (B, 1, H, W) map by summing stride x stride blocks (the count is preserved)."""
    if stride == 1:
        return density
    return F.avg_pool2d(density, stride) * (stride * stride)
