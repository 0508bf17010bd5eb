"""Atomic writes, so an interrupted job never leaves a result that looks complete; and reading back
what the workflow wrote (``read_back``), so that a damaged file is one message, not a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

from .errors import DamagedFileError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give results normal permissions
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as exc:
        _raise_if_disk_full(path, exc)
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


#: Free bytes below which a failed write is put down to a full disk.
FULL_DISK_BYTES = 64 * 2**20


def _raise_if_disk_full(path: Path, exc: BaseException) -> None:
    """A write that failed on a full disk says so (torch.save says only "unexpected pos")."""
    import errno
    import shutil
    from .errors import CellbenchError
    free = shutil.disk_usage(path.parent).free
    torch_write = isinstance(exc, RuntimeError) and ("unexpected pos" in str(exc) or "write" in str(exc).lower())
    if getattr(exc, "errno", None) == errno.ENOSPC or (torch_write and free < FULL_DISK_BYTES):
        raise CellbenchError(f"{path}: could not be written: the disk is full ({free / 2**20:.0f} MiB free on the "
                             f"filesystem of {path.parent}; {type(exc).__name__}: {exc}). Free some space (results/ "
                             f"can be deleted after `python -m cellbench publish`) and run the same command again; "
                             f"nothing half-written was kept") from exc


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


#: What reading a damaged file raises, from numpy's zip reader, json, torch's unpickler, pandas.
_DAMAGE = (OSError, EOFError, ValueError, KeyError, IndexError, RuntimeError, TypeError, UnicodeDecodeError,
           zipfile.BadZipFile, pickle.UnpicklingError)


@contextlib.contextmanager
def read_back(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Read a file the workflow wrote inside this block: a missing or damaged one becomes a
    ``DamagedFileError`` naming it, ``what`` it should be, and what to do."""
    path = Path(path)
    if not path.is_file():
        raise DamagedFileError(f"{path}: missing ({what}); the workflow makes it: run the same command again")
    if path.stat().st_size == 0:
        raise DamagedFileError(f"{path}: empty ({what}; a disk that filled up or an interrupted copy): "
                               f"delete it and run the same command again")
    try:
        yield path
    except DamagedFileError:
        raise
    except _DAMAGE as exc:
        kind = "truncated or damaged" if isinstance(exc, (zipfile.BadZipFile, EOFError)) else "damaged or not"
        raise DamagedFileError(f"{path}: {kind} {what} ({type(exc).__name__}: {exc}); delete it and run the "
                               f"same command again (the workflow makes it anew)") from exc


def read_json(path: str | os.PathLike, what: str = "a JSON file written by the workflow") -> Any:
    with read_back(path, what) as p:
        return json.loads(p.read_text())


def read_csv(path: str | os.PathLike, what: str, columns: tuple[str, ...] = (), **options):
    """A CSV file the workflow wrote, as a DataFrame; missing, damaged or without ``columns``: one
    message naming it."""
    import pandas as pd
    with read_back(path, what):
        frame = pd.read_csv(path, **options)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"no column {', '.join(missing)}")
        return frame
