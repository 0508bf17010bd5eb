"""One-to-one matching of predicted and true points within a radius (Hungarian algorithm).

Among all one-to-one pairings that only pair points at most ``radius`` apart, the matching has
the largest number of pairs (so tp is the maximum possible), and among those the smallest total
distance. It is solved by ``scipy.optimize.linear_sum_assignment`` on the distance matrix where
every pair further than the radius costs more than all in-radius pairs together: the assignment
then never trades an in-radius pair for a shorter total, and the out-of-radius pairs it is forced
to make (the matrix is rectangular) are dropped afterwards. Points without any partner within the
radius are removed before solving, which keeps the matrices small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from .metrics import Counts


@dataclass(frozen=True)
class Match:
    """pairs: (tp, 2) int indices (predicted, true) of the matched points; distances: (tp,)."""
    pairs: np.ndarray
    distances: np.ndarray
    n_pred: int
    n_true: int

    @property
    def counts(self) -> Counts:
        tp = len(self.pairs)
        return Counts(tp, self.n_pred - tp, self.n_true - tp)


def _points(points: np.ndarray) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"expected (N, 2) points, got shape {array.shape}")
    return array


def _match_distances(distances: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    within = distances <= radius
    rows = np.flatnonzero(within.any(axis=1))
    cols = np.flatnonzero(within.any(axis=0))
    if len(rows) == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    sub = distances[np.ix_(rows, cols)]
    forbidden = radius * min(len(rows), len(cols)) + 1.0  # more than any sum of in-radius distances
    cost = np.where(within[np.ix_(rows, cols)], sub, forbidden)
    r, c = linear_sum_assignment(cost)
    keep = cost[r, c] < forbidden
    pairs = np.stack([rows[r[keep]], cols[c[keep]]], axis=1).astype(np.int64)
    order = np.argsort(pairs[:, 0], kind="stable")
    return pairs[order], sub[r[keep], c[keep]][order]


def match_points(pred: np.ndarray, true: np.ndarray, radius: float) -> Match:
    """Match predicted to true points (both (N, 2) (x, y), same pixel units) within ``radius``
    (a pair at exactly ``radius`` counts). Either set may be empty."""
    return match_radii(pred, true, [radius])[0]


def match_radii(pred: np.ndarray, true: np.ndarray, radii: Sequence[float]) -> list[Match]:
    """``match_points`` for several radii, computing the distances once."""
    p, t = _points(pred), _points(true)
    if any(not r >= 0 for r in radii):
        raise ValueError(f"radii must be >= 0, got {list(radii)}")
    distances = cdist(p, t) if len(p) and len(t) else np.zeros((len(p), len(t)))
    return [Match(*_match_distances(distances, float(r)), n_pred=len(p), n_true=len(t)) for r in radii]
