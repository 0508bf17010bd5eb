"""Raw data is verified file by file; a wrong hash, a missing or extra file, or no way to get
the data stops with a message naming the dataset, the file and what to do."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from cellbench.data.fetch import fetch, verify
from cellbench.data.registry import load_dataset
from cellbench.errors import DataError


@pytest.fixture
def mbm_copy(mirror, tmp_path):
    shutil.copytree(mirror / "MBM_data", tmp_path / "MBM_data")
    return tmp_path


def test_mirror_verifies_against_the_manifest(mirror):
    for name, n_files in (("VGG", 400), ("MBM", 88), ("ADI", 400)):
        assert len(verify(load_dataset(name), mirror)) == n_files


def test_wrong_hash_is_refused_naming_the_file(mbm_copy):
    victim = mbm_copy / "MBM_data" / "BM_GRAZ_HE_0001_01_000.png"
    data = bytearray(victim.read_bytes())
    data[-20] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"MBM: .*BM_GRAZ_HE_0001_01_000\.png has SHA-256 .* expected .*fetch the dataset again"):
        verify(load_dataset("MBM"), mbm_copy)


def test_missing_file_is_refused(mbm_copy):
    (mbm_copy / "MBM_data" / "BM_GRAZ_HE_0001_01_dots_002.png").unlink()
    with pytest.raises(DataError, match=r"MBM: 1 file\(s\) .* missing .*first: MBM_data/BM_GRAZ_HE_0001_01_dots_002\.png"):
        verify(load_dataset("MBM"), mbm_copy)


def test_extra_file_is_refused(mbm_copy):
    (mbm_copy / "MBM_data" / "notes.txt").write_text("stray")
    with pytest.raises(DataError, match=r"MBM: 1 file\(s\) .* not in .*first: MBM_data/notes\.txt"):
        verify(load_dataset("MBM"), mbm_copy)


def test_no_network_and_no_mirror_says_what_to_do(tmp_path):
    # a closed port on this machine: the download fails at once, as with no network
    spec = dataclasses.replace(load_dataset("MBM"), urls=("http://127.0.0.1:9/MBM_data.zip",))
    with pytest.raises(DataError, match=r"(?s)MBM: download failed .*127\.0\.0\.1:9.*CELLBENCH_DATA_MIRROR"):
        fetch(spec, mirror=tmp_path / "empty-mirror", download_dir=tmp_path / "raw")
    leftovers = list((tmp_path / "raw").rglob("*"))
    assert leftovers == [], leftovers  # nothing half-downloaded is left behind


def test_dcc_without_a_copy_points_to_the_manual_download(tmp_path):
    with pytest.raises(DataError, match=r"DCC: cannot be downloaded by a script; fetch it by hand from https://drive"):
        fetch(load_dataset("DCC"), mirror=tmp_path, download_dir=tmp_path / "raw")


def test_dcc_in_a_mirror_is_checked_by_layout(tmp_path):
    from test_readers import make_dcc
    make_dcc(tmp_path, [("trainval", (306, 322)), ("test", (500, 380))])
    root, hashes = fetch(load_dataset("DCC"), mirror=tmp_path, download_dir=tmp_path / "raw")
    assert root == tmp_path and len(hashes) == 4
