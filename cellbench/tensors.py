"""Prepared patches as tensors on the training device, batches, and on-device augmentation.

The datasets are small (hundreds of 256x256 patches), so a whole training split lives on the
device; an epoch's random choices are drawn at its start and copied to the device once, and
batches are gathered and augmented there, with no per-step host work or synchronisation.
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
    dots: torch.Tensor | None = None        # (B, 1, H, W) dots per input pixel, augmented like the image
    points: torch.Tensor | None = None      # (B, N, 2) (x, y) pixel coordinates of the dots, zero-padded
    point_mask: torch.Tensor | None = None  # (B, N) bool: which rows of ``points`` are real
    density_scale: float = 1.0


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
        self.density_scale = density_scale
        if sigma is not None:
            self.density = (torch.stack([density_map(data.patch_points(p), h, w, sigma)
                                         for p in range(len(data.images))])[:, None] * density_scale).to(device)

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass
class EpochPlan:
    """Every random choice of one training epoch, drawn on the CPU at once and moved to the device
    in one copy, so that the steps of the epoch need no host work and no device synchronisation.

    ``draws`` rows: sample index, transpose, horizontal flip, vertical flip, crop top, crop left.
    Transpose and the two flips together give the 8 flips and 90-degree rotations of a square,
    each with probability 1/8.
    """
    draws: torch.Tensor     # (6, N) int64 on the device, in epoch order
    batch_size: int
    crop_size: int | None

    def step(self, i: int) -> torch.Tensor:
        return self.draws[:, i * self.batch_size:(i + 1) * self.batch_size]


def plan_epoch(ds: DeviceDataset, batch_size: int, generator: torch.Generator,
               crop_size: int | None) -> EpochPlan:
    """Draw one epoch from ``generator`` (on the CPU: the same draws on every device, and a run
    resumed from a checkpoint draws exactly what an uninterrupted run would)."""
    n, (h, w) = len(ds), ds.images.shape[-2:]
    size = crop_size if crop_size and crop_size < min(h, w) else None
    order = torch.randperm(n, generator=generator)
    bits = torch.randint(0, 2, (3, n), generator=generator)
    tops = torch.randint(0, h - (size or h) + 1, (n,), generator=generator)
    lefts = torch.randint(0, w - (size or w) + 1, (n,), generator=generator)
    draws = torch.cat([order[None], bits, tops[None], lefts[None]])
    if ds.images.device.type == "cuda":
        draws = draws.pin_memory()
    return EpochPlan(draws.to(ds.images.device, non_blocking=True), batch_size, size)


def _crop(t: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor, size: int) -> torch.Tensor:
    """Per-sample square crops by gathering rows then columns (no host round trip)."""
    b, c, _, w = t.shape
    offsets = torch.arange(size, device=t.device)
    rows = (tops[:, None] + offsets)[:, None, :, None].expand(b, c, size, w)
    t = t.gather(2, rows)
    cols = (lefts[:, None] + offsets)[:, None, None, :].expand(b, c, size, size)
    return t.gather(3, cols)


def augment(tensors: list[torch.Tensor], draws: torch.Tensor, crop_size: int | None) -> list[torch.Tensor]:
    """The same crop, transpose and flips (``draws`` rows 1..5 of an ``EpochPlan``) for each sample
    of every tensor."""
    b = draws.shape[1]
    transpose, flip_h, flip_v = (draws[k].bool().view(b, 1, 1, 1) for k in (1, 2, 3))
    out = []
    for t in tensors:
        if crop_size:
            t = _crop(t, draws[4], draws[5], crop_size)
        if t.shape[-1] == t.shape[-2]:  # a rectangle cannot be transposed in place
            t = torch.where(transpose, t.transpose(-1, -2), t)
        t = torch.where(flip_h, t.flip(-1), t)
        t = torch.where(flip_v, t.flip(-2), t)
        out.append(t)
    return out


def dot_points(dots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 2) (x, y) pixel coordinates of the dots of a (B, 1, H, W) dot map (a pixel holding k
    dots gives k rows), zero-padded to the largest N, and the (B, N) mask of real rows."""
    b, _, _, w = dots.shape
    flat = dots.reshape(b, -1).round().long()
    index = torch.nonzero(flat)                                   # (M, 2): image, pixel
    repeats = flat[index[:, 0], index[:, 1]]
    index = index.repeat_interleave(repeats, dim=0)
    per_image = torch.bincount(index[:, 0], minlength=b)
    n = int(per_image.max()) if b else 0
    start = torch.cumsum(per_image, 0) - per_image
    slot = torch.arange(len(index), device=dots.device) - start[index[:, 0]]
    points = torch.zeros(b, n, 2, device=dots.device)
    mask = torch.zeros(b, n, dtype=torch.bool, device=dots.device)
    points[index[:, 0], slot] = torch.stack([index[:, 1] % w, index[:, 1] // w], dim=1).float()
    mask[index[:, 0], slot] = True
    return points, mask


def make_batch(ds: DeviceDataset, plan: EpochPlan, step: int, stride: int, channels_last: bool) -> Batch:
    draws = plan.step(step)
    index = draws[0]
    tensors = [ds.images[index], ds.dots[index]] + ([ds.density[index]] if ds.density is not None else [])
    tensors = augment(tensors, draws, plan.crop_size)
    density = sum_pool(tensors[2], stride) if ds.density is not None else None
    points, point_mask = dot_points(tensors[1])
    return Batch(images=normalise(tensors[0], channels_last), counts=tensors[1].sum(dim=(1, 2, 3)), density=density,
                 dots=tensors[1], points=points, point_mask=point_mask, density_scale=ds.density_scale)
