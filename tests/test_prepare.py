"""Preprocessing keeps every dot: counts per image are preserved exactly."""

from __future__ import annotations

import numpy as np
import pytest

from cellbench.data.prepare import PreparedDataset, prepare, preprocess
from cellbench.data.readers import read_dcc
from cellbench.data.registry import load_dataset

from conftest import EXPECTED
from test_readers import make_dcc

PATCHES_PER_IMAGE = {"VGG": 1, "MBM": 4, "ADI": 1}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_patch_counts_add_up_to_image_counts(prepared, name):
    data = prepared[name]
    assert data.images.shape[1:] == (256, 256, 3)
    assert len(data.images) == PATCHES_PER_IMAGE[name] * len(data.image_ids)
    per_image = np.bincount(data.patch_image, weights=data.patch_counts(), minlength=len(data.image_ids))
    np.testing.assert_array_equal(per_image, data.image_counts)
    # every point lies inside its 256x256 patch
    assert data.points.min() >= -0.5 and data.points.max() < 255.5


def test_resize_moves_dots_with_the_image():
    image = np.zeros((150, 150, 3), np.uint8)
    points = np.array([[0.0, 0.0], [149.0, 149.0], [74.5, 20.0]])
    (out, moved), = preprocess(image, points, [{"resize": 256}])
    assert out.shape == (256, 256, 3)
    np.testing.assert_allclose(moved, (points + 0.5) * 256 / 150 - 0.5)


def test_mbm_quarters_hold_the_dots_of_their_quarter():
    image = np.zeros((600, 600, 3), np.uint8)
    points = np.array([[10.0, 10.0], [299.0, 5.0], [300.0, 5.0], [599.0, 599.0]])
    patches = preprocess(image, points, load_dataset("MBM").preprocess)
    assert [len(p) for _, p in patches] == [2, 1, 0, 1]  # row-major: top-left, top-right, bottom-left, bottom-right
    assert all(img.shape == (256, 256, 3) for img, _ in patches)


@pytest.mark.parametrize("size,grid", [((306, 322), 1), ((798, 788), 3), ((500, 380), 2), ((640, 641), 3)])
def test_dcc_pipeline_tiles_and_preserves_counts(size, grid):
    rng = np.random.default_rng(1)
    w, h = size
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    points = np.stack([rng.integers(0, w, 40), rng.integers(0, h, 40)], axis=1).astype(float)
    patches = preprocess(image, points, load_dataset("DCC").preprocess)
    assert len(patches) == grid * grid
    assert sum(len(p) for _, p in patches) == 40
    assert all(img.shape == (256, 256, 3) for img, _ in patches)


def test_prepared_dcc_round_trips_through_its_file(tmp_path):
    counts = make_dcc(tmp_path, [("trainval", (306, 322)), ("test", (798, 788))])
    data = prepare(read_dcc(tmp_path / "DCC"), load_dataset("DCC").preprocess)
    data.save(tmp_path / "patches.npz")
    again = PreparedDataset.load(tmp_path / "patches.npz")
    assert dict(zip(again.image_ids.tolist(), again.image_counts.tolist())) == counts
    # the reader lists images sorted by name (test_ before trainval_), not in the order made
    per_image = np.bincount(again.patch_image, weights=again.patch_counts())
    assert per_image.tolist() == [counts[i] for i in again.image_ids.tolist()]
    subset = again.subset(["test_img1"])
    assert len(subset.images) == 9 and subset.patch_counts().sum() == counts["test_img1"]


def _mbm_copy(mirror, tmp_path, n_images: int = 2):
    """The first images of MBM (and their dots) in a folder laid out like the mirror."""
    import shutil
    root = tmp_path / "mirror"
    (root / "MBM_data").mkdir(parents=True)
    images = sorted(p for p in (mirror / "MBM_data").glob("*.png") if "_dots_" not in p.name)[:n_images]
    for image in images:
        shutil.copy(image, root / "MBM_data" / image.name)
        dots = image.name.replace(image.name[-7:], "dots_" + image.name[-7:])
        shutil.copy(mirror / "MBM_data" / dots, root / "MBM_data" / dots)
    return root


def _blacken(path):
    from PIL import Image
    with Image.open(path) as img:
        Image.new(img.mode, img.size).save(path)


def test_prepare_refuses_raw_files_changed_after_the_fetch(mirror, tmp_path):
    import json
    from cellbench.data.fetch import sha256
    from cellbench.errors import DataError
    from cellbench.stages.data import prepare_stage
    root = _mbm_copy(mirror, tmp_path)
    files = sorted(p for p in (root / "MBM_data").iterdir())
    verified = tmp_path / "raw" / "verified.json"
    verified.parent.mkdir()
    verified.write_text(json.dumps({"root": str(root), "sha256": {p.relative_to(root).as_posix(): sha256(p)
                                                                  for p in files}}))
    prepare_stage("MBM", verified, tmp_path / "ok.npz")   # unchanged: prepared
    assert (tmp_path / "ok.npz").is_file()
    dots = [p for p in files if "_dots_" in p.name]
    _blacken(dots[0])
    dots[1].unlink()
    with pytest.raises(DataError, match="2 raw file") as caught:
        prepare_stage("MBM", verified, tmp_path / "changed.npz")
    assert f"{dots[0]} changed since it was fetched" in str(caught.value)
    assert f"{dots[1]} is gone" in str(caught.value)
    assert not (tmp_path / "changed.npz").exists()


def test_an_annotation_without_dots_is_refused_unless_the_dataset_allows_it(mirror, tmp_path):
    from cellbench.errors import DataError
    root = _mbm_copy(mirror, tmp_path)
    spec = load_dataset("MBM")
    assert spec.allow_empty_images is False
    dots = sorted((root / "MBM_data").glob("*_dots_*.png"))
    _blacken(dots[1])
    samples = spec.read_samples(root)
    with pytest.raises(DataError, match=r"1 annotation\(s\) without a single dot") as caught:
        prepare(samples, spec.preprocess)
    assert str(dots[1]) in str(caught.value)
    data = prepare(samples, spec.preprocess, allow_empty=True)
    assert sorted(data.image_counts.tolist())[0] == 0
