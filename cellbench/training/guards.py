"""Is a run a number? The checks that mark a run ``did not learn`` (the collapse guard, which
stops a run while it trains, is a step of the trainer).

A run is judged at its selected epoch, on the validation images:

* **beaten by a constant**: its validation MAE is not below ``ratio`` x the best constant's (the
  median of the validation counts, the constant with the least MAE on them). Not the training
  split's mean: choosing the best of 30 slightly different constants over 30 epochs finds one that
  suits the validation images, and that beat the training mean on ADI by 13%;
* **one number for every image**: the standard deviation of its predictions is under
  ``min_spread`` x that of the true counts (six CPU-track networks predicted 144-155 cells for
  every ADI image, a spread of 0.00-0.14 cells against the truth's 41);
* **not following the truth**: the Pearson correlation of predicted and true counts is under
  ``min_correlation``.

The last two need two validation images whose counts differ; with fewer they are not applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LearningChecks:
    ratio: float = 0.9            # validation MAE at or above this x the best constant's: did not learn
    min_spread: float = 0.1       # std of predictions under this x the truth's: one number for every image
    min_correlation: float = 0.3  # Pearson correlation of predicted and true counts under this


def best_constant_mae(true: np.ndarray) -> float:
    """The least MAE a constant reaches on ``true`` (the median's)."""
    true = np.asarray(true, dtype=float)
    return float(np.abs(true - np.median(true)).mean()) if len(true) else float("nan")


def spread_and_correlation(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """(std of pred / std of true, Pearson correlation); NaN where the truth does not vary."""
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if len(true) < 2 or np.std(true) == 0:
        return float("nan"), float("nan")
    spread = float(np.std(pred) / np.std(true))
    correlation = float(np.corrcoef(pred, true)[0, 1]) if np.std(pred) > 0 else 0.0
    return spread, correlation


def did_not_learn_reasons(pred: np.ndarray, true: np.ndarray, mae: float, checks: LearningChecks) -> list[str]:
    """Why a run with validation predictions ``pred`` (MAE ``mae``) did not learn; empty if it did."""
    reasons = []
    floor = best_constant_mae(true)
    if floor > 0 and mae >= checks.ratio * floor:
        reasons.append(f"its validation MAE {mae:.3f} is not below {checks.ratio:g} x the best constant's {floor:.3f}")
    spread, correlation = spread_and_correlation(pred, true)
    if spread == spread and spread < checks.min_spread:
        reasons.append(f"its predictions hardly vary between images (std {np.std(pred):.3g} cells, "
                       f"{spread:.3f} x the truth's; at least {checks.min_spread:g} asked)")
    if correlation == correlation and correlation < checks.min_correlation:
        reasons.append(f"its predictions do not follow the true counts (correlation {correlation:.2f}, "
                       f"at least {checks.min_correlation:g} asked)")
    return reasons
