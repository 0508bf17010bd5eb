"""One job at a time per run folder, and no job outliving the workflow that started it.

A run job (``python -m cellbench run``) holds an exclusive lock on ``<run>/.owner`` (which names
its host and process) before it writes anything. A second job for the same folder (a job orphaned
when Snakemake was killed, still running, and the job of a later Snakemake started after
``--unlock``) is refused while the first one lives; the kernel drops the lock of a dead one.

The job also watches the Snakemake that started it (its nearest ancestor process whose command
line names snakemake, or ``$CELLBENCH_WORKFLOW_PID``): when that process is gone, the job stops at
once, before it writes another file, and says why. A job started by hand, or on a cluster node
where Snakemake is not an ancestor, has only the lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Iterator

from .errors import CellbenchError

log = logging.getLogger(__name__)

OWNER = ".owner"
WORKFLOW_PID_ENV = "CELLBENCH_WORKFLOW_PID"
WATCH_SECONDS = 2.0
GONE_EXIT = 3   # the exit status of a job whose workflow is gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: it exists
        return True
    return True


def _is_snakemake(pid: int) -> bool:
    """The process runs Snakemake itself (``snakemake ...`` or ``python -m snakemake ...``), not a
    shell whose command line merely mentions it (a conda activation path does)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    names = [Path(a).name for a in args[:3]]
    return bool(names) and (names[0] == "snakemake" or (names[0].startswith("python") and (
        names[1:2] == ["snakemake"] or names[1:3] == ["-m", "snakemake"])))


def _parent(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def workflow_pid() -> int | None:
    """The Snakemake process this job belongs to: $CELLBENCH_WORKFLOW_PID, else the nearest
    ancestor whose command line names snakemake; None when there is none (or no /proc)."""
    if os.environ.get(WORKFLOW_PID_ENV):
        return int(os.environ[WORKFLOW_PID_ENV])
    pid = _parent(os.getpid())
    while pid and pid > 1:
        if _is_snakemake(pid):
            return pid
        pid = _parent(pid)
    return None


def _watch(pid: int, label: str, stop: threading.Event) -> None:
    while not stop.wait(WATCH_SECONDS):
        if not _alive(pid):
            log.error("%s: the workflow that started this job (process %d) is gone; stopping before anything more "
                      "is written (a finished run is never overwritten by an orphaned job)", label, pid)
            logging.shutdown()
            os._exit(GONE_EXIT)


@contextlib.contextmanager
def own_run_dir(run_dir: Path, label: str) -> Iterator[None]:
    """Hold ``run_dir`` for this process (and watch its workflow) inside the block.

    The hold is an exclusive ``flock`` on ``<run>/.owner``: the kernel releases it when the process
    ends however it ends, so a dead owner leaves no stale lock, and two jobs cannot both hold it."""
    import fcntl

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / OWNER
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        try:
            owner = json.loads(handle.read() or "{}")
        except ValueError:
            owner = {}
        handle.close()
        who = f"process {owner.get('pid', '?')} on {owner.get('host', '?')}"
        raise CellbenchError(
            f"{run_dir}: another job ({who}) is writing this run; two jobs must not write one run folder. If a "
            f"Snakemake was killed, its jobs may still run: stop that process (kill {owner.get('pid', 'PID')}), then "
            f"run the workflow again") from None
    handle.seek(0)
    handle.truncate()
    json.dump({"host": socket.gethostname(), "pid": os.getpid()}, handle)
    handle.flush()
    stop = threading.Event()
    parent = workflow_pid()
    if parent is not None:
        threading.Thread(target=_watch, args=(parent, label, stop), daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        handle.close()   # releases the lock; the file stays (another job's open handle may hold it)
