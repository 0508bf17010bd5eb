"""Readers give the right count for every image of VGG, MBM and ADI; DCC-like files are paired by
name in two layouts; bad or unpaired files are refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cellbench.data.readers import RawSample, _dcc_role, get_reader, load_sample, read_dcc
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


def make_dcc(root, sizes, seed=0, layout="parts"):
    """Small DCC-like files under ``root/DCC``; returns {image_id: number of dots}.

    ``parts``: ``DCC/<part>/images/imgI.png`` with ``DCC/<part>/dots/imgI.png``; ``flat``: all in
    ``DCC/`` as ``<part>_imgI.png`` with ``<part>_imgI_dots.png``. Both give the ids ``<part>_imgI``.
    """
    rng = np.random.default_rng(seed)
    counts = {}
    for i, (part, (w, h)) in enumerate(sizes):
        if layout == "parts":
            image_path = root / "DCC" / part / "images" / f"img{i}.png"
            dots_path = root / "DCC" / part / "dots" / f"img{i}.png"
        else:
            image_path = root / "DCC" / f"{part}_img{i}.png"
            dots_path = root / "DCC" / f"{part}_img{i}_dots.png"
        for path in (image_path, dots_path):
            path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(image_path)
        mask = np.zeros((h, w), dtype=np.uint8)
        n = int(rng.integers(5, 60))
        mask[rng.integers(0, h, n), rng.integers(0, w, n)] = 255
        Image.fromarray(mask).save(dots_path)
        counts[f"{part}_img{i}"] = int(np.count_nonzero(mask))
    return counts


DCC_SIZES = [("trainval", (306, 322)), ("trainval", (798, 788)), ("test", (500, 380))]


@pytest.mark.parametrize("layout", ["parts", "flat"])
def test_dcc_reader_pairs_files_by_name_in_either_layout(tmp_path, layout):
    counts = make_dcc(tmp_path, DCC_SIZES, layout=layout)
    (tmp_path / "DCC" / ".DS_Store").write_bytes(b"\0")  # hidden and non-image files are not samples
    (tmp_path / "DCC" / "README.txt").write_text("Dublin Cell Counting")
    samples = read_dcc(tmp_path / "DCC")
    assert [s.image_id for s in samples] == ["test_img2", "trainval_img0", "trainval_img1"]
    for sample in samples:
        _, points = load_sample(sample)
        assert len(points) == counts[sample.image_id]


def test_dcc_reader_pairs_vgg_style_names():
    assert _dcc_role(Path("train/001cell.png")) == ("image", "train/001")
    assert _dcc_role(Path("train/001dots.png")) == ("dots", "train/001")
    assert _dcc_role(Path("test/annotations/7.png")) == ("dots", "test/7")
    assert _dcc_role(Path("test/Images/7.png")) == ("image", "test/7")


def test_dcc_reader_needs_its_folder(tmp_path):
    with pytest.raises(DataError, match=r"DCC: folder not found"):
        read_dcc(tmp_path / "DCC")


def test_dcc_reader_refuses_an_empty_folder(tmp_path):
    (tmp_path / "DCC" / "test").mkdir(parents=True)
    with pytest.raises(DataError, match=r"DCC: no image/annotation pairs found"):
        read_dcc(tmp_path / "DCC")


@pytest.mark.parametrize("layout", ["parts", "flat"])
def test_dcc_image_without_annotation_and_the_reverse_are_refused_naming_all(tmp_path, layout):
    make_dcc(tmp_path, DCC_SIZES, layout=layout)
    dcc = tmp_path / "DCC"
    samples = read_dcc(dcc)
    samples[0].dots_path.unlink()      # test_img2 loses its annotation
    samples[1].dots_path.unlink()      # trainval_img0 too
    samples[2].image_path.unlink()     # trainval_img1 loses its image
    with pytest.raises(DataError) as err:
        read_dcc(dcc)
    message = str(err.value)
    assert "2 image(s) without annotation" in message and "1 annotation(s) without image" in message
    for path in (samples[0].image_path, samples[1].image_path, samples[2].dots_path):
        assert path.relative_to(dcc).as_posix() in message, (path, message)


def test_dcc_two_images_of_one_name_are_refused(tmp_path):
    make_dcc(tmp_path, DCC_SIZES[:1])
    images = tmp_path / "DCC" / "trainval" / "images"
    (images / "img0.png").rename(images / "img0cell.png")
    shutil.copy(images / "img0cell.png", images / "img0.png")
    with pytest.raises(DataError, match=r"2 image files for trainval/img0: trainval/images/img0\.png, "
                                        r"trainval/images/img0cell\.png"):
        read_dcc(tmp_path / "DCC")
