"""What a run records so that it can be rerun: config, seed, versions, device, commit."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import torch
import torchvision

from pathlib import Path

from . import __version__, project_root


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd or project_root(), capture_output=True, text=True,
                          timeout=10).stdout.strip()


def method_files(directory: Path) -> dict:
    """What a run's method was: a SHA-256 over its folder's files (names and bytes, in order) and
    their state in git (``clean``; ``modified`` or ``untracked``: the commit alone cannot rerun it)."""
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "."],
                              cwd=directory, capture_output=True, text=True, timeout=10)
        status = done.stdout.strip() if done.returncode == 0 else None   # not a git checkout: unknown
    except (OSError, subprocess.SubprocessError):
        status = None
    state = ("unknown" if status is None else "clean" if not status
             else "untracked" if all(line.startswith("??") for line in status.splitlines()) else "modified")
    return {"folder": str(directory), "sha256": digest.hexdigest(),
            "files": [str(p.relative_to(directory)) for p in files], "git": state}


def git_commit() -> dict:
    git = _git
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit or "unknown", "dirty": dirty if commit else None}


def environment(device: torch.device) -> dict:
    info = {
        "python": sys.version.split()[0], "platform": platform.platform(), "cellbench": __version__,
        "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__,
        "device": str(device), "threads": torch.get_num_threads(),
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    info["git"] = git_commit()
    return info
