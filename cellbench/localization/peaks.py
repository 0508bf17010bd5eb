"""Points from an output map: alignment-preserving upsampling, local maxima, and the two rules.

Coordinates are (x, y) pixel centres, as everywhere in cellbench: pixel ``i`` covers
``[i - 0.5, i + 0.5)``. A map at stride ``s`` has one cell per ``s x s`` block of input pixels:
cell ``i`` covers input pixels ``[i*s, (i+1)*s)``, so its centre is input pixel ``i*s + (s-1)/2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Peaks:
    """Local maxima of a map: ``points`` (K, 2) float64 (x, y) and their map ``values`` (K,),
    highest value first (equal values: later raster position first, so the order is deterministic)."""
    points: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.points.shape != (len(self.values), 2):
            raise ValueError(f"Peaks: points {self.points.shape} do not match values {self.values.shape}")

    def __len__(self) -> int:
        return len(self.values)

    def take(self, index: np.ndarray | slice) -> "Peaks":
        return Peaks(self.points[index], self.values[index])

    @classmethod
    def empty(cls) -> "Peaks":
        return cls(np.zeros((0, 2)), np.zeros(0))

    @classmethod
    def concatenate(cls, parts: list["Peaks"]) -> "Peaks":
        """All peaks of ``parts``, highest value first (ties keep the order of ``parts``)."""
        if not parts:
            return cls.empty()
        values = np.concatenate([p.values for p in parts])
        order = np.argsort(-values, kind="stable")
        return cls(np.concatenate([p.points for p in parts])[order], values[order])


def as_map(output: Any) -> np.ndarray:
    """A 2-D float64 array from a map given as numpy array or torch tensor, shaped (H, W),
    (1, H, W) or (1, 1, H, W)."""
    if hasattr(output, "detach"):  # a torch tensor; torch itself is not needed here
        output = output.detach().float().cpu().numpy()
    array = np.asarray(output, dtype=np.float64)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"expected one 2-D map, got shape {np.shape(output)}")
    return array


def _linear_weights(n_in: int, stride: int) -> np.ndarray:
    """(n_in * stride, n_in) matrix of linear interpolation with half-pixel alignment: output
    pixel ``j`` samples the input at ``(j + 0.5) / stride - 0.5``, clamped to the edge cells."""
    source = np.clip((np.arange(n_in * stride) + 0.5) / stride - 0.5, 0, n_in - 1)
    low = np.minimum(np.floor(source).astype(int), max(n_in - 2, 0))
    frac = source - low
    weights = np.zeros((n_in * stride, n_in))
    rows = np.arange(n_in * stride)
    np.add.at(weights, (rows, low), 1 - frac)
    np.add.at(weights, (rows, np.minimum(low + 1, n_in - 1)), frac)
    return weights


def upsample(output: Any, stride: int) -> np.ndarray:
    """The map at stride ``stride`` brought to input resolution (H*stride, W*stride), bilinear with
    half-pixel alignment (torch's ``align_corners=False``): each cell's value sits at the centre of
    the block of input pixels it covers, so a peak in cell (i, j) lands at input pixel
    ``(i*s + (s-1)/2, j*s + (s-1)/2)`` and not shifted by half a cell. Values are interpolated, not
    divided by stride^2 (peak positions and rankings are what matter here)."""
    array = as_map(output)
    if stride == 1:
        return array
    if stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride}")
    h, w = array.shape
    return _linear_weights(h, stride) @ array @ _linear_weights(w, stride).T


def disk(radius: int) -> np.ndarray:
    """Boolean disk footprint of the given radius (pixels within Euclidean distance ``radius``)."""
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return xx * xx + yy * yy <= radius * radius


def _subpixel_shift(array: np.ndarray, ys: np.ndarray, xs: np.ndarray, axis: int) -> np.ndarray:
    """Vertex of the parabola through each peak and its two neighbours along ``axis``, as a shift
    in [-0.5, 0.5] (0 at the map's border or where the three values are collinear)."""
    n = array.shape[axis]
    pos = ys if axis == 0 else xs
    inner = (pos > 0) & (pos < n - 1)
    lo, hi = np.clip(pos - 1, 0, n - 1), np.clip(pos + 1, 0, n - 1)
    f0 = array[ys, xs]
    fm = array[lo, xs] if axis == 0 else array[ys, lo]
    fp = array[hi, xs] if axis == 0 else array[ys, hi]
    curvature = fm - 2 * f0 + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(inner & (curvature < 0), (fm - fp) / (2 * curvature), 0.0)
    return np.clip(shift, -0.5, 0.5)


def find_peaks(output: Any, min_distance: int = 3, stride: int = 1, subpixel: bool = True) -> Peaks:
    """Local maxima of a map, in input-pixel coordinates, highest first.

    A pixel is a peak when nothing in the disk of radius ``min_distance`` (pixels) around it is
    higher, something in it is lower (so a flat region, an all-zero background or a constant map,
    has no peak), and no other such pixel in it comes later in raster order (so a plateau gives one
    peak, not one per pixel, and no two peaks are within ``min_distance`` of each other).
    Vectorised: three ``scipy.ndimage`` filters over the map, no loop over pixels. Equal values are
    ordered later raster position first.

    With ``subpixel`` each peak moves (at most half a pixel per axis) to the vertex of the parabola
    through it and its two neighbours along x and along y. ``values`` stay the pixel's.

    A map at ``stride`` > 1 is searched at its own resolution (disk radius
    ``max(1, round(min_distance / stride))`` cells) and its peaks placed at the input pixels their
    cells cover (cell i -> ``i * stride + (stride - 1) / 2``), the parabola refining within the
    cell. Without the refinement this gives the peaks of the map upsampled bilinearly by
    ``upsample`` (a bilinear interpolation's maxima lie on its nodes, the cell centres), at 1/stride^2
    of the cost; with it, peaks are placed between cell centres where the neighbours say so.
    """
    array = as_map(output)
    if stride != 1:
        if stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride}")
        coarse = find_peaks(array, max(1, int(round(min_distance / stride))), 1, subpixel)
        return Peaks(coarse.points * stride + (stride - 1) / 2, coarse.values)
    if not np.isfinite(array).all():
        raise ValueError("find_peaks: the map has NaN or infinite values")
    footprint = disk(min_distance)
    candidate = ndimage.maximum_filter(array, footprint=footprint, mode="constant", cval=-np.inf) == array
    candidate &= ndimage.minimum_filter(array, footprint=footprint, mode="nearest") < array  # not flat
    # Two candidates within each other's disk are both the maximum of both disks (the disk is
    # symmetric), so they are equal: keep the one latest in raster order.
    index = np.where(candidate, np.arange(array.size).reshape(array.shape), -1)
    keep = candidate & (ndimage.maximum_filter(index, footprint=footprint, mode="constant", cval=-1) == index)
    ys, xs = np.nonzero(keep)
    order = np.lexsort((-(ys * array.shape[1] + xs), -array[ys, xs]))  # highest, then latest first
    ys, xs = ys[order], xs[order]
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    if subpixel and len(points):
        points += np.stack([_subpixel_shift(array, ys, xs, 1), _subpixel_shift(array, ys, xs, 0)], axis=1)
    return Peaks(points, array[ys, xs])


def threshold_rule(peaks: Peaks, threshold: float) -> Peaks:
    """Threshold rule: the peaks whose value is strictly greater than ``threshold``."""
    return peaks.take(peaks.values > threshold)


def rounded_count(count: float) -> int:
    """round(count) half up, at least 0 (a negative or NaN predicted count asks for no points)."""
    if not np.isfinite(count):
        return 0
    return max(int(np.floor(count + 0.5)), 0)


def count_rule(peaks: Peaks, count: float) -> Peaks:
    """Count-guided rule (DCL: the counter says how many, the map says where): the
    ``rounded_count(count)`` highest peaks, or all of them when there are fewer."""
    return peaks.take(slice(0, rounded_count(count)))
