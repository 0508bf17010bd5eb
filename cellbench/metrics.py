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
