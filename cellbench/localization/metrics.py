"""Detection counts and the scores derived from them, with undefined values as NaN.

precision = tp / (tp + fp)   undefined (NaN) when nothing was predicted
recall    = tp / (tp + fn)   undefined (NaN) when there was nothing to find
F1        = 2 tp / (2 tp + fp + fn), the harmonic mean of the two where both are defined; it is
            undefined (NaN) only when there was nothing to predict and nothing was predicted. When
            one of precision and recall is undefined the other is 0 (no tp), and F1 is 0: nothing
            found of what was there, or only false alarms. This is a value, not a missing one.

Scores over a set come from the summed tp, fp and fn (micro averaging), so an image with no
predictions adds its fn and never poisons the set's precision with a NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    fn: int

    def __post_init__(self) -> None:
        if min(self.tp, self.fp, self.fn) < 0:
            raise ValueError(f"negative detection counts: {self}")

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def predicted(self) -> int:
        return self.tp + self.fp

    @property
    def true(self) -> int:
        return self.tp + self.fn

    @property
    def count_error(self) -> int:
        """Count by detection minus the true count (signed)."""
        return self.predicted - self.true

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def scores(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def total(counts: Iterable[Counts]) -> Counts:
    """The summed counts of a set of images (scores of the set are ``total(...).f1`` etc.)."""
    out = Counts(0, 0, 0)
    for c in counts:
        out = out + c
    return out
