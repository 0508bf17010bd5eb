"""What a run records so that it can be rerun: config, seed, versions, device, commit."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import torch
import torchvision

from . import __version__, project_root


def git_commit() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project_root(), capture_output=True, text=True,
                              timeout=10).stdout.strip()
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
