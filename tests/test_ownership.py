"""A run folder has one writer, and a job whose workflow is gone stops before it writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cellbench import REPO_ROOT
from cellbench.errors import CellbenchError
from cellbench.ownership import GONE_EXIT, OWNER, WORKFLOW_PID_ENV, own_run_dir

HOLD = """
import sys, time
from pathlib import Path
from cellbench.ownership import own_run_dir
with own_run_dir(Path(sys.argv[1]), "test"):
    Path(sys.argv[1], "started").write_text("1")
    time.sleep(float(sys.argv[2]))
    Path(sys.argv[1], "written").write_text("1")
"""


def _holder(run_dir, seconds, **env):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), str(seconds)], cwd=REPO_ROOT,
                               env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run_dir / "started").exists():
        assert process.poll() is None and time.time() < deadline, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)
    return process


def test_a_second_writer_is_refused_while_the_first_lives_and_a_stale_lock_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    first = _holder(run_dir, 30)
    with pytest.raises(CellbenchError, match=rf"another job \(process {first.pid} on .*kill {first.pid}"):
        with own_run_dir(run_dir, "second"):
            pass
    first.kill()
    first.wait()
    assert str(first.pid) in (run_dir / OWNER).read_text()   # killed: its file stays, its lock went with it
    with own_run_dir(run_dir, "second"):
        assert str(os.getpid()) in (run_dir / OWNER).read_text()


def test_a_job_whose_workflow_is_gone_stops_before_writing(tmp_path):
    workflow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run_dir = tmp_path / "run"
    job = _holder(run_dir, 20, **{WORKFLOW_PID_ENV: str(workflow.pid)})
    workflow.kill()
    workflow.wait()
    assert job.wait(timeout=30) == GONE_EXIT
    assert "the workflow that started this job" in job.stderr.read()
    assert not (run_dir / "written").exists()
