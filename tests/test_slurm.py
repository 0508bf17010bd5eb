"""Opt-in: the smoke workflow through a real SLURM (slurmctld + slurmd on this machine, started
by scripts/slurm-local.sh) gives the same outputs and numbers as a local run. Skipped unless
Debian's slurm-wlm is installed (bash scripts/slurm-local.sh install) and we are root."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cellbench import REPO_ROOT

from conftest import MIRROR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("slurmctld") is None or shutil.which("slurmd") is None,
                       reason="SLURM daemons not installed (bash scripts/slurm-local.sh install)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting slurmctld and slurmd needs root"),
    pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                       reason="snakemake-executor-plugin-slurm is not installed"),
]


def test_smoke_through_slurm_matches_a_local_run(tmp_path, mirror):
    env = {**os.environ, "CELLBENCH_DATA_MIRROR": str(MIRROR),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "slurm-smoke.sh"), str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "outputs and metrics match the local run" in result.stdout
    assert (tmp_path / "slurm" / "results" / "MBM" / "dcl" / "seed0" / "localizer.pt").is_file()
