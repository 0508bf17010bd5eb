"""Readers give the right count for every image of VGG, MBM and ADI; bad files are refused by name."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from cellbench.data.readers import RawSample, get_reader, load_sample, read_dcc
from cellbench.data.registry import load_dataset
from cellbench.errors import DataError

from conftest import EXPECTED


def _independent_count(path, dataset: str) -> int:
    """Count dots the way the mirror's README describes, without the package's code."""
    img = Image.open(path)
    if dataset == "MBM":  # 1-bit PNG
        return int(np.count_nonzero(np.asarray(img)))
    rgb = np.asarray(img.convert("RGB")).astype(int)
    if dataset == "VGG":  # exactly (255, 0, 0)
        return int(np.sum((rgb[..., 0] == 255) & (rgb[..., 1] == 0) & (rgb[..., 2] == 0)))
    return int(np.sum((rgb[..., 0] >= 253) & (rgb[..., 1] <= 3) & (rgb[..., 2] <= 3)))  # ADI, strict red


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_image_has_the_right_count(mirror, name):
    spec = load_dataset(name)
    samples = get_reader(spec.reader)(mirror / spec.folder)
    n_images, mean, std = EXPECTED[name]
    assert len(samples) == n_images
    counts = []
    for sample in samples:
        image, points = load_sample(sample)
        assert len(points) == _independent_count(sample.dots_path, name), sample.dots_path
        assert image.ndim == 3 and image.shape[2] == 3
        counts.append(len(points))
    assert np.mean(counts) == pytest.approx(mean, abs=0.006)
    assert np.std(counts) == pytest.approx(std, abs=0.006)


def test_mbm_groups_are_the_eleven_originals(mirror):
    samples = get_reader("mbm")(mirror / "MBM_data")
    groups = {s.group for s in samples}
    assert len(groups) == 11
    assert all(sum(s.group == g for s in samples) == 4 for g in groups)


def test_truncated_image_is_refused_by_name(mirror, tmp_path):
    src = mirror / "cells" / "001cell.png"
    broken = tmp_path / "001cell.png"
    broken.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    shutil.copy(mirror / "cells" / "001dots.png", tmp_path / "001dots.png")
    sample = RawSample("001", broken, tmp_path / "001dots.png", "001", "red_exact")
    with pytest.raises(DataError, match=r"001cell\.png.*(truncated|corrupted)"):
        load_sample(sample)


def test_annotation_of_other_size_is_refused_by_name(mirror, tmp_path):
    dots = tmp_path / "001dots.png"
    Image.open(mirror / "cells" / "001dots.png").resize((128, 128)).save(dots)
    sample = RawSample("001", mirror / "cells" / "001cell.png", dots, "001", "red_exact")
    with pytest.raises(DataError, match=r"001dots\.png: annotation is 128x128 but its image .* is 256x256"):
        load_sample(sample)


def test_image_without_annotation_is_refused(tmp_path):
    Image.new("RGB", (256, 256)).save(tmp_path / "007cell.png")
    with pytest.raises(DataError, match=r"007cell\.png: its annotation .*007dots\.png is missing"):
        get_reader("vgg")(tmp_path)


def make_dcc(root, sizes, seed=0):
    """Small files in the documented DCC layout; returns {image_id: number of dots}."""
    rng = np.random.default_rng(seed)
    counts = {}
    for i, (part, (w, h)) in enumerate(sizes):
        for sub in ("images", "dots"):
            (root / "DCC" / part / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "DCC" / part / "images" / f"img{i}.png")
        mask = np.zeros((h, w), dtype=np.uint8)
        n = int(rng.integers(5, 60))
        mask[rng.integers(0, h, n), rng.integers(0, w, n)] = 255
        Image.fromarray(mask).save(root / "DCC" / part / "dots" / f"img{i}.png")
        counts[f"{part}_img{i}"] = int(np.count_nonzero(mask))
    return counts


def test_dcc_reader_on_files_in_its_documented_layout(tmp_path):
    counts = make_dcc(tmp_path, [("trainval", (306, 322)), ("trainval", (798, 788)), ("test", (500, 380))])
    samples = read_dcc(tmp_path / "DCC")
    assert [s.image_id for s in samples] == ["trainval_img0", "trainval_img1", "test_img2"]
    for sample in samples:
        _, points = load_sample(sample)
        assert len(points) == counts[sample.image_id]


def test_dcc_reader_needs_its_folders(tmp_path):
    with pytest.raises(DataError, match=r"DCC/trainval/images: folder not found"):
        read_dcc(tmp_path / "DCC")
