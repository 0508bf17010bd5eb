"""`cellbench predict` on real images from the mirror: a run's own test images get exactly the
counts its evaluate stage wrote; other formats, sizes and bad inputs as a user would give them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cellbench import REPO_ROOT, runs
from cellbench.config import load_config
from cellbench.io import read_json
from cellbench.stages.data import split_stage
from cellbench.stages.run import run_stage

CELLS = "cells"   # VGG's folder in the mirror: NNNcell.png, NNNdots.png


@pytest.fixture(scope="module")
def vgg_run(prepared, mirror, tmp_path_factory):
    """A short mcnn run on VGG (smoke settings): weights, predictions.csv, localization.json."""
    folder = tmp_path_factory.mktemp("predict")
    config = load_config(REPO_ROOT / "config" / "smoke.yaml")
    config["datasets"] = ["VGG"]
    prepared["VGG"].save(folder / "patches.npz")
    split_stage(config, "VGG", 0, folder / "patches.npz", folder / "seed0.json")
    run_dir = folder / "run"
    run_stage(config, "VGG", "mcnn", 0, folder / "patches.npz", folder / "seed0.json", run_dir, threads=2)
    return run_dir, read_json(folder / "seed0.json")


def _predict(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-m", "cellbench", "predict", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_a_runs_own_test_images_get_the_counts_evaluate_wrote(vgg_run, mirror, tmp_path):
    run_dir, split = vgg_run
    expected = pd.read_csv(run_dir / runs.PREDICTIONS, dtype={"image_id": str})
    images = [mirror / CELLS / f"{name}cell.png" for name in expected["image_id"]]
    result = _predict(*images, "--run", run_dir, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")
    assert np.allclose(counts["pred_count"], expected["pred_count"], atol=1e-3)   # written with 4 decimals
    points = pd.read_csv(tmp_path / "out" / "points.csv")
    assert set(points["rule"]) == {"threshold"}   # the run chose a threshold on validation
    assert points["x"].between(-0.5, 255.5).all() and points["y"].between(-0.5, 255.5).all()
    for image in images:
        with Image.open(tmp_path / "out" / "overlays" / f"{image.stem}.png") as png:
            assert png.size[0] > 500 and png.size[1] > 300


def test_16_bit_tiff_grayscale_and_large_images(vgg_run, mirror, tmp_path):
    run_dir, split = vgg_run
    names = split["test"][:4]
    rgb = [np.asarray(Image.open(mirror / CELLS / f"{n}cell.png").convert("RGB")) for n in names]
    # 16-bit TIFF of the same pixels (v -> 257 v): counted exactly as the 8-bit PNG
    Image.fromarray((rgb[0][:, :, 2].astype(np.uint16) * 257)).save(tmp_path / "gray16.tif")
    Image.fromarray(rgb[0][:, :, 2]).save(tmp_path / "gray8.png")
    # four test images side by side: one 512x512 image, cut into exactly those four patches
    mosaic = np.concatenate([np.concatenate(rgb[:2], axis=1), np.concatenate(rgb[2:], axis=1)], axis=0)
    Image.fromarray(mosaic).save(tmp_path / "big.png")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("gray16.tif", "gray8.png", "big.png"):
        shutil.move(tmp_path / name, folder / name)
    for n in names:
        shutil.copy(mirror / CELLS / f"{n}cell.png", folder / f"{n}cell.png")
    result = _predict(folder, "--run", run_dir, "--out", tmp_path / "out", "--no-overlays")
    assert result.returncode == 0, result.stderr
    counts = pd.read_csv(tmp_path / "out" / "counts.csv").set_index("image")["pred_count"]
    counts.index = [Path(i).name for i in counts.index]
    assert counts["gray16.tif"] == pytest.approx(counts["gray8.png"], abs=1e-6)
    assert counts["big.png"] == pytest.approx(sum(counts[f"{n}cell.png"] for n in names), abs=1e-3)


def test_bad_inputs_are_named_and_the_others_still_counted(vgg_run, mirror, tmp_path):
    run_dir, _ = vgg_run
    good = mirror / CELLS / "001cell.png"
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.tif").write_bytes(b"")
    data = good.read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 3])
    Image.new("RGB", (40, 30)).save(tmp_path / "tiny.png")
    (tmp_path / "no_images").mkdir()
    result = _predict(good, tmp_path / "notes.png", tmp_path / "empty.tif", tmp_path / "truncated.png",
                      tmp_path / "tiny.png", tmp_path / "no_images", "--run", run_dir, "--out", tmp_path / "out",
                      "--no-overlays")
    assert result.returncode == 1, result.stderr   # some failed, the rest was counted
    for name in ("notes.png", "empty.tif", "truncated.png", "no_images"):
        assert name in result.stderr, name
    assert "tiny.png: 40x30 pixels after preprocessing, smaller than the 256x256 patch" in result.stderr
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")
    assert [Path(i).name for i in counts["image"]] == ["001cell.png"]
    assert "Traceback" not in result.stderr


def test_a_run_without_weights_and_an_unknown_model_are_named(vgg_run, mirror, tmp_path):
    run_dir, _ = vgg_run
    broken = tmp_path / "broken_run"
    broken.mkdir()
    shutil.copy(run_dir / runs.METADATA, broken / runs.METADATA)
    image = mirror / CELLS / "001cell.png"
    result = _predict(image, "--run", broken, "--out", tmp_path / "out")
    assert result.returncode == 2 and f"--run {broken}: no counter.pt in it" in result.stderr
    result = _predict(image, "--model", "VGG/nonexistent", "--out", tmp_path / "out")
    assert result.returncode == 2 and "'VGG/nonexistent': no such shipped model" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_image_named_twice_is_counted_once_and_odd_modes_are_read(vgg_run, mirror, tmp_path):
    run_dir, split = vgg_run
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(mirror / CELLS / "001cell.png", folder / "a.png")
    Image.open(mirror / CELLS / "001cell.png").convert("1").save(folder / "a.tif")   # 1-bit, same stem
    result = _predict(folder, folder / "a.png", "--run", run_dir, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")
    assert sorted(Path(i).name for i in counts["image"]) == ["a.png", "a.tif"]
    assert len(list((tmp_path / "out" / "overlays").glob("*.png"))) == 2   # one overlay each


def test_shipped_models_are_listed_verified_and_count_as_their_run_did(mirror, tmp_path):
    from cellbench.predict import shipped_models
    listing = _predict("--list")
    assert listing.returncode == 0 and "VGG/fcrn" in listing.stdout and "VGG/dcl" in listing.stdout
    for name in [m for m in shipped_models() if m.startswith("VGG/")]:
        expected = pd.read_csv(REPO_ROOT / "models" / name / runs.PREDICTIONS, dtype={"image_id": str}).head(3)
        images = [mirror / CELLS / f"{i}cell.png" for i in expected["image_id"]]
        result = _predict(*images, "--model", name, "--out", tmp_path / name, "--no-overlays")
        assert result.returncode == 0, result.stderr
        counts = pd.read_csv(tmp_path / name / "counts.csv")["pred_count"].to_numpy()
        # half-precision weights: within 0.1% of the full-precision run's counts (scripts/ship_models.py)
        assert np.allclose(counts, expected["pred_count"], rtol=1e-3, atol=1e-3), (name, counts)
    for sizes in (REPO_ROOT / "models").glob("*/*/*.pt"):
        assert sizes.stat().st_size <= 5_000_000


def test_a_changed_shipped_model_is_refused(tmp_path, monkeypatch):
    from cellbench import predict
    copy = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models", copy)
    monkeypatch.setattr(predict, "MODELS_DIR", copy)
    monkeypatch.setattr(predict, "MODELS_MANIFEST", copy / "SHA256SUMS")
    (copy / "VGG" / "fcrn" / "counter.pt").write_bytes(b"changed")
    with pytest.raises(predict.CellbenchError, match=r"fcrn/counter\.pt: its SHA-256 differs"):
        predict.Predictor.shipped("VGG/fcrn")
