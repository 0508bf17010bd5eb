"""Preprocessing undone: points of prepared patches map back onto the original images' dots."""

from __future__ import annotations

import numpy as np
import pytest

from cellbench.data.prepare import PatchToImage, PreparedDataset, preprocess, preprocess_tracked
from cellbench.data.readers import get_reader, load_sample
from cellbench.data.registry import load_dataset
from cellbench.localization import (Peaks, image_peaks, image_points, inside_image, match_points,
                                    median_spacing, radii_for, to_original, true_points)
from cellbench.data.registry import dataset_cells


def sorted_rows(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points[np.lexsort((points[:, 1], points[:, 0]))]


def raw_sample(mirror, name: str, index: int = 0):
    spec = load_dataset(name)
    return spec, load_sample(get_reader(spec.reader)(mirror / spec.folder)[index])


@pytest.mark.parametrize("name", ["MBM", "ADI"])
def test_prepared_points_map_back_onto_the_dot_file(mirror, prepared, name):
    spec, (image, dots) = raw_sample(mirror, name)
    data = prepared[name]
    patches = np.flatnonzero(data.patch_image == 0)
    assert len(patches) == {"MBM": 4, "ADI": 1}[name]
    # Exact: the same steps in float64 come back within 1e-6 through the geometry prepare recorded.
    tracked = preprocess_tracked(image, dots, spec.preprocess)
    back = np.concatenate([to_original(data, pts, p) for ((_, pts), _), p in zip(tracked, patches)])
    np.testing.assert_allclose(sorted_rows(back), sorted_rows(dots), atol=1e-6, rtol=0)
    for (_, geometry), p in zip(tracked, patches):
        assert data.patch_geometry(p) == PatchToImage(tuple(data.patch_scale[p]), tuple(data.patch_offset[p]))
        np.testing.assert_array_equal(data.patch_scale[p], geometry.scale)
        np.testing.assert_array_equal(data.patch_offset[p], geometry.offset)
    # The prepared file keeps points as float32 (about 1e-5 pixel): its dots come back that close.
    stored = true_points(data)[0]
    np.testing.assert_allclose(sorted_rows(stored), sorted_rows(dots), atol=1e-4, rtol=0)


def test_mbm_and_adi_geometry_by_hand(prepared):
    # MBM: 600x600 -> 2x2 grid of 300x300 -> 256: x = (x_patch + 0.5) * 300/256 - 0.5 + 300 * col
    mbm = prepared["MBM"]
    np.testing.assert_allclose(mbm.patch_scale[:4], 300 / 256)
    np.testing.assert_allclose(mbm.patch_offset[:4], [[a + 0.5 * 300 / 256 - 0.5 for a in (x, y)]
                                                      for y in (0, 300) for x in (0, 300)])
    # ADI: 150 -> 256
    np.testing.assert_allclose(to_original(prepared["ADI"], [[-0.5, 255.5]], 0), [[-0.5, 149.5]])


@pytest.mark.parametrize("size", [(306, 322), (798, 788), (500, 380)])
def test_dcc_steps_are_undone_and_padding_is_dropped(size):
    rng = np.random.default_rng(2)
    w, h = size
    image = np.zeros((h, w, 3), np.uint8)
    dots = np.stack([rng.integers(0, w, 60), rng.integers(0, h, 60)], axis=1).astype(float)
    tracked = preprocess_tracked(image, dots, load_dataset("DCC").preprocess)
    back = np.concatenate([geometry.apply(pts) for (_, pts), geometry in tracked])
    np.testing.assert_allclose(sorted_rows(back), sorted_rows(dots), atol=1e-9, rtol=0)
    assert [len(p) for _, p in preprocess(image, dots, load_dataset("DCC").preprocess)] == \
           [len(p) for (_, p), _ in tracked]
    # the bottom-right corner of the last (padded) tile lies outside the original image
    (_, _), last = tracked[-1]
    corner = last.apply([[255.0, 255.0]])
    assert inside_image(corner, (w, h)).tolist() == [w == h]


def tiny_dataset() -> PreparedDataset:
    """Two images, the first cut into two patches side by side (each 4x4 pixels of the original)."""
    return PreparedDataset(
        images=np.zeros((3, 4, 4, 3), np.uint8), points=np.array([[1, 1], [2, 3], [0, 0]], np.float32),
        point_offsets=np.array([0, 1, 2, 3]), patch_image=np.array([0, 0, 1]),
        image_ids=np.array(["a", "b"]), image_groups=np.array(["g", "g"]), image_counts=np.array([2, 1]),
        image_sizes=np.array([[8, 4], [2, 2]]),
        patch_scale=np.array([[1.0, 1.0], [1.0, 1.0], [0.5, 0.5]]),
        patch_offset=np.array([[0.0, 0.0], [4.0, 0.0], [-0.25, -0.25]]))


def test_patch_peaks_are_gathered_per_image():
    data = tiny_dataset()
    peaks = image_peaks(data, [Peaks(np.array([[1.0, 1.0]]), np.array([0.2])),
                               Peaks(np.array([[2.0, 3.0], [3.9, 3.9]]), np.array([0.9, 0.1])),
                               Peaks(np.array([[3.0, 3.0], [4.0, 1.0]]), np.array([0.5, 0.4]))])
    # highest first; (3.9, 3.9) of the second patch is (7.9, 3.9), off the 8x4 image's right edge
    assert peaks[0].points.tolist() == [[6.0, 3.0], [1.0, 1.0]]
    assert peaks[0].values.tolist() == [0.9, 0.2]
    assert peaks[1].points.tolist() == [[1.25, 1.25]]  # (1.75, 0.25) is outside the 2x2 image
    assert [p.tolist() for p in true_points(data)] == [[[1.0, 1.0], [6.0, 3.0]], [[-0.25, -0.25]]]
    assert image_points(data, [np.zeros((0, 2))] * 3)[1].shape == (0, 2)
    with pytest.raises(ValueError):
        image_peaks(data, [])


def test_geometry_survives_subset_save_and_load(tmp_path):
    data = tiny_dataset()
    data.save(tmp_path / "p.npz")
    again = PreparedDataset.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(again.patch_offset, data.patch_offset)
    part = again.subset(["b"])
    assert part.patch_scale.tolist() == [[0.5, 0.5]] and part.patch_offset.tolist() == [[-0.25, -0.25]]
    # a file written before the geometry existed still loads; asking for geometry says what to do
    old = {k: getattr(data, k) for k in data.__dataclass_fields__ if not k.startswith("patch_")}
    old["patch_image"] = data.patch_image
    np.savez(tmp_path / "old.npz", **old)
    legacy = PreparedDataset.load(tmp_path / "old.npz")
    assert legacy.patch_scale is None and len(legacy.subset(["a"]).images) == 2
    with pytest.raises(ValueError, match="prepare it again"):
        to_original(legacy, [[0.0, 0.0]], 0)


@pytest.mark.parametrize("name", ["VGG", "MBM", "ADI"])
def test_radii_follow_the_measured_cell_spacing(prepared, name):
    """The spacing in each dataset's definition (cells.spacing) is the one its data give."""
    truths = true_points(prepared[name])
    assert abs(median_spacing(truths) - dataset_cells(name).spacing) <= 0.5
    # the dots matched against themselves (float32 round trip) at the smallest radius: all found
    r = radii_for(name)
    assert match_points(truths[0], sorted_rows(truths[0]), r.values[0]).counts.fn == 0
