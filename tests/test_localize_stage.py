"""The localize stage on small runs made here (untrained weights, 2 validation and 2 test MBM
images): its files and columns, the threshold chosen on validation (never test), the count rule
taking the counter's count, DCL's localizer map beside its counter's, and a map without peaks
giving undefined precision (empty in the CSV), not a crash and not 0."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from cellbench import runs
from cellbench.config import load_config
from cellbench.localization import radii_for, true_points
from cellbench.methods import build_localizer, build_model, get_method
from cellbench.stages import localize
from cellbench.stages.localize import COLUMNS, localize_stage


def _files(prepared, root, name):
    """A dataset's prepared file (6 images) and a split whose validation and test images differ."""
    data = prepared[name]
    ids = data.image_ids.tolist()
    data.subset(ids[:6]).save(root / f"{name}.npz")
    split = root / f"{name}_split.json"
    split.write_text(json.dumps({"train": ids[:2], "val": ids[2:4], "test": ids[4:6]}))
    return root / f"{name}.npz", split


@pytest.fixture(scope="module")
def mbm_files(prepared, tmp_path_factory):
    return _files(prepared, tmp_path_factory.mktemp("localize"), "MBM")


def _config(images=2):
    config = load_config()
    config["train"].update(device="cpu", pretrained="none", amp=False, threads=2)
    config["train"]["max_images"] = {"train": 2, "val": images, "test": images}
    return config


def _saved_run(tmp_path, method, seed=0, localizer=False):
    torch.manual_seed(seed)
    spec = get_method(method)
    state = build_model(spec, "none").state_dict()
    run = tmp_path / method
    runs.SavedCounter(method=method, best=state, last=state, best_epoch=1, best_val_mae=1.0,
                      count_scale=1.0).save(run)
    if localizer:
        runs.SavedLocalizer(method=method, best=build_localizer(spec).state_dict(), best_epoch=1, best_val_mae=1.0,
                            count_scale=1.0, wall_seconds=0.0).save(run)
    return run


def test_localize_writes_its_files_with_the_threshold_from_validation(mbm_files, prepared, tmp_path, monkeypatch):
    patches, split = mbm_files
    seen = []
    original = localize.choose_threshold

    def recording(candidates, truths, radius):
        seen.append(([len(t) for t in truths], radius))
        return original(candidates, truths, radius)

    monkeypatch.setattr(localize, "choose_threshold", recording)
    run = _saved_run(tmp_path, "mcnn")
    localize_stage(_config(), "MBM", "mcnn", 0, patches, split, run)

    frame = pd.read_csv(run / runs.LOCALIZATION, dtype={"image_id": str})
    assert frame.columns.tolist() == COLUMNS
    radii = radii_for("MBM")
    assert sorted(frame["radius"].unique()) == list(radii.values)
    assert set(frame["source"]) == {"counter"} and set(frame["rule"]) == {"threshold", "count"}
    assert len(frame) == 2 * 2 * 3  # images x rules x radii
    assert (frame.loc[frame["primary"], "radius"] == radii.primary).all()
    assert (frame["tp"] + frame["fp"] == frame["n_pred"]).all() and (frame["tp"] + frame["fn"] == frame["true_count"]).all()

    # The threshold was chosen once, on the validation images' dots, at the primary radius.
    ids = json.loads(split.read_text())
    data = prepared["MBM"]
    val_true = [len(t) for t in true_points(data.subset(ids["val"]))]
    test_true = [len(t) for t in true_points(data.subset(ids["test"]))]
    assert seen == [(val_true, radii.primary)] and val_true != test_true
    summary = json.loads((run / runs.LOCALIZATION_SUMMARY).read_text())
    assert summary["val_images"] == ids["val"] and summary["test_images"] == ids["test"]
    threshold = frame.loc[frame["rule"] == "threshold", "threshold"]
    assert threshold.nunique() == 1 and threshold.iloc[0] == pytest.approx(summary["sources"]["counter"]["threshold"])
    assert frame.loc[frame["rule"] == "count", "threshold"].isna().all()

    # The count rule keeps round(counter's count) points (or all peaks when there are fewer).
    points = pd.read_csv(run / runs.POINTS, dtype={"image_id": str})
    primary = frame[frame["primary"]].set_index(["rule", "image_id"])
    for image_id in ids["test"]:
        mine = points[points["image_id"] == image_id]
        count = primary.loc[("count", image_id), "pred_count"]
        assert mine["count_rule"].sum() == primary.loc[("count", image_id), "n_pred"] <= max(math.floor(count + 0.5), 0)
        assert mine["threshold_rule"].sum() == primary.loc[("threshold", image_id), "n_pred"]
        size = data.image_sizes[data.image_ids.tolist().index(image_id)]
        assert ((mine[["x", "y"]].to_numpy() >= -0.5) & (mine[["x", "y"]].to_numpy() < size - 0.5)).all()


def test_a_localizer_map_is_the_second_source(prepared, tmp_path):
    patches, split = _files(prepared, tmp_path, "ADI")  # one patch per image: the VGG trunk runs 4 times
    run = _saved_run(tmp_path, "dcl", localizer=True)
    localize_stage(_config(images=1), "ADI", "dcl", 0, patches, split, run)
    frame = pd.read_csv(run / runs.LOCALIZATION)
    assert set(frame["source"]) == {"counter", "localizer"}
    summary = json.loads((run / runs.LOCALIZATION_SUMMARY).read_text())
    assert summary["sources"]["counter"]["map_stride"] == 8 and summary["sources"]["localizer"]["map_stride"] == 1
    # both sources' count rule asks for the same number of points: the counter's count
    count = frame[frame["rule"] == "count"].groupby("source")["pred_count"].first()
    assert count["counter"] == count["localizer"]


def test_a_map_without_peaks_gives_undefined_precision(mbm_files, tmp_path):
    patches, split = mbm_files
    run = _saved_run(tmp_path, "mean_count")  # a constant map: no local maxima at all
    localize_stage(_config(), "MBM", "mean_count", 0, patches, split, run)
    text = (run / runs.LOCALIZATION).read_text()
    frame = pd.read_csv(run / runs.LOCALIZATION)
    assert (frame["n_pred"] == 0).all() and (frame["tp"] == 0).all() and (frame["fn"] > 0).all()
    assert frame["precision"].isna().all() and (frame["recall"] == 0).all() and (frame["f1"] == 0).all()
    header = text.splitlines()[0].split(",")
    first = text.splitlines()[1].split(",")
    assert first[header.index("precision")] == ""  # written empty, never 0
    summary = json.loads((run / runs.LOCALIZATION_SUMMARY).read_text())
    assert summary["sources"]["counter"]["threshold"] == "-inf"
    assert summary["sources"]["counter"]["test"]["threshold"]["13.5"]["precision"] is None
    assert len(pd.read_csv(run / runs.POINTS)) == 0
