"""Prepared patches as tensors on the training device, batches, and on-device augmentation.

The datasets are small (hundreds of 256x256 patches), so a whole training split lives on the
device; batches are gathered by index and augmented there, with no per-step host work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data.prepare import PreparedDataset
from .targets import density_map, dot_map, sum_pool

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Batch:
    images: torch.Tensor            # (B, 3, H, W) normalised float
    counts: torch.Tensor            # (B,) dots inside each (cropped, augmented) patch
    density: torch.Tensor | None    # (B, 1, H/stride, W/stride) scaled density, for density targets


def normalise(images_uint8: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=images_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images_uint8.device).view(1, 3, 1, 1)
    x = (images_uint8.float() / 255.0 - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def images_tensor(data: PreparedDataset) -> torch.Tensor:
    """(P, 3, H, W) uint8 on the CPU."""
    return torch.from_numpy(np.ascontiguousarray(data.images)).permute(0, 3, 1, 2).contiguous()


class DeviceDataset:
    """A split's patches with their dot maps (and scaled density maps) on ``device``."""

    def __init__(self, data: PreparedDataset, device: torch.device, sigma: float | None = None,
                 density_scale: float = 1.0):
        h, w = data.images.shape[1:3]
        self.images = images_tensor(data).to(device)
        self.dots = torch.stack([dot_map(data.patch_points(p), h, w) for p in range(len(data.images))])[:, None].to(device)
        self.density = None
        if sigma is not None:
            self.density = (torch.stack([density_map(data.patch_points(p), h, w, sigma)
                                         for p in range(len(data.images))])[:, None] * density_scale).to(device)

    def __len__(self) -> int:
        return self.images.shape[0]


def _crop(t: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, size: int) -> torch.Tensor:
    return torch.stack([t[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist()))])


def augment(tensors: list[torch.Tensor], generator: torch.Generator, crop_size: int | None) -> list[torch.Tensor]:
    """The same random crop, flips and 90-degree rotation for each sample of every tensor.

    Random numbers come from ``generator`` on the CPU (the same count every call), so a run
    resumed from a checkpoint draws exactly what an uninterrupted run would.
    """
    b, _, h, w = tensors[0].shape
    flip_h = torch.rand(b, generator=generator) < 0.5
    flip_v = torch.rand(b, generator=generator) < 0.5
    turns = torch.randint(0, 4, (b,), generator=generator)
    size = crop_size if crop_size and crop_size < min(h, w) else None
    ys = torch.randint(0, h - (size or h) + 1, (b,), generator=generator)
    xs = torch.randint(0, w - (size or w) + 1, (b,), generator=generator)
    device = tensors[0].device
    fh, fv = flip_h.to(device).view(b, 1, 1, 1), flip_v.to(device).view(b, 1, 1, 1)
    out = []
    for t in tensors:
        if size:
            t = _crop(t, ys, xs, size)
        t = torch.where(fh, t.flip(-1), t)
        t = torch.where(fv, t.flip(-2), t)
        if t.shape[-1] == t.shape[-2]:
            rotated = t.clone()
            for k in (1, 2, 3):
                idx = (turns == k).nonzero().flatten().to(device)
                if idx.numel():
                    rotated[idx] = torch.rot90(t[idx], k, dims=(-2, -1))
            t = rotated
        out.append(t)
    return out


def make_batch(ds: DeviceDataset, index: torch.Tensor, generator: torch.Generator, crop_size: int | None,
               stride: int, channels_last: bool) -> Batch:
    index = index.to(ds.images.device)
    tensors = [ds.images[index], ds.dots[index]] + ([ds.density[index]] if ds.density is not None else [])
    tensors = augment(tensors, generator, crop_size)
    density = sum_pool(tensors[2], stride) if ds.density is not None else None
    return Batch(images=normalise(tensors[0], channels_last), counts=tensors[1].sum(dim=(1, 2, 3)), density=density)
