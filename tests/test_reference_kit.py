"""A rehearsal of the GPU reference kit on the CPU with tiny settings, in a copy of the repository:
benchmarks/reference_run.sh (check, plan, parts, packing), then reference_publish.sh, then
`cellbench compare`, and the published manifest checked with sha256sum. The GPU session has no
second try: what fails here would have failed there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from cellbench import REPO_ROOT

from conftest import MIRROR

COPY_IGNORE = shutil.ignore_patterns(".venv*", ".git", ".snakemake", "results", "reports", "__pycache__",
                                     ".pytest_cache", "*.egg-info")
TINY = "datasets: [MBM]\nmethods: [mcnn, fcrn, mean_count]\n"


def _env(root: Path, **extra: str) -> dict:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    configs = f"config/reference.yaml config/smoke.yaml {root / 'tiny.yaml'}"
    return {**os.environ, "CELLBENCH_DATA_MIRROR": str(MIRROR), "PATH": path, "CELLBENCH_CONFIGFILES": configs,
            **extra}


@pytest.fixture
def kit_copy(tmp_path, mirror):
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, root, ignore=COPY_IGNORE)
    (root / "tiny.yaml").write_text(TINY)
    return root


@pytest.mark.slow
def test_the_reference_kit_runs_packs_publishes_and_compares(kit_copy, tmp_path):
    root, parts = kit_copy, tmp_path / "parts"
    plan = "MBM | mcnn mean_count | 0; MBM | rest | 0"   # "rest": fcrn, every method the overlay leaves
    env = _env(root, CELLBENCH_PLAN=plan, CELLBENCH_SPEED="0", CELLBENCH_BUDGET_S="100000")
    run = subprocess.run(["bash", "benchmarks/reference_run.sh", str(parts)], cwd=root, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = (parts / "plan.log").read_text()
    assert "ready" in log and "estimate:" in log
    packed = sorted(parts.glob("part-*.tar.gz"))
    assert [p.name for p in packed] == ["part-MBM-fcrn-seeds0.tar.gz", "part-MBM-mcnn-mean_count-seeds0.tar.gz"]
    names = [n for p in packed for n in tarfile.open(p).getnames()]
    assert "results/MBM/fcrn/seed0/predictions.csv" in names and "results/splits/MBM/seed0.json" in names
    assert not [n for n in names if n.endswith((".pt", ".ckpt"))]   # no weights travel

    publish = subprocess.run(["bash", "benchmarks/reference_publish.sh", "rehearsal", *map(str, packed), "--",
                              "--note", "CPU rehearsal"], cwd=root, env=env, capture_output=True, text=True,
                             timeout=600)
    assert publish.returncode == 0, publish.stderr[-3000:]
    published = root / "reports" / "reference" / "rehearsal"
    check = subprocess.run(["sha256sum", "-c", "--quiet", "MANIFEST.sha256"], cwd=published, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(list(published.glob("runs/MBM/*/seed0/predictions.csv"))) == 3

    compare = subprocess.run([sys.executable, "-m", "cellbench", "compare", "--reference", str(published),
                              "--reports", str(published), "--out", str(tmp_path / "compare")], cwd=root, env=env,
                             capture_output=True, text=True)
    assert compare.returncode == 0, compare.stderr[-3000:]
    frame = pd.read_csv(tmp_path / "compare.csv")
    assert set(frame["method"]) == {"mcnn", "fcrn", "mean_count"}
    assert (frame["paired_seeds"] == 1).all() and (frame["mae_diff_paired"] == 0).all()


def test_the_kit_stops_before_starting_when_the_mirror_is_missing(kit_copy, tmp_path):
    env = _env(kit_copy, CELLBENCH_PLAN="MBM | mcnn | 0", CELLBENCH_SPEED="0",
               CELLBENCH_DATA_MIRROR=str(tmp_path / "nowhere"))
    run = subprocess.run(["bash", "benchmarks/reference_run.sh", str(tmp_path / "parts")], cwd=kit_copy, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert "dataset MBM: no local copy" in run.stdout and "nowhere" in run.stdout
    assert not list((tmp_path / "parts").glob("*.tar.gz"))
