"""Files the workflow wrote and reads back: a missing, truncated, damaged or foreign one is one
message naming the file and what to do, with exit status 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cellbench import REPO_ROOT
from cellbench.config import load_config
from cellbench.errors import DataError
from cellbench.stages.common import load_split
from cellbench.stages.data import split_stage


@pytest.fixture(scope="module")
def mbm_files(prepared, tmp_path_factory):
    folder = tmp_path_factory.mktemp("damaged")
    prepared["MBM"].save(folder / "patches.npz")
    split_stage(load_config(REPO_ROOT / "config" / "smoke.yaml"), "MBM", 0, folder / "patches.npz",
                folder / "seed0.json")
    return folder


def _cellbench(*args):
    return subprocess.run([sys.executable, "-m", "cellbench", "--configfile", "config/smoke.yaml", *map(str, args)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("damage", ["truncated", "bytes_changed", "empty", "foreign"])
def test_damaged_prepared_patches_are_one_message(mbm_files, tmp_path, damage):
    data = (mbm_files / "patches.npz").read_bytes()
    broken = tmp_path / "patches.npz"
    if damage == "truncated":
        broken.write_bytes(data[: len(data) // 2])
    elif damage == "bytes_changed":   # inside the first array's data: the zip's CRC check fails
        middle = len(data) // 3
        broken.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])
    elif damage == "empty":
        broken.write_bytes(b"")
    else:
        import numpy as np
        np.savez(broken, something=np.zeros(3))
    result = _cellbench("split", "--dataset", "MBM", "--seed", "0", "--prepared", broken, "--out", tmp_path / "s.json")
    assert result.returncode == 2, result.stderr
    assert str(broken) in result.stderr and "delete it and run the same command again" in result.stderr
    assert "Traceback" not in result.stderr


def test_truncated_weights_are_one_message(mbm_files, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "counter.pt").write_bytes(b"PK\x03\x04 not really a torch file")
    result = _cellbench("evaluate", "--dataset", "MBM", "--method", "mcnn", "--seed", "0", "--prepared",
                        mbm_files / "patches.npz", "--split", mbm_files / "seed0.json", "--run-dir", run_dir)
    assert result.returncode == 2, result.stderr
    assert f"{run_dir / 'counter.pt'}: damaged or not trained weights saved by cellbench" in result.stderr
    assert "Traceback" not in result.stderr


def _edited_split(mbm_files, tmp_path, edit) -> object:
    split = json.loads((mbm_files / "seed0.json").read_text())
    edit(split)
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps(split))
    return path


def test_a_split_whose_parts_overlap_is_refused_naming_the_image(mbm_files, tmp_path):
    def overlap(split):
        split["test"].append(split["train"][0])
    path = _edited_split(mbm_files, tmp_path, overlap)
    image = json.loads(path.read_text())["train"][0]
    with pytest.raises(DataError, match=rf"{path}: image '{image}' is in both 'train' and 'test'"):
        load_split(mbm_files / "patches.npz", path, "test", None)


def test_a_split_naming_an_unknown_image_or_not_drawn_by_its_seed_is_refused(mbm_files, tmp_path):
    path = _edited_split(mbm_files, tmp_path, lambda s: s["val"].append("no_such_image"))
    with pytest.raises(DataError, match=r"image 'no_such_image' \(val\) is not in the prepared data"):
        load_split(mbm_files / "patches.npz", path, "val", None)

    def swap(split):
        split["train"][0], split["test"][0] = split["test"][0], split["train"][0]
    path = _edited_split(mbm_files, tmp_path, swap)
    with pytest.raises(DataError, match=r"are not those seed 0 draws"):
        load_split(mbm_files / "patches.npz", path, "train", None)


def test_a_write_on_a_full_disk_says_the_disk_is_full(tmp_path, monkeypatch):
    import errno
    import shutil
    from collections import namedtuple

    from cellbench.errors import CellbenchError
    from cellbench.io import atomic_path
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 10 * 2**30, 1024))
    target = tmp_path / "counter.pt"
    with pytest.raises(CellbenchError, match=r"counter.pt: could not be written: the disk is full \(0 MiB free"):
        with atomic_path(target):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    assert not target.exists() and not list(tmp_path.iterdir())   # nothing half-written left
    with pytest.raises(CellbenchError, match="disk is full"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
