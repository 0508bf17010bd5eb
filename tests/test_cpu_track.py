"""CI knows when training stops learning: one method trained on VGG at the CPU track's settings
(config/cpu.yaml and the method's `tracks: {cpu: ...}` entry) must beat the floor by a wide margin
on the test split. About 15 s of training on 2 cores; a change that stops the trainer, the
targets, the augmentation or the model from learning fails here, not in an hour-long run."""

from __future__ import annotations

import pandas as pd
import pytest

from cellbench import REPO_ROOT
from cellbench.config import load_config
from cellbench.io import read_json
from cellbench.runs import METADATA, METRICS, PREDICTIONS
from cellbench.stages.data import split_stage
from cellbench.stages.evaluate import evaluate_stage
from cellbench.stages.train import train_stage

METHOD = "fcrn"   # the fastest method of the track (about 0.04 s per step at width 0.25)


@pytest.fixture(scope="module")
def vgg_files(prepared, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vgg")
    config = load_config(REPO_ROOT / "config" / "cpu.yaml")
    prepared["VGG"].save(folder / "patches.npz")
    split_stage(config, "VGG", 0, folder / "patches.npz", folder / "seed0.json")
    return config, folder / "patches.npz", folder / "seed0.json"


def _train_and_evaluate(config, prepared, split, method, run_dir):
    train_stage(config, "VGG", method, 0, prepared, split, run_dir, threads=2)
    evaluate_stage(config, "VGG", method, 0, prepared, split, run_dir, threads=2)
    return read_json(run_dir / METRICS)


def test_a_cpu_track_method_learns_vgg(vgg_files, tmp_path):
    config, prepared, split = vgg_files
    assert config["track"] == "cpu" and config["train"]["width"] == 0.25
    floor = _train_and_evaluate(config, prepared, split, "mean_count", tmp_path / "floor")
    learned = _train_and_evaluate(config, prepared, split, METHOD, tmp_path / METHOD)

    assert floor["mae"] > 30   # VGG's counts spread widely: the floor is far from zero
    assert learned["status"] == "trained"
    assert learned["mae"] <= 0.3 * floor["mae"], (learned["mae"], floor["mae"])
    meta = read_json(tmp_path / METHOD / METADATA)
    assert meta["status"] == "trained" and meta["floor_val_mae"] > 30
    predictions = pd.read_csv(tmp_path / METHOD / PREDICTIONS)
    assert len(predictions) == len(read_json(split)["test"])
