"""The workflow end to end, in a copy of the repository: the smoke profile on real data (MBM, all
methods) with a method added as one directory, exactly as methods/README.md shows it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cellbench import REPO_ROOT
from cellbench.methods.registry import fitted_method

from conftest import MIRROR

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
COPY_IGNORE = shutil.ignore_patterns(".venv*", ".git", ".snakemake", "results", "reports", "__pycache__",
                                     ".pytest_cache", "*.egg-info")


def _env() -> dict:
    # jobs run `python -m cellbench`: put this interpreter first on the PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "CELLBENCH_DATA_MIRROR": str(MIRROR), "PATH": path}


def _readme_example(root: Path) -> dict[str, str]:
    """The worked example of methods/README.md: file name -> its code block."""
    text = (root / "methods" / "README.md").read_text()
    pattern = r"```\nmethods/tiny/(\S+)\n```\n```\w+\n(.*?)```"
    return {name: code for name, code in re.findall(pattern, text, flags=re.S)}


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory, mirror):
    root = tmp_path_factory.mktemp("cellbench") / "repo"
    shutil.copytree(REPO_ROOT, root, ignore=COPY_IGNORE)
    example = _readme_example(root)
    assert set(example) == {"method.yaml", "model.py"}
    (root / "methods" / "tiny").mkdir()
    for name, code in example.items():
        (root / "methods" / "tiny" / name).write_text(code)
    return root


def _snakemake(root: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    result = subprocess.run([*SNAKEMAKE, *args], cwd=root, env=_env(), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_dry_run_and_lint_are_clean():
    _snakemake(REPO_ROOT, "-n", "--workflow-profile", "profiles/smoke", timeout=300)
    lint = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_a_run_job_takes_its_methods_threads_on_the_track_else_train_threads():
    """Count-ception's CPU-track entry asks for 2 threads (it steps 25x slower on one); the other
    methods take train.threads. The number reaches the stage as --threads, and the run's config
    (its params, which decide when a finished run is trained again) does not carry it."""
    result = _snakemake(REPO_ROOT, "-n", "-p", "-F", "--nolock", "--cores", "2", "--configfile", "config/cpu.yaml",
                        "config/cpu-vgg.yaml", "--config", "train={threads: 1}", "seeds=[0]", "dataset_seeds={}",
                        timeout=300)
    commands = re.findall(r"--config-json (.*?) run --dataset VGG --method (\w+) --seed 0 .*?--threads (\d+)",
                          result.stdout)
    threads = {method: int(n) for _, method, n in commands}
    assert threads["countception"] == 2 and threads["fcrn"] == 1 and len(threads) >= 10
    assert not any('"threads"' in config for config, _, _ in commands)


@pytest.mark.slow
def test_smoke_workflow_trains_evaluates_and_reports_every_method(workflow_copy):
    root = workflow_copy
    _snakemake(root, "--workflow-profile", "profiles/smoke", "--config", "datasets=[MBM]")
    smoke = yaml.safe_load((root / "config" / "smoke.yaml").read_text())
    methods = sorted(({p.parent.name for p in (root / "methods").glob("*/method.yaml")} | {"dcl_no_gmp"})
                     - set(smoke["exclude_methods"]))
    assert {"dcl", "mean_count", "dm_count", "tiny"} <= set(methods)
    n_test = smoke["train"]["max_images"]["test"]
    for method in methods:
        run = root / "results" / "MBM" / method / "seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        predictions = pd.read_csv(run / "predictions.csv")
        assert metrics["n_images"] == len(predictions) == n_test
        assert metrics["mae"] == pytest.approx((predictions["pred_count"] - predictions["true_count"]).abs().mean(),
                                               abs=1e-3)
        meta = json.loads((run / "metadata.json").read_text())
        assert meta["seed"] == 0 and meta["environment"]["torch"] and meta["initialisation"]
        # 2 epochs on 4 images: a run may well be marked as not having learned; the mark travels
        assert meta["status"] in (("fitted",) if fitted_method(meta["method"]) else ("trained",)) + ("did not learn",)
        assert meta["warmup_epochs"] == 0 and meta["input_stats"]["source"] == "training split"
        assert metrics["status"] == meta["status"]
        # smoke: 2 epochs; a baseline without learning (mean_count) is validated once, at epoch 0
        assert len(pd.read_csv(run / "counter_log.csv")) == (1 if fitted_method(meta["method"]) else 2)
        assert not (run / "counter.ckpt").exists()  # the resume checkpoint is removed when done
        localization = pd.read_csv(run / "localization.csv")
        assert set(localization["rule"]) == {"threshold", "count"} and localization["image_id"].nunique() == n_test
        assert (run / "points.csv").is_file()
        assert json.loads((run / "localization.json").read_text())["threshold_chosen_on"] == "val"
    # MBM counts are whole images: the sum of their four patches
    split = json.loads((root / "results" / "splits" / "MBM" / "seed0.json").read_text())
    dcl = pd.read_csv(root / "results" / "MBM" / "dcl" / "seed0" / "predictions.csv", dtype={"image_id": str})
    assert dcl["image_id"].tolist() == split["test"][:n_test]
    assert "localizer_count" in dcl
    dcl_loc = pd.read_csv(root / "results" / "MBM" / "dcl" / "seed0" / "localization.csv")
    assert set(dcl_loc["source"]) == {"counter", "localizer"}

    table2 = pd.read_csv(root / "reports" / "table2.csv")
    assert set(table2["method"]) == set(methods)
    table4 = pd.read_csv(root / "reports" / "table4_localization.csv")
    assert set(table4["method"]) == set(methods) and (table4["n_seeds"] == 1).all()
    assert (table2["n_seeds"] == 1).all() and table2["mean"].notna().all()
    for name in ("table1_datasets.md", "table3.tex", "paired.md", "model_selection.csv", "README.md",
                 "figures/mae_by_method.pdf", "figures/examples_MBM.png", "figures/learning_curves_MBM.png",
                 "figures/pred_vs_true_MBM.png", "table4_localization.md", "table4_localization.tex",
                 "table4_paired.csv", "localization_per_seed.csv", "figures/localization_MBM.png",
                 "figures/f1_by_radius_MBM.pdf"):
        assert (root / "reports" / name).stat().st_size > 0, name
    assert "126.20 ± 33.13" in (root / "reports" / "table1_datasets.md").read_text()
    # MBM's images are four patches: the error per patch beside the error per image, for every run
    assert json.loads((root / "results" / "MBM" / "dcl" / "seed0" / "metrics.json").read_text())["per_patch"][
        "patches_per_image"] == 4
    assert "MBM MAE per patch" in (root / "reports" / "table2.md").read_text()
    assert "Proto4DME" in (root / "reports" / "published_anchors.md").read_text()

    # the finished run published as a reference: every run, no weights
    subprocess.run([sys.executable, "-m", "cellbench", "publish", "--out", "reports/reference/smoke"], cwd=root,
                   env=_env(), check=True, capture_output=True)
    published = root / "reports" / "reference" / "smoke"
    assert f"Runs: {len(methods)}" in (published / "README.md").read_text()
    assert len(list(published.glob("runs/MBM/*/seed0/metadata.json"))) == len(methods)
    assert not list(published.rglob("*.pt")) and not list(published.rglob("*.ckpt"))

    # Snakemake's own HTML report holds the tables and figures
    _snakemake(root, "--workflow-profile", "profiles/smoke", "--config", "datasets=[MBM]",
               "--report", "reports/report.html", timeout=600)
    html = (root / "reports" / "report.html").read_text(errors="replace")
    for name in ("table2.md", "table4_localization.md", "examples_MBM.png", "localization_MBM.png",
                 "mae_by_method.png"):
        assert name in html, name


@pytest.mark.slow
def test_killed_training_job_resumes_to_the_same_metrics(workflow_copy, tmp_path):
    """Kill a training job mid-run; the rerun resumes from its checkpoint and ends where an
    uninterrupted run ends (CPU, deterministic algorithms)."""
    root = workflow_copy
    overlay = tmp_path / "resume.yaml"
    overlay.write_text("datasets: [MBM]\nmethods: [mcnn]\ntrain: {epochs: 8, restart_period: 4, deterministic: true, checkpoint_minutes: 0}\n")
    # the target goes first: --configfile takes every argument after it
    args = ["--workflow-profile", "profiles/smoke", "--configfile", "config/smoke.yaml", str(overlay)]
    target = "results/MBM/mcnn/seed0/metrics.json"
    run = root / "results" / "MBM" / "mcnn" / "seed0"
    log_csv = run / "counter_log.csv"

    _snakemake(root, target, *args)
    reference = json.loads((root / target).read_text())
    shutil.rmtree(run)

    job = subprocess.Popen([*SNAKEMAKE, target, *args], cwd=root, env=_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    import time
    deadline = time.time() + 600
    while time.time() < deadline and job.poll() is None:
        if log_csv.exists() and len(log_csv.read_text().splitlines()) >= 4:  # 3 epochs done
            break
        time.sleep(0.1)
    subprocess.run(["pkill", "-9", "-f", "cellbench .*run --dataset MBM --method mcnn"], check=True)
    assert job.wait(timeout=120) != 0  # the workflow saw its job die
    assert (run / "counter.ckpt").is_file() and not (root / target).exists()

    _snakemake(root, target, *args)
    resumed = json.loads((root / target).read_text())
    train_log = (root / "results" / "logs" / "run" / "MBM_mcnn_seed0.log").read_text()
    assert "resuming from" in train_log
    for key in ("mae", "rmse", "best_epoch", "best_val_mae"):
        assert resumed[key] == reference[key], key
    assert len(pd.read_csv(log_csv)) == 8
