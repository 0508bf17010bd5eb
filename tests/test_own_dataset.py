"""A dataset of your own (add-dataset): annotation tools' exports read with their pixel-centre
conventions, the dataset measured and defined, read by every stage from its definition, and bad
input named before anything trains."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from cellbench import REPO_ROOT
from cellbench.data import registry
from cellbench.data.own import add_dataset, choose_rescale, choose_sigma
from cellbench.data.prepare import prepare
from cellbench.data.readers import get_reader, load_sample, read_point_csv
from cellbench.errors import CellbenchError, DataError

IMAGES = 12


def _vgg_pairs(mirror, n=IMAGES):
    """(image path, dots as x, y in cellbench's convention) of the first n VGG images."""
    samples = get_reader("vgg")(mirror / "cells")[:n]
    return [(s.image_path, load_sample(s)[1]) for s in samples]


def _write(points: np.ndarray, path, fmt: str) -> None:
    if fmt == "fiji":   # ImageJ's Measure of a multi-point selection: pixel i's centre at i + 0.5
        frame = pd.DataFrame({" ": np.arange(1, len(points) + 1), "X": points[:, 0] + 0.5, "Y": points[:, 1] + 0.5,
                              "Ch": 1})
    elif fmt == "napari":   # a Points layer saved as CSV: axis-0 is the row, axis-1 the column
        frame = pd.DataFrame({"index": np.arange(len(points)), "axis-0": points[:, 1], "axis-1": points[:, 0]})
    else:
        frame = pd.DataFrame({"x": points[:, 0], "y": points[:, 1]})
    frame.to_csv(path, index=False)


def _own_folder(tmp_path, mirror, fmt: str, n=IMAGES):
    root = tmp_path / "mycells"
    (root / "images").mkdir(parents=True)
    (root / "points").mkdir()
    truth = {}
    for image, dots in _vgg_pairs(mirror, n):
        shutil.copy(image, root / "images" / image.name)
        _write(dots, root / "points" / f"{image.stem}.csv", fmt)
        truth[image.stem] = dots
    return root, truth


@pytest.mark.parametrize("fmt", ["fiji", "napari", "xy"])
def test_each_tool_export_gives_the_dots_of_the_dot_images_exactly(tmp_path, mirror, fmt):
    for image, dots in _vgg_pairs(mirror, 4):
        path = tmp_path / f"{image.stem}.csv"
        _write(dots, path, fmt)
        np.testing.assert_allclose(read_point_csv(path, fmt), dots, atol=1e-9)


def test_a_fiji_point_at_x_12_5_is_pixel_12(tmp_path):
    """ImageJ's pixel i covers [i, i + 1): a click on pixel (12, 3) gives X = 12.5, Y = 3.5, which
    is cellbench's pixel 12 (centre at 12), row 3."""
    path = tmp_path / "a.csv"
    path.write_text(" ,X,Y\n1,12.5,3.5\n")
    assert read_point_csv(path, "fiji").tolist() == [[12.0, 3.0]]
    path.write_text("index,axis-0,axis-1\n0,3.0,12.0\n")
    assert read_point_csv(path, "napari").tolist() == [[12.0, 3.0]]


def test_add_dataset_measures_and_defines_a_dataset_every_stage_reads(tmp_path, mirror, monkeypatch):
    root, truth = _own_folder(tmp_path, mirror, "fiji")
    monkeypatch.setattr(registry, "datasets_dir", lambda: tmp_path / "datasets")
    target, found = add_dataset("MYCELLS", root / "images", root / "points", datasets_dir=tmp_path / "datasets")
    spec = registry.load_dataset("MYCELLS")
    assert spec.location == tmp_path and spec.folder == "mycells" and spec.reader == "points"
    # VGG's cells: about 9 px apart in these 12 images (8.5 in all 200), within what the methods expect (no
    # rescale), sigma 2, signal in blue
    from cellbench.localization.radii import median_spacing
    assert found.spacing == pytest.approx(median_spacing(truth.values()), abs=1e-3)
    assert 8 < found.spacing < 10 and found.rescale == 1.0 and found.sigma == choose_sigma(found.spacing) == 2.5
    assert spec.cells.spacing == found.spacing and spec.cells.signal_channels == (2,)
    assert found.formats == {"fiji": IMAGES} and found.cells == sum(len(d) for d in truth.values())
    # every file hashed, paths relative to the location: the fetch verifies them as it verifies a mirror
    from cellbench.data.fetch import fetch
    verified_root, hashes = fetch(spec, None, tmp_path / "download")
    assert verified_root == tmp_path and len(hashes) == 2 * IMAGES
    data = prepare(spec.read_samples(verified_root), spec.preprocess)
    counts = dict(zip(data.image_ids.tolist(), data.image_counts.tolist()))
    assert counts == {k: len(v) for k, v in truth.items()}
    assert "cell spacing" in found.summary() and "signal channels:  [2]" in found.summary()
    written = yaml.safe_load((target / "dataset.yaml").read_text())
    assert written["preprocess"] == [{"pad_multiple": 256}, {"tile": 256}] and "paper" not in written


def test_cells_far_apart_are_brought_to_the_size_the_methods_expect():
    assert choose_rescale(12.0) == 1.0
    assert choose_rescale(48.0) == pytest.approx(1 / 3, abs=1e-4)   # 16 px apart after it
    assert choose_rescale(4.0) == 4.0
    assert [choose_sigma(s) for s in (8.5, 15.3, 23.0, 2.0)] == [2.0, 3.0, 3.0, 1.0]   # VGG, ADI, MBM, tiny


def test_unpaired_files_and_points_off_the_image_are_named(tmp_path, mirror, monkeypatch):
    root, truth = _own_folder(tmp_path, mirror, "napari", n=3)
    lonely = next(iter(truth))
    (root / "points" / f"{lonely}.csv").unlink()
    (root / "points" / "stray.csv").write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match=rf"1 image\(s\) without annotation: {lonely}cell.png|{lonely}.png"):
        add_dataset("BAD", root / "images", root / "points", datasets_dir=tmp_path / "datasets")
    with pytest.raises(DataError, match=r"annotation\(s\) without image: stray.csv"):
        add_dataset("BAD", root / "images", root / "points", datasets_dir=tmp_path / "datasets")
    (root / "points" / "stray.csv").unlink()
    _write(np.array([[5000.0, 3.0]]), root / "points" / f"{lonely}.csv", "xy")
    with pytest.raises(DataError, match=r"1 point\(s\) outside its image .* first at x=5000, y=3.*microns"):
        add_dataset("BAD", root / "images", root / "points", datasets_dir=tmp_path / "datasets")
    (root / "points" / f"{lonely}.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"not a points CSV cellbench reads: its header 'a,b'"):
        add_dataset("BAD", root / "images", root / "points", datasets_dir=tmp_path / "datasets")
    assert not (tmp_path / "datasets" / "BAD").exists()   # nothing half-written


def test_a_bad_name_and_an_existing_dataset_are_refused(tmp_path, mirror):
    root, _ = _own_folder(tmp_path, mirror, "xy", n=2)
    with pytest.raises(CellbenchError, match=r"letters and digits only"):
        add_dataset("my-cells", root / "images", root / "points", datasets_dir=tmp_path / "datasets")
    with pytest.raises(CellbenchError, match=r"datasets/VGG/dataset.yaml exists"):
        add_dataset("VGG", root / "images", root / "points")


def test_the_command_line_says_what_it_chose_and_what_to_run_next(tmp_path, mirror):
    root, _ = _own_folder(tmp_path, mirror, "fiji", n=4)
    repo = tmp_path / "repo"   # a copy of the workflow's folders: the command writes into the one it runs in
    for folder in ("datasets", "workflow"):
        shutil.copytree(REPO_ROOT / folder, repo / folder)
    result = subprocess.run([sys.executable, "-m", "cellbench", "add-dataset", "MINE", "--images", str(root / "images"),
                             "--points", str(root / "points")], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "cell spacing" in result.stdout and "--config 'datasets=[MINE]'" in result.stdout
    assert (repo / "datasets" / "MINE" / "dataset.yaml").is_file()


def test_the_workflow_takes_an_added_dataset_from_its_own_folder(tmp_path, mirror):
    """add-dataset, then the workflow: it plans every method on the new dataset (the CPU track's
    overlay, written for VGG, MBM and ADI, applies) and fetches, verifies, prepares and splits it
    from its own location, beside the shared mirror; the counts are the annotations'."""
    root, truth = _own_folder(tmp_path, mirror, "napari", n=8)
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, repo, ignore=shutil.ignore_patterns(".venv*", ".git", ".snakemake", "results", "reports",
                                                                   "models", "benchmarks"))
    added = subprocess.run([sys.executable, "-m", "cellbench", "add-dataset", "OWN", "--images", str(root / "images"),
                            "--points", str(root / "points")], cwd=repo, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    plan = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--workflow-profile", "profiles/cpu", "--config",
                           "datasets=[OWN]"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-2000:]
    assert "results/OWN/fcrn/seed2/metrics.json" in plan.stdout and "results/VGG" not in plan.stdout
    made = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--workflow-profile", "profiles/cpu",
                           "--config", "datasets=[OWN]", "--", "results/splits/OWN/seed0.json"], cwd=repo,
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    from cellbench.data.prepare import PreparedDataset
    data = PreparedDataset.load(repo / "results" / "prepared" / "OWN" / "patches.npz")
    assert dict(zip(data.image_ids.tolist(), data.image_counts.tolist())) == {k: len(v) for k, v in truth.items()}
