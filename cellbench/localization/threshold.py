"""The threshold of the threshold rule, chosen on the validation split (never on test).

For a threshold ``t`` the rule keeps the peaks with value > t. Over the validation images, the
chosen ``t`` maximises F1 at the primary radius, computed from the summed tp, fp, fn of all images
(the same micro F1 as the test set's). Every threshold that can change the result is tried: each
distinct peak value ``u`` (keeps the peaks above ``u``) and one just below the smallest value
(keeps all). This is exact and fast: for each image, tp of its top-k peaks for every k comes from
one incremental maximum matching (a new peak adds at most one pair, found by one augmenting-path
search), whose size equals the tp of the Hungarian matching of ``matching.py``; then every
threshold is scored at once by vectorised look-ups.

Ties in F1 go to the largest threshold (the fewest predictions). Edge cases: with no true points
at all, the threshold is the largest peak value (predict nothing: anything else is a false alarm);
with no peaks at all, it is -inf (keep whatever peaks test maps have) and F1 is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

from .metrics import Counts
from .peaks import Peaks


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    radius: float
    counts: Counts                  # summed over the validation images at the chosen threshold
    thresholds: np.ndarray = field(repr=False)  # every candidate tried, ascending
    f1: np.ndarray = field(repr=False)          # micro F1 at each candidate (NaN where undefined)


def _augment(start: int, adjacency: list[list[int]], match_true: np.ndarray) -> bool:
    """One augmenting-path search (iterative DFS) from predicted point ``start``; updates
    ``match_true`` (true index -> predicted index or -1) and says whether the matching grew."""
    visited: set[int] = set()
    stack = [(start, iter(adjacency[start]))]
    chosen: list[int] = []  # chosen[i]: the true point stack[i]'s predicted point would take
    while stack:
        _, neighbours = stack[-1]
        for v in neighbours:
            if v in visited:
                continue
            visited.add(v)
            chosen.append(v)
            if match_true[v] < 0:  # free: flip the path
                for (u, _), t in zip(stack, chosen):
                    match_true[t] = u
                return True
            stack.append((int(match_true[v]), iter(adjacency[match_true[v]])))
            break
        else:
            stack.pop()
            if chosen:
                chosen.pop()
    return False


def prefix_true_positives(points: np.ndarray, true: np.ndarray, radius: float) -> np.ndarray:
    """(K + 1,) tp of the one-to-one matching within ``radius`` of the first k ``points`` (k = 0..K)
    against ``true``; ``points`` in the order they are added (highest value first)."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    true = np.asarray(true, np.float64).reshape(-1, 2)
    tp = np.zeros(len(points) + 1, dtype=np.int64)
    if len(points) == 0 or len(true) == 0:
        return tp
    adjacency = [sorted(n) for n in cKDTree(true).query_ball_point(points, radius)]
    match_true = np.full(len(true), -1, dtype=np.int64)
    found = 0
    for k in range(len(points)):
        if found < len(true) and adjacency[k] and _augment(k, adjacency, match_true):
            found += 1
        tp[k + 1] = found
    return tp


def choose_threshold(candidates: Sequence[Peaks], truths: Sequence[np.ndarray], radius: float) -> ThresholdChoice:
    """The threshold maximising micro F1 at ``radius`` over the validation images.

    candidates[i]: all peaks of image i (any threshold rule applies to these), and truths[i] its
    true points, in the same coordinates as the radius (original-image pixels).
    """
    if len(candidates) != len(truths):
        raise ValueError(f"{len(candidates)} candidate sets for {len(truths)} images")
    ascending, prefixes = [], []
    for peaks, true in zip(candidates, truths):
        order = np.argsort(-peaks.values, kind="stable")
        prefixes.append(prefix_true_positives(peaks.points[order], true, radius))
        ascending.append(np.sort(peaks.values))
    n_true = int(sum(len(np.asarray(t).reshape(-1, 2)) for t in truths))
    values = np.unique(np.concatenate(ascending)) if ascending else np.zeros(0)
    if len(values) == 0:
        return ThresholdChoice(-np.inf, radius, Counts(0, 0, n_true), np.array([-np.inf]),
                               np.array([0.0 if n_true else np.nan]))
    thresholds = np.concatenate([[np.nextafter(values[0], -np.inf)], values])
    tp = np.zeros(len(thresholds), dtype=np.int64)
    predicted = np.zeros(len(thresholds), dtype=np.int64)
    for asc, prefix in zip(ascending, prefixes):
        kept = len(asc) - np.searchsorted(asc, thresholds, side="right")  # peaks with value > t
        tp += prefix[kept]
        predicted += kept
    denominator = predicted + n_true  # 2tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), np.nan)
    if n_true == 0:
        best = len(thresholds) - 1  # predict nothing
    else:
        best = len(f1) - 1 - int(np.nanargmax(f1[::-1]))  # the largest threshold among the best
    counts = Counts(int(tp[best]), int(predicted[best] - tp[best]), int(n_true - tp[best]))
    return ThresholdChoice(float(thresholds[best]), float(radius), counts, thresholds, f1)
