"""Counting with a trained model: per patch, then summed per image."""

from __future__ import annotations

import contextlib
import time
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .data.prepare import PreparedDataset
from .inputs import InputStats, images_tensor, normalise
from .localization.geometry import map_points
from .metrics import GAME_LEVELS, grid_sums


def for_inference(model: nn.Module, device: torch.device, channels_last: bool = False) -> nn.Module:
    """The model on ``device`` in eval mode, its weights channels-last when its inputs are: a model
    left contiguous would have its weights re-laid out by every convolution."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def patch_outputs(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 16,
                  amp: bool = False, channels_last: bool = False, stats: InputStats | None = None):
    """Yield (start index, float output map) for ``images`` (P, 3, H, W) uint8, in batches, normalised
    with ``stats`` (the run's: ``SavedCounter.input_stats``; ImageNet's when None)."""
    was_training = model.training
    model.eval()
    try:
        for start in range(0, images.shape[0], batch_size):
            x = normalise(images[start:start + batch_size].to(device, non_blocking=True), stats, channels_last)
            with autocast(device, amp):
                out = model(x)
            yield start, out.float()
    finally:
        model.train(was_training)


def patch_counts(model: nn.Module, images: torch.Tensor, device: torch.device, count_scale: float = 1.0,
                 **kwargs) -> np.ndarray:
    sums = [out.sum(dim=(1, 2, 3)) for _, out in patch_outputs(model, images, device, **kwargs)]
    return (torch.cat(sums) / count_scale).double().cpu().numpy()


def image_counts(per_patch: np.ndarray, patch_image: np.ndarray, n_images: int) -> np.ndarray:
    """Sum patch counts into their images (DCC tiles, MBM quarters)."""
    return np.bincount(patch_image, weights=per_patch, minlength=n_images)


def count_images(model: nn.Module, data: PreparedDataset, device: torch.device, count_scale: float = 1.0,
                 images: torch.Tensor | None = None, **kwargs) -> np.ndarray:
    """The predicted count of every image of ``data`` (its patches' counts summed);
    ``images`` = ``images_tensor(data)`` when the caller already holds it."""
    images = images_tensor(data) if images is None else images
    return image_counts(patch_counts(model, images, device, count_scale, **kwargs), data.patch_image,
                        len(data.image_ids))


class Counted(NamedTuple):
    images: np.ndarray    # (N,) predicted count per image
    grids: np.ndarray     # (N, 2^level, 2^level) predicted counts per GAME cell
    patches: np.ndarray   # (P,) predicted count per patch


def counts_and_grids(model: nn.Module, data: PreparedDataset, device: torch.device, count_scale: float = 1.0,
                     stride: int = 1, level: int = GAME_LEVELS[-1], images: torch.Tensor | None = None,
                     timing: dict | None = None, **kwargs) -> Counted:
    """In one pass: every image's predicted count (as ``count_images``), its (2^level, 2^level)
    grid of predicted counts in original-image pixels (for GAME; mass on padding goes to the
    nearest cell, so a grid sums to the image's count), and every patch's count. ``timing``, when
    given, receives ``grid_seconds``: the time spent placing map pixels into cells, which is not
    inference."""
    images = images_tensor(data) if images is None else images
    n = len(data.image_ids)
    grids, sums, grid_seconds = np.zeros((n, 2 ** level, 2 ** level)), [], 0.0
    for start, out in patch_outputs(model, images, device, **kwargs):
        sums.append(out.sum(dim=(1, 2, 3)))
        maps = (out.sum(dim=1) / count_scale).double().cpu().numpy()   # waits for the forward pass
        tic = time.perf_counter()
        for k, values in enumerate(maps):
            image = int(data.patch_image[start + k])
            points, weights = map_points(data, start + k, values, stride)
            grids[image] += grid_sums(points, data.image_sizes[image], level, weights)
        grid_seconds += time.perf_counter() - tic
    per_patch = (torch.cat(sums) / count_scale).double().cpu().numpy()
    if timing is not None:
        timing["grid_seconds"] = grid_seconds
    return Counted(image_counts(per_patch, data.patch_image, n), grids, per_patch)
