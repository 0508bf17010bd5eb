"""One job at a time per run folder, and no job outliving the workflow that started it.

A run job (``python -m cellbench run``) takes ``<run>/.owner`` before it writes anything: a file
created exclusively, holding its host and process id. A second job for the same folder (a job
orphaned when Snakemake was killed, still running, and the job of a later Snakemake started after
``--unlock``) is refused while the first one lives; the file of a dead owner is taken over.

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


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


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
        if "snakemake" in _cmdline(pid):
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


def _read_owner(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def own_run_dir(run_dir: Path, label: str) -> Iterator[None]:
    """Hold ``run_dir`` for this process (and watch its workflow) inside the block."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / OWNER
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_owner(path)
            same_host = owner.get("host") == me["host"]
            if same_host and isinstance(owner.get("pid"), int) and _alive(owner["pid"]):
                raise CellbenchError(
                    f"{run_dir}: another job (process {owner['pid']} on {owner['host']}) is writing this run; two "
                    f"jobs must not write one run folder. If a Snakemake was killed, its jobs may still run: stop "
                    f"that process (kill {owner['pid']}), then run the workflow again")
            if not same_host and owner:
                log.warning("%s: owned by process %s on %s, which this host cannot check; taking it over",
                            run_dir, owner.get("pid"), owner.get("host"))
            path.unlink(missing_ok=True)   # its owner is dead: a stale lock
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise CellbenchError(f"{path}: cannot take this run folder (the owner file keeps coming back)")
    stop = threading.Event()
    parent = workflow_pid()
    if parent is not None:
        threading.Thread(target=_watch, args=(parent, label, stop), daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        if _read_owner(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
