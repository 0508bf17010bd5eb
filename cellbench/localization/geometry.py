"""Points between prepared patches and original images.

``prepare`` records for every patch the affine map back to its original image
(``PreparedDataset.patch_scale``/``patch_offset``, see ``PatchToImage``); this module applies it
to predicted points and gathers the patches' points into one set per original image, dropping
points that fall outside the original image (padding added by ``pad_square``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.prepare import PreparedDataset
from .peaks import Peaks


def to_original(data: PreparedDataset, points: np.ndarray, patch_index: int) -> np.ndarray:
    """(N, 2) (x, y) in patch ``patch_index``'s pixels -> its original image's pixels (float64)."""
    return data.patch_geometry(patch_index).apply(points)


def map_points(data: PreparedDataset, patch_index: int, values: np.ndarray, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A patch's output map (h, w; one value per ``stride`` x ``stride`` input pixels) as weighted
    points: the centre of each map pixel's input block in original-image pixels, and its value."""
    values = np.asarray(values)
    rows, cols = np.indices(values.shape)
    centres = np.stack([cols.ravel(), rows.ravel()], axis=1) * stride + (stride - 1) / 2
    return to_original(data, centres, patch_index), values.ravel().astype(np.float64)


def inside_image(points: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Mask of the points on an image of ``size`` (width, height): pixel centres within
    [-0.5, width - 0.5) x [-0.5, height - 0.5)."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    upper = np.asarray(size, np.float64) - 0.5
    return ((points >= -0.5) & (points < upper)).all(axis=1)


def image_peaks(data: PreparedDataset, patch_peaks: Sequence[Peaks]) -> list[Peaks]:
    """One ``Peaks`` per image of ``data`` (in ``data.image_ids`` order) in original-image pixels,
    from the peaks of each patch (``patch_peaks[p]`` for patch p, in patch pixels); highest first.
    Peaks outside the original image (in padding) are dropped."""
    if len(patch_peaks) != len(data.images):
        raise ValueError(f"{len(patch_peaks)} peak sets for {len(data.images)} patches")
    parts: list[list[Peaks]] = [[] for _ in data.image_ids]
    for p, peaks in enumerate(patch_peaks):
        image = int(data.patch_image[p])
        points = to_original(data, peaks.points, p)
        keep = inside_image(points, data.image_sizes[image])
        parts[image].append(Peaks(points[keep], np.asarray(peaks.values, np.float64)[keep]))
    return [Peaks.concatenate(part) for part in parts]


def image_points(data: PreparedDataset, patch_points: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Like ``image_peaks`` for bare point sets (no values): one (N, 2) array per image."""
    return [p.points for p in image_peaks(data, [Peaks(np.asarray(q, np.float64).reshape(-1, 2),
                                                       np.zeros(len(np.asarray(q).reshape(-1, 2))))
                                                 for q in patch_points])]


def true_points(data: PreparedDataset) -> list[np.ndarray]:
    """The true dots of each image in original-image pixels, from the prepared patches (their
    points are stored as float32, so they are within about 1e-5 pixel of the dot files')."""
    return image_points(data, [data.patch_points(p) for p in range(len(data.images))])
