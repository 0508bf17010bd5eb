"""Methods fitted without gradient steps (``training: fit`` in method.yaml): what they are given.

Such a method's model has a ``fit(data: FitData) -> dict`` method. The trainer calls it once with
the whole training split, instead of epochs of optimiser steps (no optimiser, no learning rate, no
epochs), then validates the model as it validates any other. Whatever the fit chooses must live in
the model's parameters or buffers, so that it is saved with the run like weights (``counter.pt``)
and used by evaluate, localize and predict unchanged. The returned dict (the parameters chosen,
the training error) goes into the run's log and ``metadata.json`` (``fit``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.prepare import PreparedDataset
from ..inputs import InputStats, images_tensor, normalise


@dataclass
class FitData:
    """The training split as a fitted method sees it."""
    images: torch.Tensor            # (P, C, H, W) float patches, normalised with ``stats`` as any model's input
    stats: InputStats               # what the images were normalised with
    patch_image: np.ndarray         # (P,) the image each patch belongs to
    patch_counts: np.ndarray        # (P,) true dots per patch
    image_counts: np.ndarray        # (N,) true dots per image (its patches summed)
    patch_points: list[np.ndarray]  # per patch, (n, 2) x, y of its dots in patch pixels (pixel j's centre at j)

    @classmethod
    def of(cls, data: PreparedDataset, stats: InputStats) -> "FitData":
        return cls(images=normalise(images_tensor(data), stats), stats=stats, patch_image=data.patch_image,
                   patch_counts=data.patch_counts(), image_counts=data.image_counts.astype(float),
                   patch_points=[data.patch_points(p) for p in range(len(data.images))])

    def image_totals(self, per_patch: np.ndarray) -> np.ndarray:
        """Per-patch values summed into their images (how a count of an image is made)."""
        return np.bincount(self.patch_image, weights=per_patch, minlength=len(self.image_counts))
