"""The data-efficiency study: training subsets of a split (nested, seeded, test and validation
unchanged), their runs (same steps per epoch as the whole split), the workflow's targets, and the
table and figure."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from cellbench import REPO_ROOT
from cellbench.config import load_config, subset_runs, validate
from cellbench.data.splits import check_split, draw_subset
from cellbench.errors import ConfigError, DataError
from cellbench.io import read_json, write_json
from cellbench.reporting.build import build_data_efficiency
from cellbench.reporting.publish import publish
from cellbench.runs import METADATA, METRICS, run_dir
from cellbench.stages.data import split_stage, subset_stage
from cellbench.stages.evaluate import evaluate_stage
from cellbench.stages.train import train_stage
from cellbench.training.batches import DeviceDataset, plan_epoch

from test_workflow import _env


@pytest.fixture(scope="module")
def vgg_split(prepared, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vgg_subsets")
    config = load_config(REPO_ROOT / "config" / "cpu.yaml")
    prepared["VGG"].save(folder / "patches.npz")
    split_stage(config, "VGG", 0, folder / "patches.npz", folder / "seed0.json")
    return config, folder


def test_subsets_are_nested_seeded_and_keep_test_and_val(vgg_split):
    config, folder = vgg_split
    whole = read_json(folder / "seed0.json")
    subsets = {}
    for size in (8, 16, 32):
        for repeat in (0, 1):
            out = folder / f"seed0-n{size}-r{repeat}.json"
            subset_stage("VGG", size, repeat, folder / "patches.npz", folder / "seed0.json", out)
            subsets[size, repeat] = read_json(out)
    for (size, repeat), split in subsets.items():
        assert len(split["train"]) == size and set(split["train"]) <= set(whole["train"])
        assert split["test"] == whole["test"] and split["val"] == whole["val"]
        assert split["subset"] == {"size": size, "repeat": repeat, "of": len(whole["train"]),
                                   "epoch_patches": len(whole["train"])}   # VGG: one patch per image
    for repeat in (0, 1):   # nested within a repeat
        assert set(subsets[8, repeat]["train"]) < set(subsets[16, repeat]["train"]) < set(subsets[32, repeat]["train"])
    assert subsets[8, 0]["train"] != subsets[8, 1]["train"]   # repeats differ
    # the same draw on every machine: the generator is numpy's PCG64 seeded with (split seed, repeat)
    assert draw_subset(whole["train"], 0, 8, 0) == subsets[8, 0]["train"]
    again = folder / "again.json"
    subset_stage("VGG", 8, 0, folder / "patches.npz", folder / "seed0.json", again)
    assert again.read_bytes() == (folder / "seed0-n8-r0.json").read_bytes()


def test_a_subset_not_smaller_than_the_split_or_edited_is_refused(vgg_split, prepared):
    _, folder = vgg_split
    whole = read_json(folder / "seed0.json")
    with pytest.raises(ConfigError, match=f"subset of {len(whole['train'])} images.*has {len(whole['train'])}"):
        subset_stage("VGG", len(whole["train"]), 0, folder / "patches.npz", folder / "seed0.json", folder / "x.json")
    subset_stage("VGG", 8, 0, folder / "patches.npz", folder / "seed0.json", folder / "edit.json")
    edited = read_json(folder / "edit.json")
    edited["train"][0] = next(i for i in whole["train"] if i not in edited["train"])
    write_json(folder / "edit.json", edited)
    data = prepared["VGG"]
    with pytest.raises(DataError, match="edit.json: its 'train' images are not those"):
        check_split(edited, data.image_ids.tolist(), data.image_groups.tolist(), folder / "edit.json")
    subset_stage("VGG", 8, 0, folder / "patches.npz", folder / "seed0.json", folder / "kept.json")
    with pytest.raises(DataError, match="kept.json: is a training subset already"):
        subset_stage("VGG", 4, 0, folder / "patches.npz", folder / "kept.json", folder / "y.json")


def test_an_epoch_of_a_subset_draws_as_many_patches_as_the_whole_split(prepared):
    data = prepared["VGG"].subset(prepared["VGG"].image_ids[:5].tolist())
    ds = DeviceDataset(data, torch.device("cpu"))
    plan = plan_epoch(ds, 8, torch.Generator().manual_seed(0), 96, samples=23)
    order = plan.draws[0]
    assert order.shape == (23,)
    counts = torch.bincount(order, minlength=5)
    assert counts.min() >= 4 and counts.max() <= 5   # shuffled passes: every patch 4 or 5 times
    # without samples (a whole split), the draws are what they were before subsets existed: one
    # permutation, then the flips and the crop corners, from the same generator
    plain = plan_epoch(ds, 8, torch.Generator().manual_seed(0), 96)
    same = plan_epoch(ds, 8, torch.Generator().manual_seed(0), 96, samples=5)
    g = torch.Generator().manual_seed(0)
    h, w = data.images.shape[1:3]
    expected = torch.cat([torch.randperm(5, generator=g)[None], torch.randint(0, 2, (3, 5), generator=g),
                          torch.randint(0, h - 96 + 1, (1, 5), generator=g), torch.randint(0, w - 96 + 1, (1, 5), generator=g)])
    assert torch.equal(plain.draws, expected) and torch.equal(same.draws, expected)


def test_a_subset_run_trains_on_the_subset_for_the_whole_splits_steps(vgg_split, tmp_path):
    config, folder = vgg_split
    config = json.loads(json.dumps(config))
    config["train"].update(epochs=2, restart_period=2)
    subset_stage("VGG", 8, 0, folder / "patches.npz", folder / "seed0.json", folder / "seed0-n8-r0.json")
    run = run_dir(tmp_path, "VGG", "fcrn", 0, "-n8-r0")
    train_stage(config, "VGG", "fcrn", 0, folder / "patches.npz", folder / "seed0-n8-r0.json", run, threads=2)
    evaluate_stage(config, "VGG", "fcrn", 0, folder / "patches.npz", folder / "seed0-n8-r0.json", run, threads=2)
    meta, metrics = read_json(run / METADATA), read_json(run / METRICS)
    assert run.name == "seed0-n8-r0"
    assert meta["train_images"] == 8 and meta["subset"]["size"] == 8 and metrics["subset"] == meta["subset"]
    assert metrics["train_images"] == 8 and metrics["n_images"] == len(read_json(folder / "seed0.json")["test"])
    # GAME(0) is the MAE; finer grids can only add error
    assert metrics["game0"] == pytest.approx(metrics["mae"], abs=1e-3)
    assert metrics["game0"] <= metrics["game1"] <= metrics["game2"] <= metrics["game3"]


def test_the_workflow_targets_subset_runs_with_their_own_splits(tmp_path):
    overlay = tmp_path / "study.yaml"
    overlay.write_text("datasets: [VGG, MBM]\ntrain: {max_images: {train: null}}\n"
                       "data_efficiency:\n  sizes: {VGG: [8, 16], MBM: [5]}\n  repeats: 2\n"
                       "  methods: {MBM: [fcrn, mean_count]}\n")
    # --forceall: every job of the target planned, whatever this checkout's results/ already holds
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--nolock", "--workflow-profile",
                             "profiles/smoke", "--configfile", "config/smoke.yaml", str(overlay), "--", "data_efficiency"],
                            cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    config = validate(load_config(REPO_ROOT / "config" / "smoke.yaml", overlay))
    from cellbench.methods import selected_methods
    methods = selected_methods(config)
    vgg, mbm = subset_runs(config, "VGG", methods), subset_runs(config, "MBM", methods)
    assert len(vgg) == len(methods) * 2 * 2 and {m for m, _, _ in mbm} == {"fcrn", "mean_count"}
    assert "results/VGG/fcrn/seed0-n16-r1/metrics.json" in out and "results/MBM/fcrn/seed0-n5-r0/metrics.json" in out
    assert "results/MBM/fcrn/seed0/metrics.json" in out                   # the whole split's run
    assert "results/MBM/dcl/seed0-n5-r0" not in out                         # not asked for on MBM
    assert "results/splits/VGG/seed0-n8-r1.json" in out and "rule subset" in out


@pytest.mark.parametrize("overlay, message", [
    ({"data_efficiency": {"sizes": {"ADI": [5]}}}, "data_efficiency.sizes: 'ADI' is not one of datasets"),
    ({"data_efficiency": {"sizes": {"VGG": [5]}, "split_seed": 7}}, "split_seed: 7 is not a seed run on VGG"),
    ({"data_efficiency": {"sizes": {"VGG": [0]}}}, "data_efficiency.sizes.VGG"),
    ({"data_efficiency": {"sizes": {"VGG": [8]}}, "train": {"max_images": {"train": 4}}},
     "train.max_images.train is 4, which cuts every training split"),
])
def test_a_bad_study_is_refused_naming_the_key(overlay, message):
    config = load_config(REPO_ROOT / "config" / "cpu-vgg.yaml")
    config.update(overlay)
    with pytest.raises(ConfigError, match=message):
        validate(config)
    good = validate({**load_config(REPO_ROOT / "config" / "cpu-vgg.yaml"),
                     "data_efficiency": {"sizes": {"VGG": [5]}, "methods": {"VGG": ["nothing"]}}})
    with pytest.raises(ConfigError, match="data_efficiency.methods.VGG: nothing not among the selected"):
        subset_runs(good, "VGG", ["fcrn"])


def _fake_run(results, dataset, method, subset, mae, status="trained"):
    folder = run_dir(results, dataset, method, 0, subset)
    write_json(folder / METRICS, {"mae": mae, "rmse": mae * 1.2, "status": status,
                                  **{f"game{L}": mae * (1 + L) for L in range(4)}})
    write_json(folder / METADATA, {"environment": {"device": "cpu", "torch": "x", "git": {"commit": "abc"}},
                                   "config": {"train": {"epochs": 30}}, "wall_seconds": 1.0})


def test_the_table_and_figure_show_mean_and_spread_over_repeats(tmp_path):
    config = validate({**load_config(REPO_ROOT / "config" / "cpu-vgg.yaml"), "methods": ["fcrn", "mean_count"],
                       "data_efficiency": {"sizes": {"VGG": [8, 32]}, "repeats": 2}})
    results, reports = tmp_path / "results", tmp_path / "reports"
    write_json(results / "splits" / "VGG" / "seed0.json", {"train": [str(i) for i in range(100)]})
    for r, (a, b) in enumerate([(10.0, 6.0), (14.0, 4.0)]):
        _fake_run(results, "VGG", "fcrn", f"-n8-r{r}", a)
        _fake_run(results, "VGG", "fcrn", f"-n32-r{r}", b, status="did not learn" if r else "trained")
        _fake_run(results, "VGG", "mean_count", f"-n8-r{r}", 50.0)
        _fake_run(results, "VGG", "mean_count", f"-n32-r{r}", 51.0)
    _fake_run(results, "VGG", "fcrn", "", 3.0)
    build_data_efficiency(config, results, reports)
    table = (reports / "data_efficiency.md").read_text()
    assert "VGG N=100 (all)" in table
    fcrn = next(line for line in table.splitlines() if line.startswith("| fcrn") or line.startswith("| **fcrn"))
    assert f"12.00 ± {np.std([10, 14], ddof=1):.2f} (n=2)" in fcrn and "[1 failed]" in fcrn and "3.00 (n=1)" in fcrn
    assert "| missing" in next(line for line in table.splitlines() if "mean_count" in line)   # no whole-split run
    assert "published: FCRN-A" in table and "2.9 ± 0.2" in table
    tidy = pd.read_csv(reports / "data_efficiency.csv")
    row = tidy[(tidy["method"] == "fcrn") & (tidy["train_images"] == 8)].iloc[0]
    assert row["mae_mean"] == pytest.approx(12.0) and row["game3_mean"] == pytest.approx(48.0)
    assert (reports / "figures" / "data_efficiency.png").stat().st_size > 10_000
    game = (reports / "data_efficiency_game.md").read_text()         # GAME of the whole split's runs
    assert "| fcrn | **3.00** | **6.00** | **9.00** | **12.00** |" in game and "| mean_count | missing |" in game
    runs = pd.read_csv(reports / "data_efficiency_runs.csv")
    assert len(runs) == 2 * 2 * 2 + 2 and runs["present"].sum() == 9
    lines = (reports / "data_efficiency_runs.csv").read_text().splitlines()
    assert lines[1].startswith("VGG,fcrn,0,8,0,False") and ",100,,True" in lines[-1]   # repeats as integers
    # a study alone (no Table 2 yet) is published with its runs, the missing one named, and the
    # splits of its runs only (not those of a repeat still to run)
    write_json(results / "splits" / "VGG" / "seed0-n8-r0.json", {"train": ["0"]})
    write_json(results / "splits" / "VGG" / "seed0-n8-r7.json", {"train": ["1"]})
    alone = publish(results, reports, tmp_path / "study", "study")
    assert len(list((alone / "runs").rglob(METRICS))) == 9
    assert sorted(p.name for p in (alone / "splits" / "VGG").iterdir()) == ["seed0-n8-r0.json", "seed0.json"]
    readme = (alone / "README.md").read_text()
    assert "Missing runs: 1: VGG/mean_count/seed0\n" in readme and "8 of them on training subsets" in readme
    # its README names what it holds: no Table 2 and no compare (which needs per_seed_metrics.csv)
    assert "`data_efficiency*" in readme and "table*" not in readme and "cellbench compare" not in readme
    # published with the study's runs (no per-seed table of ordinary runs beyond the whole split's)
    pd.DataFrame([{"dataset": "VGG", "method": "fcrn", "seed": 0, "present": True}]).to_csv(
        reports / "per_seed_metrics.csv", index=False)
    out = publish(results, reports, tmp_path / "reference", "test")
    assert "cellbench compare" in (out / "README.md").read_text()
    assert (out / "runs" / "VGG" / "fcrn" / "seed0-n32-r1" / METRICS).is_file()
    assert (out / "runs" / "VGG" / "mean_count" / "seed0-n8-r0" / METRICS).is_file()
    assert (out / "data_efficiency.md").is_file() and (out / "figures" / "data_efficiency.png").is_file()
    assert len(list((out / "runs").rglob(METRICS))) == 9
