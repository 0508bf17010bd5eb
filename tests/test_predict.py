"""`cellbench predict` on real images from the mirror: a run's own test images get exactly the
counts its evaluate stage wrote; other formats, sizes and bad inputs as a user would give them."""

from __future__ import annotations

import re
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


def _mosaic(mirror, names):
    rgb = [np.asarray(Image.open(mirror / CELLS / f"{n}cell.png").convert("RGB")) for n in names]
    return np.concatenate([np.concatenate(rgb[:2], axis=1), np.concatenate(rgb[2:], axis=1)], axis=0)


def test_a_grey_fluorescence_mosaic_counts_like_its_colour_original_and_is_named(mirror, tmp_path):
    """Four VGG test images tiled into one 512x512 image, saved as a microscope saves fluorescence:
    one 16-bit channel (VGG's cells are blue). Put into the model's signal channel (the others at
    the training means) it is counted within 15% of its true count, with a warning that says what
    was done; copied into all three
    channels (the old behaviour, --grey-into all) the warning names that too."""
    from cellbench.data.readers import get_reader, load_sample
    model = "VGG/fcrn"
    names = pd.read_csv(REPO_ROOT / "models" / model / runs.PREDICTIONS, dtype={"image_id": str})["image_id"][:4]
    samples = {s.image_id: s for s in get_reader("vgg")(mirror / CELLS)}
    true = sum(len(load_sample(samples[n])[1]) for n in names)
    mosaic = _mosaic(mirror, list(names))
    Image.fromarray(mosaic[:, :, 2].astype(np.uint16) * 257).save(tmp_path / "grey16.tif")
    Image.fromarray(mosaic).save(tmp_path / "colour.png")
    result = _predict(tmp_path / "grey16.tif", tmp_path / "colour.png", "--model", model, "--out", tmp_path / "out",
                      "--no-overlays")
    assert result.returncode == 0, result.stderr
    counts = pd.read_csv(tmp_path / "out" / "counts.csv", keep_default_na=False).set_index("image")
    counts.index = [Path(i).name for i in counts.index]
    assert counts.loc["grey16.tif", "pred_count"] == pytest.approx(true, rel=0.15)
    # not closer to the colour original: the grey image has lost the noise of VGG's red and green (domain.py)
    assert counts.loc["colour.png", "pred_count"] == pytest.approx(true, rel=0.15)
    assert "one channel where the model saw three: put into blue" in counts.loc["grey16.tif", "domain_warning"]
    assert counts.loc["colour.png", "domain_warning"] == ""
    assert "grey16.tif: outside what VGG/fcrn was trained on: one channel" in result.stderr
    everywhere = _predict(tmp_path / "grey16.tif", "--model", model, "--out", tmp_path / "all", "--no-overlays",
                          "--grey-into", "all")
    assert everywhere.returncode == 0 and "put into red and green and blue" in everywhere.stderr


def test_images_too_dark_or_at_another_magnification_are_counted_and_warned_about(mirror, tmp_path):
    model = "VGG/fcrn"
    image = np.asarray(Image.open(mirror / CELLS / "001cell.png").convert("RGB"))
    Image.fromarray((image * 0.25).astype(np.uint8)).save(tmp_path / "dark.png")
    big = Image.fromarray(image).resize((768, 768), Image.Resampling.BILINEAR)   # 3x the magnification
    big.save(tmp_path / "zoomed.png")
    result = _predict(tmp_path / "dark.png", tmp_path / "zoomed.png", "--model", model, "--out", tmp_path / "out",
                      "--no-overlays")
    assert result.returncode == 0, result.stderr
    warnings = pd.read_csv(tmp_path / "out" / "counts.csv", keep_default_na=False).set_index("image")["domain_warning"]
    warnings.index = [Path(i).name for i in warnings.index]
    assert re.search(r"intensity 0\.2\d? x the training images'", warnings["dark.png"]), warnings["dark.png"]
    # three times the magnification: the blobs are about 3x the training size, and --scale says by how much
    assert re.search(r"cell size (2\.\d+|3(\.\d+)?) x the training images'.*--scale 0\.3", warnings["zoomed.png"])
    assert "outside what the model was trained on" in result.stdout


def test_grey_into_names_channels_and_refuses_others():
    from cellbench.errors import ConfigError
    from cellbench.predict import grey_channels
    assert grey_channels("auto") is None and grey_channels("all") == (0, 1, 2)
    assert grey_channels("blue") == (2,) and grey_channels("0,g") == (0, 1)
    with pytest.raises(ConfigError, match=r"--grey-into 'purple'"):
        grey_channels("purple")


def test_a_grey_image_keeps_the_training_means_in_the_channels_it_lacks():
    """The channels a single-channel image does not fill hold the training images' mean there (as
    an average over the image: a uint8 image cannot hold 0.51 in every pixel), the signal channel
    the image itself."""
    from cellbench.domain import Domain, place_grey
    domain = Domain(signal_channels=(2,), channel_mean=(0.00184, 0.002, 0.354), spacing=8.5)
    grey = np.random.default_rng(0).integers(0, 256, (64, 48), dtype=np.uint8)
    rgb = place_grey(grey, (2,), domain.fill((2,)))
    assert rgb.dtype == np.uint8 and np.array_equal(rgb[..., 2], grey)
    assert rgb[..., 0].mean() == pytest.approx(0.00184 * 255, abs=1 / 16)
    assert rgb[..., 1].mean() == pytest.approx(0.002 * 255, abs=1 / 16)
    assert domain.fill((0, 1, 2)) == (0.0, 0.0, 0.0)
