"""Prepared patches as tensors on the training device, batches, and on-device augmentation.

The datasets are small (hundreds of 256x256 patches), so a whole training split lives on the
device; an epoch's random choices are drawn at its start and copied to the device once, and
batches are gathered and augmented there, with no per-step host work or synchronisation. The
dots' coordinates too are held per patch, padded to the most dots of any patch, and moved by the
same crops, flips and transposes as the images: a loss that reads them costs no synchronisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ..data.prepare import PreparedDataset
from ..inputs import InputStats, images_tensor, normalise
from .targets import density_map, dot_map, sum_pool


@dataclass
class Batch:
    """What a loss receives with the model's output (the method contract, methods/README.md)."""
    images: torch.Tensor            # (B, 3, H, W) normalised float
    counts: torch.Tensor            # (B,) dots inside each (cropped, augmented) patch
    density: torch.Tensor | None    # (B, 1, H/stride, W/stride) scaled density, for density targets
    dots: torch.Tensor | None = None  # (B, 1, H, W) dots per input pixel, augmented like the images
    density_scale: float = 1.0
    point_set: tuple[torch.Tensor, torch.Tensor] | None = None  # (points, point_mask), from make_batch

    @cached_property
    def _point_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        # A batch made by hand (tests, benchmarks) has no point set: it is taken from its dots.
        return self.point_set if self.point_set is not None else points_from_dots(self.dots)

    @property
    def points(self) -> torch.Tensor:
        """(B, N, 2) float (x, y) input-pixel coordinates of the dots (pixel j's centre is at j),
        padded; N is the most dots of any training patch."""
        return self._point_set[0]

    @property
    def point_mask(self) -> torch.Tensor:
        """(B, N) bool: which rows of ``points`` are dots (inside the crop)."""
        return self._point_set[1]


def points_from_dots(dots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates (x, y) of every dot of a (B, 1, H, W) dot-count map (a pixel holding k dots gives
    k points), padded to the largest count in the batch, and the mask of real entries.

    Data-dependent shapes: a host synchronisation. The trainer calls it once per split, not per step."""
    b = dots.shape[0]
    flat = dots.reshape(b, -1).round().long()
    index = flat.nonzero()                                # (M, 2): sample, pixel
    repeats = flat[index[:, 0], index[:, 1]]
    sample = index[:, 0].repeat_interleave(repeats)
    pixel = index[:, 1].repeat_interleave(repeats)
    per_sample = torch.bincount(sample, minlength=b)
    n = int(per_sample.max()) if len(sample) else 0
    starts = torch.cumsum(per_sample, 0) - per_sample
    rank = torch.arange(len(sample), device=dots.device) - starts[sample]
    width = dots.shape[-1]
    points = torch.zeros(b, n, 2, device=dots.device)
    points[sample, rank] = torch.stack([pixel % width, pixel // width], dim=1).float()
    mask = torch.zeros(b, n, dtype=torch.bool, device=dots.device)
    mask[sample, rank] = True
    return points, mask


class DeviceDataset:
    """A split's patches with their dot maps (and scaled density maps) on ``device``."""

    def __init__(self, data: PreparedDataset, device: torch.device, sigma: float | None = None,
                 density_scale: float = 1.0, stats: InputStats | None = None):
        h, w = data.images.shape[1:3]
        self.images = images_tensor(data).to(device)
        self.stats = stats   # what batches are normalised with (ImageNet's when None)
        self.density_scale = density_scale
        self.dots = torch.stack([dot_map(data.patch_points(p), h, w) for p in range(len(data.images))])[:, None].to(device)
        # The dots' pixel coordinates per patch, padded to the most dots of any patch: (P, N, 2) and (P, N).
        self.points, self.point_mask = points_from_dots(self.dots)
        self.density = None
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
               crop_size: int | None, samples: int | None = None) -> EpochPlan:
    """Draw one epoch of ``samples`` patches (default: each patch once) from ``generator`` (on the
    CPU: the same draws on every device, and a run resumed from a checkpoint draws exactly what an
    uninterrupted run would). More samples than patches go through the patches in several
    shuffled passes, each patch with its own crop and flips every time."""
    n_patches, (h, w) = len(ds), ds.images.shape[-2:]
    n = max(n_patches, samples or 0)
    size = crop_size if crop_size and crop_size < min(h, w) else None
    passes = -(-n // n_patches)
    order = torch.cat([torch.randperm(n_patches, generator=generator) for _ in range(passes)])[:n]
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


def augment_points(points: torch.Tensor, mask: torch.Tensor, draws: torch.Tensor, size: tuple[int, int],
                   crop_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixel coordinates (x, y) of ``points`` (B, N, 2) after the crop, transpose and flips of
    ``draws`` (as ``augment`` applies them to the maps), and the mask of those still inside."""
    x, y = points[..., 0], points[..., 1]
    h, w = size
    if crop_size:
        x, y = x - draws[5][:, None], y - draws[4][:, None]
        h = w = crop_size
        mask = mask & (x >= 0) & (x < w) & (y >= 0) & (y < h)
    if h == w:
        transpose = draws[1].bool()[:, None]
        x, y = torch.where(transpose, y, x), torch.where(transpose, x, y)
    x = torch.where(draws[2].bool()[:, None], (w - 1) - x, x)
    y = torch.where(draws[3].bool()[:, None], (h - 1) - y, y)
    return torch.stack([x, y], dim=-1) * mask[..., None], mask


def make_batch(ds: DeviceDataset, plan: EpochPlan, step: int, stride: int, channels_last: bool) -> Batch:
    draws = plan.step(step)
    index = draws[0]
    tensors = [ds.images[index], ds.dots[index]] + ([ds.density[index]] if ds.density is not None else [])
    tensors = augment(tensors, draws, plan.crop_size)
    points = augment_points(ds.points[index], ds.point_mask[index], draws, tuple(ds.images.shape[-2:]),
                            plan.crop_size)
    density = sum_pool(tensors[2], stride) if ds.density is not None else None
    return Batch(images=normalise(tensors[0], ds.stats, channels_last), counts=tensors[1].sum(dim=(1, 2, 3)), density=density,
                 dots=tensors[1], density_scale=ds.density_scale, point_set=points)
