"""A rerun of a job on the CPU reproduces the files it publishes byte for byte (timing lives in
timing.json, outside them)."""

from __future__ import annotations

from cellbench import REPO_ROOT, runs
from cellbench.config import load_config
from cellbench.io import read_json
from cellbench.stages.data import split_stage
from cellbench.stages.run import run_stage

# counter_log.csv holds each epoch's seconds: everything but that column must agree
REPRODUCED = (runs.PREDICTIONS, runs.METRICS, runs.LOCALIZATION, runs.POINTS, runs.LOCALIZATION_SUMMARY)


def test_a_cpu_rerun_reproduces_predictions_metrics_and_localization_byte_for_byte(prepared, tmp_path):
    config = load_config(REPO_ROOT / "config" / "smoke.yaml")
    config["train"]["deterministic"] = True
    prepared["MBM"].save(tmp_path / "patches.npz")
    split_stage(config, "MBM", 0, tmp_path / "patches.npz", tmp_path / "seed0.json")
    for name in ("first", "second"):
        run_stage(config, "MBM", "mcnn", 0, tmp_path / "patches.npz", tmp_path / "seed0.json", tmp_path / name,
                  threads=2)
    for name in REPRODUCED:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
    import pandas as pd
    logs = [pd.read_csv(tmp_path / name / runs.COUNTER_LOG).drop(columns="seconds") for name in ("first", "second")]
    pd.testing.assert_frame_equal(*logs)
    timing = read_json(tmp_path / "first" / runs.TIMING)
    assert set(timing) == {"evaluate", "localize"} and timing["evaluate"]["seconds"] > 0
    assert "inference_images_per_second" not in read_json(tmp_path / "first" / runs.METRICS)


def test_weights_of_another_network_are_one_message(tmp_path):
    """A counter saved by an earlier cellbench (VGG trunk without batch norm, as the old shipped DCL
    models) is refused naming the file and why, not with torch's list of missing keys."""
    import pytest
    import torch

    from cellbench.errors import CellbenchError
    from cellbench.methods import build_model, get_method
    from cellbench.backbones import vgg_features

    spec = get_method("dcl_no_gmp")
    old_trunk = vgg_features("vgg16", "none", 0.25)[0]   # another network's weights
    runs.SavedCounter(method="dcl_no_gmp", best=old_trunk.state_dict(), last=None, best_epoch=1, best_val_mae=1.0,
                      count_scale=1.0, width=0.25).save(tmp_path)
    saved = runs.SavedCounter.read(tmp_path)
    with pytest.raises(CellbenchError, match=r"counter\.pt: cannot be loaded: it was trained before 2026-12-07"):
        saved.model(spec)
    assert isinstance(build_model(spec, "none", width=0.25), torch.nn.Module)
