"""Counting metrics.

The DCL paper and most of the cell-counting literature report "MSE" meaning the ROOT of the
mean squared error (RMSE): the paper's Table 2 values are only consistent with that reading.
We report ``rmse`` (labelled "MSE (=RMSE)" in tables) and the plain ``mse`` too.
"""

from __future__ import annotations

import numpy as np


def count_metrics(true_counts, predicted_counts) -> dict[str, float]:
    true = np.asarray(true_counts, dtype=float)
    pred = np.asarray(predicted_counts, dtype=float)
    if true.shape != pred.shape or true.size == 0:
        raise ValueError(f"need equal, non-empty count arrays, got {true.shape} and {pred.shape}")
    err = pred - true
    mse = float(np.mean(err ** 2))
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(mse)), "mse": mse, "n_images": int(true.size)}


def patch_metrics(true_patch_counts, predicted_patch_counts, patch_image) -> dict | None:
    """MAE and RMSE per patch, for a dataset whose images are cut into several patches (MBM's
    quarters, DCC's tiles): the unit the DCL paper's MBM numbers fit (README, Differences). None
    when every image is one patch (then the per-patch error is the per-image one)."""
    patch_image = np.asarray(patch_image)
    if len(patch_image) == len(np.unique(patch_image)):
        return None
    metrics = count_metrics(true_patch_counts, predicted_patch_counts)
    return {"mae": metrics["mae"], "rmse": metrics["rmse"], "n_patches": int(len(patch_image)),
            "patches_per_image": round(len(patch_image) / len(np.unique(patch_image)), 4)}


# GAME (Guerrero-Gomez-Olmedo et al. 2015, "Extremely overlapping vehicle counting"): the image cut
# into 4^L equal cells (2^L x 2^L), the absolute count error summed over the cells, averaged over
# images. GAME(0) is the MAE; a count right in total but in the wrong place scores badly at L > 0.
GAME_LEVELS = (0, 1, 2, 3)


def grid_sums(points, size, level: int = GAME_LEVELS[-1], weights=None) -> np.ndarray:
    """(2^L, 2^L) sums of ``weights`` (default 1 each) of ``points`` (N, 2: x, y in pixels, pixel
    centres at integers) on an image of ``size`` (width, height); row = y cell, column = x cell.
    A point outside the image is counted in the nearest cell, so the grid's total is the count."""
    cells = 2 ** level
    points = np.asarray(points, np.float64).reshape(-1, 2)
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if len(weights) != len(points):
        raise ValueError(f"{len(points)} points but {len(weights)} weights")
    extent = np.asarray(size, np.float64)
    index = np.clip(np.floor((points + 0.5) * cells / extent), 0, cells - 1).astype(np.int64)
    flat = np.bincount(index[:, 1] * cells + index[:, 0], weights=weights, minlength=cells * cells)
    return flat.reshape(cells, cells)


def coarsen(grid: np.ndarray, level: int) -> np.ndarray:
    """A (2^K, 2^K) grid summed into (2^L, 2^L) cells, L <= K (the cells nest)."""
    k = grid.shape[-1] // 2 ** level
    return grid.reshape(*grid.shape[:-2], 2 ** level, k, 2 ** level, k).sum(axis=(-3, -1))


def game_errors(pred_grids, true_grids, levels=GAME_LEVELS) -> dict[str, np.ndarray]:
    """Per image, ``game<L>``: the absolute count error summed over its 4^L cells, from the finest
    grids (n_images, 2^K, 2^K) of predicted and true counts (``grid_sums`` at level K)."""
    pred, true = np.asarray(pred_grids, np.float64), np.asarray(true_grids, np.float64)
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"need equal (images, cells, cells) grids, got {pred.shape} and {true.shape}")
    finest = int(np.log2(pred.shape[-1]))
    if max(levels) > finest:
        raise ValueError(f"GAME({max(levels)}) needs grids of {2 ** max(levels)} cells a side; these have {pred.shape[-1]}")
    return {f"game{L}": np.abs(coarsen(pred, L) - coarsen(true, L)).sum(axis=(-2, -1)) for L in levels}


def game_metrics(pred_grids, true_grids, levels=GAME_LEVELS) -> dict[str, float]:
    """``game<L>`` averaged over images, L in ``levels``."""
    return {name: float(errors.mean()) for name, errors in game_errors(pred_grids, true_grids, levels).items()}
