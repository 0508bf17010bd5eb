"""Matching radii per dataset, in original-image pixels.

A predicted point counts for a true dot when it lies within radius r of it. The right r scales
with the size of the cells, so it is set per dataset from the typical distance between a dot and
its nearest neighbour (``spacing``): in these crowded images cells touch, so the spacing is about
one cell diameter. The radii are 1/4, 1/2 and 3/4 of the spacing:

* 1/2 spacing (about one cell radius) is the primary radius, the one Table 4 reports and the
  threshold is chosen at: a point within it lies on the cell it is matched to, and is closer to
  that dot than to a typical neighbour, so matches are unambiguous;
* 1/4 spacing asks for a point near the cell's centre (precise localization);
* 3/4 spacing forgives points on the cell's edge (coarse localization; beyond it a point is often
  nearer another cell).

The spacing of a dataset is its definition's ``cells.spacing`` (datasets/<NAME>/dataset.yaml):
the median nearest-neighbour distance between the dots of all its images (``median_spacing``;
checked in tests/test_localization_geometry.py): VGG 8.54, MBM 27.07, ADI 8.94 pixels, rounded to
half pixels there. DCC (not in the mirror) has 34 +- 22 cells on images of 306x322 to 798x788
pixels; its spacing is provisional until its data are measured. ``add-dataset`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy.spatial import cKDTree

FRACTIONS: tuple[float, ...] = (0.25, 0.5, 0.75)
PRIMARY_FRACTION = 0.5


@dataclass(frozen=True)
class Radii:
    dataset: str
    values: tuple[float, ...]  # ascending, original-image pixels
    primary: float             # one of ``values``: Table 4's radius and the threshold's


def radii_for(dataset: str, spacing: float | None = None) -> Radii:
    """The radii of ``dataset``, from its definition's cell spacing (``spacing`` overrides it)."""
    if spacing is None:
        from ..data.registry import dataset_cells
        spacing = dataset_cells(dataset).spacing
    values = tuple(float(f * spacing) for f in FRACTIONS)
    return Radii(dataset, values, float(PRIMARY_FRACTION * spacing))


def median_spacing(point_sets: Iterable[np.ndarray]) -> float:
    """Median distance from each dot to its nearest other dot in the same image (NaN if none)."""
    distances = []
    for points in point_sets:
        points = np.asarray(points, np.float64).reshape(-1, 2)
        if len(points) >= 2:
            distances.append(cKDTree(points).query(points, k=2)[0][:, 1])
    return float(np.median(np.concatenate(distances))) if distances else float("nan")
