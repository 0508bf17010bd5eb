"""Localization metrics on cases worked out by hand: peaks, rules, matching, scores, threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial.distance import cdist

from cellbench.localization import (Counts, Peaks, choose_threshold, count_rule, find_peaks, match_points,
                                    match_radii, prefix_true_positives, radii_for, rounded_count,
                                    threshold_rule, total, upsample)


def gaussians(centres, size=256, sigma=3.0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size].astype(float)
    out = np.zeros((size, size))
    for x, y in centres:
        out += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return out


def grid_centres(n=5, spacing=40.0, start=30.0, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    base = np.array([(start + i * spacing, start + j * spacing) for j in range(n) for i in range(n)])
    return base + rng.uniform(-jitter, jitter, base.shape)


def assert_same_points(found, expected, atol):
    d = cdist(found, expected)
    assert len(found) == len(expected)
    assert d.min(axis=1).max() <= atol and d.min(axis=0).max() <= atol


# ---- peaks -------------------------------------------------------------------------------------

def test_gaussians_at_known_positions_are_recovered():
    centres = grid_centres(jitter=5.0)
    peaks = find_peaks(gaussians(centres), min_distance=4)
    assert_same_points(peaks.points, centres, atol=0.1)  # sub-pixel: within a tenth of a pixel
    assert np.all(np.diff(peaks.values) <= 0)            # highest first


def test_peaks_after_upsampling_from_stride_8_keep_their_place():
    # A stride-8 map made the way a counter's map relates to the image: each cell holds the sum of
    # the density over the 8x8 block of pixels it covers.
    centres = grid_centres(n=5, spacing=48.0, start=20.0, jitter=6.0, seed=3)
    coarse = gaussians(centres, sigma=4.0).reshape(32, 8, 32, 8).sum(axis=(1, 3))
    up = upsample(coarse, 8)
    assert up.shape == (256, 256)
    # Bilinear upsampling keeps each peak on its cell's centre: within half a cell per axis.
    assert_same_points(find_peaks(up, min_distance=8).points, centres, atol=4.0 * np.sqrt(2))
    # Searching the coarse map with the sub-cell parabola does better, at 1/64 of the cost.
    assert_same_points(find_peaks(coarse, min_distance=8, stride=8).points, centres, atol=1.5)
    plain = find_peaks(coarse, min_distance=8, stride=8, subpixel=False).points
    assert_same_points(plain, find_peaks(up, min_distance=8, subpixel=False).points, atol=0.5 * np.sqrt(2))
    # A cell-centred Gaussian (centre at i*8 + 3.5) comes back exactly where it was, either way.
    exact = np.array([[8 * 5 + 3.5, 8 * 20 + 3.5], [8 * 25 + 3.5, 8 * 9 + 3.5]])
    coarse = gaussians(exact, sigma=4.0).reshape(32, 8, 32, 8).sum(axis=(1, 3))
    assert_same_points(find_peaks(coarse, min_distance=8, stride=8).points, exact, atol=1e-9)
    assert_same_points(find_peaks(upsample(coarse, 8), min_distance=8).points, exact, atol=1e-9)


def test_upsampling_is_aligned_with_the_cells_it_covers():
    coarse = np.zeros((4, 4))
    coarse[1, 2] = 1.0  # covers input rows 8..15, columns 16..23 at stride 8
    up = upsample(coarse, 8)
    rows, cols = np.nonzero(up == up.max())
    assert set(rows) == {11, 12} and set(cols) == {19, 20}  # the block's centre is 11.5, 19.5
    np.testing.assert_allclose(up, up[::-1, ::-1][::-1, ::-1])
    np.testing.assert_allclose(upsample(np.ones((3, 5)), 4), np.ones((12, 20)))


def test_plateaus_and_flat_maps():
    m = np.zeros((20, 20))
    m[5:8, 5:8] = 1.0  # a 3x3 plateau: one peak, not nine
    m[15, 15] = 0.5
    peaks = find_peaks(m, min_distance=2)
    assert len(peaks) == 2 and peaks.values.tolist() == [1.0, 0.5]
    assert 5 <= peaks.points[0, 0] <= 7 and 5 <= peaks.points[0, 1] <= 7
    assert len(find_peaks(np.zeros((16, 16)))) == 0
    assert len(find_peaks(np.full((16, 16), 3.0))) == 0


def test_min_distance_suppresses_the_lower_of_two_close_maxima_and_border_peaks_count():
    m = np.zeros((20, 20))
    m[10, 10], m[10, 12] = 1.0, 0.9
    m[0, 19] = 0.7
    assert sorted(find_peaks(m, min_distance=1, subpixel=False).values.tolist()) == [0.7, 0.9, 1.0]
    peaks = find_peaks(m, min_distance=3, subpixel=False)
    assert peaks.values.tolist() == [1.0, 0.7]
    assert peaks.points.tolist() == [[10.0, 10.0], [19.0, 0.0]]


def test_maps_come_as_tensors_too():
    torch = pytest.importorskip("torch")
    m = gaussians([(40.0, 30.0)], size=64)
    peaks = find_peaks(torch.from_numpy(m)[None, None].float())
    np.testing.assert_allclose(peaks.points, [[40.0, 30.0]], atol=1e-3)
    with pytest.raises(ValueError):
        find_peaks(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError):
        find_peaks(np.full((8, 8), np.nan))


def test_rules():
    peaks = Peaks(np.arange(10, dtype=float).reshape(5, 2), np.array([0.9, 0.7, 0.5, 0.5, 0.1]))
    assert threshold_rule(peaks, 0.5).values.tolist() == [0.9, 0.7]  # strictly above
    assert len(threshold_rule(peaks, 1.0)) == 0
    assert count_rule(peaks, 2.5).values.tolist() == [0.9, 0.7, 0.5]  # half up
    assert count_rule(peaks, 2.49).points.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert len(count_rule(peaks, 40.0)) == 5  # fewer peaks than the count: all of them
    assert [rounded_count(c) for c in (-3.0, 0.4, float("nan"), 7.5)] == [0, 0, 0, 8]


# ---- matching and scores -----------------------------------------------------------------------

def counts(pred, true, radius):
    return match_points(np.array(pred, float), np.array(true, float), radius).counts


def test_hungarian_beats_greedy():
    # T1=(0,0), T2=(2,0); P1=(1.1,0) is nearest to T2 (0.9) but also within 1.5 of T1 (1.1);
    # P2=(3.4,0) reaches only T2 (1.4). Greedy nearest-first pairs P1-T2 and leaves P2 and T1
    # single (tp 1); the one-to-one optimum is P1-T1, P2-T2 (tp 2).
    m = match_points([[1.1, 0], [3.4, 0]], [[0, 0], [2, 0]], 1.5)
    assert m.counts == Counts(2, 0, 0)
    assert m.pairs.tolist() == [[0, 0], [1, 1]]
    np.testing.assert_allclose(m.distances, [1.1, 1.4])


def test_among_the_largest_matchings_the_shortest_wins():
    # Both pairings match two; P1-T1 + P2-T2 = 0.9 + 0.9 is shorter than 1.1 + 1.1.
    m = match_points([[0.9, 0], [1.1, 0]], [[0, 0], [2, 0]], 1.5)
    assert m.pairs.tolist() == [[0, 0], [1, 1]]


def test_ties_outside_radius_and_empty_sets():
    # one prediction equidistant from two dots: one pair only
    assert counts([[1, 0]], [[0, 0], [2, 0]], 1.5) == Counts(1, 0, 1)
    # two predictions equidistant from one dot
    assert counts([[0, 1], [0, -1]], [[0, 0]], 1.0) == Counts(1, 1, 0)
    # outside the radius, and exactly on it (counts)
    assert counts([[0, 0]], [[3, 0]], 2.0) == Counts(0, 1, 1)
    assert counts([[0, 0]], [[3, 0]], 3.0) == Counts(1, 0, 0)
    # empty predictions, empty truth, both empty
    assert counts(np.zeros((0, 2)), [[1, 1], [5, 5]], 2.0) == Counts(0, 0, 2)
    assert counts([[1, 1]], [], 2.0) == Counts(0, 1, 0)
    assert counts([], [], 2.0) == Counts(0, 0, 0)
    assert match_points([], [], 1.0).pairs.shape == (0, 2)


def test_several_radii_at_once():
    pred = [[0, 0], [10, 0], [20, 0]]
    true = [[1, 0], [13, 0], [26, 0]]
    assert [m.counts.tp for m in match_radii(pred, true, [0.5, 1, 3, 6])] == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        match_radii(pred, true, [-1.0])


def test_undefined_scores_are_nan_never_zero():
    none_predicted = Counts(0, 0, 4)
    assert math.isnan(none_predicted.precision) and none_predicted.recall == 0 and none_predicted.f1 == 0
    nothing_there = Counts(0, 3, 0)
    assert nothing_there.precision == 0 and math.isnan(nothing_there.recall) and nothing_there.f1 == 0
    assert all(math.isnan(v) for v in Counts(0, 0, 0).scores().values())
    assert Counts(3, 1, 2).scores() == {"precision": 0.75, "recall": 0.6, "f1": 6 / 9}
    assert Counts(3, 1, 2).count_error == -1


def test_set_scores_come_from_summed_counts():
    per_image = [Counts(0, 0, 5), Counts(3, 1, 0)]  # the first image has no predictions
    summed = total(per_image)
    assert summed == Counts(3, 1, 5)
    assert summed.precision == 0.75 and summed.recall == 3 / 8 and summed.f1 == 0.5
    assert math.isnan(total([]).f1)


def test_matching_is_a_maximum_matching():
    rng = np.random.default_rng(7)
    for _ in range(30):
        pred, true = rng.uniform(0, 30, (rng.integers(0, 25), 2)), rng.uniform(0, 30, (rng.integers(0, 25), 2))
        within = cdist(pred, true) <= 4.0 if len(pred) and len(true) else np.zeros((len(pred), len(true)), bool)
        best = int((maximum_bipartite_matching(csr_matrix(within), perm_type="column") >= 0).sum())
        m = match_points(pred, true, 4.0)
        assert m.counts.tp == best
        assert len(set(m.pairs[:, 0])) == len(set(m.pairs[:, 1])) == best
        assert np.all(m.distances <= 4.0)
        tp = prefix_true_positives(pred, true, 4.0)
        assert [match_points(pred[:k], true, 4.0).counts.tp for k in range(len(pred) + 1)] == tp.tolist()


# ---- threshold choice --------------------------------------------------------------------------

def two_images():
    # Image 1: dots (10,10), (50,50); peaks on both (0.9, 0.8) and a false one (0.3).
    # Image 2: dot (20,20); its peak has 0.5, below a false peak of 0.6; another false one at 0.1.
    candidates = [Peaks(np.array([[10, 10], [50, 51], [100, 100]], float), np.array([0.9, 0.8, 0.3])),
                  Peaks(np.array([[70, 70], [20, 21], [90, 90]], float), np.array([0.6, 0.5, 0.1]))]
    truths = [np.array([[10, 10], [50, 50]], float), np.array([[20, 20]], float)]
    return candidates, truths


def test_threshold_with_a_known_best():
    # t kept  tp  F1 = 2tp / (kept + 3)
    # <0.1 6  3   6/9    0.1 5  3  6/8    0.3 4  3  6/7 (best)   0.5 3  2  4/6
    # 0.6  2  2   4/5    0.8 1  1  2/4    0.9 0  0  0
    candidates, truths = two_images()
    choice = choose_threshold(candidates, truths, radius=3.0)
    assert choice.threshold == 0.3 and choice.counts == Counts(3, 1, 0)
    np.testing.assert_allclose(choice.f1, [6 / 9, 6 / 8, 6 / 7, 4 / 6, 4 / 5, 2 / 4, 0])
    kept = [threshold_rule(p, choice.threshold) for p in candidates]
    assert total(match_points(k.points, t, 3.0).counts for k, t in zip(kept, truths)) == choice.counts


def test_threshold_ties_go_to_the_largest_threshold():
    # dots A, B; peaks A 0.9, X 0.8 (false), Y 0.75 (false), B 0.7.
    # {A}: 2/3 at t=0.8; {A,X}: 2/4; {A,X,Y}: 2/5; all: 4/6 = 2/3 below 0.7 -> the tie goes to 0.8
    peaks = Peaks(np.array([[0, 0], [40, 40], [60, 60], [20, 0]], float), np.array([0.9, 0.8, 0.75, 0.7]))
    choice = choose_threshold([peaks], [np.array([[0, 0], [20, 0]], float)], radius=2.0)
    assert choice.threshold == 0.8 and choice.counts == Counts(1, 0, 1)


def test_threshold_edge_cases():
    candidates, truths = two_images()
    no_dots = choose_threshold(candidates, [np.zeros((0, 2))] * 2, radius=3.0)
    assert no_dots.threshold == 0.9 and no_dots.counts == Counts(0, 0, 0)
    no_peaks = choose_threshold([Peaks.empty(), Peaks.empty()], truths, radius=3.0)
    assert no_peaks.threshold == -np.inf and no_peaks.counts == Counts(0, 0, 3)
    with pytest.raises(ValueError):
        choose_threshold(candidates, truths[:1], radius=3.0)


def test_threshold_agrees_with_brute_force():
    rng = np.random.default_rng(11)
    truths = [rng.uniform(0, 100, (rng.integers(0, 30), 2)) for _ in range(6)]
    candidates = []
    for t in truths:
        near = t[rng.random(len(t)) < 0.8]  # found, roughly: moved by 1.5 pixels
        noise = rng.uniform(0, 100, (rng.integers(0, 15), 2))
        pts = np.concatenate([near + rng.normal(0, 1.5, near.shape), noise])
        vals = np.round(np.concatenate([rng.uniform(0.3, 1, len(near)), rng.uniform(0, 0.7, len(noise))]), 2)
        order = np.argsort(-vals, kind="stable")
        candidates.append(Peaks(pts[order], vals[order]))
    choice = choose_threshold(candidates, truths, radius=3.0)
    for t, f1 in zip(choice.thresholds, choice.f1):
        brute = total(match_points(threshold_rule(p, t).points, g, 3.0).counts for p, g in zip(candidates, truths))
        assert brute.f1 == f1
    assert choice.f1[choice.thresholds == choice.threshold] == np.nanmax(choice.f1)


def test_radii():
    r = radii_for("MBM")
    assert r.values == (6.75, 13.5, 20.25) and r.primary == 13.5
    assert radii_for("new", spacing=10.0).values == (2.5, 5.0, 7.5)
    # an unknown dataset is one message pointing to add-dataset (it once was a bare KeyError after training)
    from cellbench.errors import ConfigError
    with pytest.raises(ConfigError, match=r"unknown dataset 'new'.*add-dataset"):
        radii_for("new")
