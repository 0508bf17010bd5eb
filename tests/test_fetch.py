"""Raw data is verified file by file; a wrong hash, a missing or extra file, or no way to get
the data stops with a message naming the dataset, the file and what to do. DCC's Google Drive
download is replaced by a function writing a small DCC-like folder: no network is used."""

from __future__ import annotations

import dataclasses
import inspect
import shutil
from pathlib import Path

import pytest

from cellbench.cli import main as cli_main
from cellbench.data import fetch as fetch_module
from cellbench.data.fetch import fetch, verify
from cellbench.data.prepare import PreparedDataset
from cellbench.data.registry import load_dataset
from cellbench.errors import DataError
from cellbench.io import read_json
from cellbench.stages.data import fetch_stage, prepare_stage

from test_readers import DCC_SIZES, make_dcc


@pytest.fixture
def mbm_copy(mirror, tmp_path):
    shutil.copytree(mirror / "MBM_data", tmp_path / "MBM_data")
    return tmp_path


def test_mirror_verifies_against_the_manifest(mirror):
    for name, n_files in (("VGG", 400), ("MBM", 88), ("ADI", 400)):
        assert len(verify(load_dataset(name), mirror)) == n_files


def test_wrong_hash_is_refused_naming_the_file(mbm_copy):
    victims = [mbm_copy / "MBM_data" / f"BM_GRAZ_HE_0001_01_00{k}.png" for k in (0, 1)]
    for victim in victims:
        data = bytearray(victim.read_bytes())
        data[-20] ^= 0xFF
        victim.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"MBM: 2 file\(s\) differ from .*fetch the dataset again") as caught:
        verify(load_dataset("MBM"), mbm_copy)
    for victim in victims:   # every altered file is named, not only the first
        assert f"{victim} has SHA-256" in str(caught.value)


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


DCC_DRIVE_ID = "1L5JHUr-Au3x9EaEGLOvxvZnHviG0TWaZ"
DRIVE_ADDRESS = f"https://drive.google.com/drive/folders/{DCC_DRIVE_ID}"


class FakeDrive:
    """Stands in for ``download_drive_folder``: writes a small DCC-like folder, or fails like Drive."""

    def __init__(self, layout: str = "parts", error: Exception | None = None, break_pairs: bool = False):
        self.layout, self.error, self.break_pairs = layout, error, break_pairs
        self.calls: list[tuple[str, Path]] = []
        self.counts: dict[str, int] = {}

    def __call__(self, folder_id: str, dest: Path) -> None:
        self.calls.append((folder_id, dest))
        assert dest.name == "DCC" and not dest.exists()
        self.counts = make_dcc(dest.parent, DCC_SIZES, layout=self.layout)
        if self.break_pairs:  # a download that lost one annotation
            next(p for p in sorted(dest.rglob("*.png")) if "dots" in p.as_posix()).unlink()
        if self.error is not None:  # Drive stops half-way: some files are already written
            raise self.error


@pytest.fixture
def no_mirror(tmp_path, monkeypatch):
    """A config whose mirror is empty, so DCC must come from Drive into tmp_path/raw."""
    monkeypatch.delenv("CELLBENCH_DATA_MIRROR", raising=False)
    (tmp_path / "mirror").mkdir()
    return {"data": {"mirror": str(tmp_path / "mirror"), "download_dir": str(tmp_path / "raw")}}


def _install(monkeypatch, fake: FakeDrive) -> FakeDrive:
    monkeypatch.setattr(fetch_module, "download_drive_folder", fake)
    return fake


@pytest.mark.parametrize("layout", ["parts", "flat"])
def test_dcc_is_fetched_from_drive_verified_and_prepared(tmp_path, monkeypatch, no_mirror, layout):
    drive = _install(monkeypatch, FakeDrive(layout))
    verified = tmp_path / "raw" / "DCC" / "verified.json"
    fetch_stage(no_mirror, "DCC", verified)
    assert [call[0] for call in drive.calls] == [DCC_DRIVE_ID]
    record = read_json(verified)
    raw = tmp_path / "raw" / "DCC"
    assert record["root"] == str(raw) and record["manifest"] == "recorded"
    on_disk = {p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file() and p.name != "verified.json"}
    assert set(record["sha256"]) == on_disk and record["files"] == 6
    assert len(record["layout"]) == 3 and all(pair["image"] in on_disk and pair["dots"] in on_disk
                                             for pair in record["layout"])
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["DCC"]  # no temporary folder left

    prepare_stage("DCC", verified, tmp_path / "patches.npz")
    data = PreparedDataset.load(tmp_path / "patches.npz")
    assert dict(zip(data.image_ids.tolist(), data.image_counts.tolist())) == drive.counts

    fetch_stage(no_mirror, "DCC", verified)  # a second fetch finds results/raw/DCC and downloads nothing
    assert len(drive.calls) == 1


def test_observed_dcc_hashes_publish_as_a_manifest_that_verifies(tmp_path, monkeypatch, no_mirror):
    _install(monkeypatch, FakeDrive())
    verified = tmp_path / "raw" / "DCC" / "verified.json"
    fetch_stage(no_mirror, "DCC", verified)
    definition = tmp_path / "definition"
    assert cli_main(["sha256sums", "--verified", str(verified), "--out", str(definition / "SHA256SUMS")]) == 0
    spec = dataclasses.replace(load_dataset("DCC"), definition_dir=definition)
    assert spec.manifest() == read_json(verified)["sha256"]
    assert verify(spec, tmp_path / "raw" / "DCC") == spec.manifest()  # checked against the published hashes


def test_drive_refusal_names_the_folder_the_error_and_the_manual_route(tmp_path, monkeypatch):
    quota = RuntimeError("Too many users have viewed or downloaded this file recently")
    _install(monkeypatch, FakeDrive(error=quota))
    with pytest.raises(DataError) as err:
        fetch(load_dataset("DCC"), mirror=tmp_path / "mirror", download_dir=tmp_path / "raw")
    message = str(err.value)
    for part in (f"DCC: download of the Google Drive folder {DRIVE_ADDRESS} failed", str(quota),
                 "By hand", "as DCC/", "CELLBENCH_DATA_MIRROR"):
        assert part in message, (part, message)
    assert list((tmp_path / "raw").iterdir()) == []  # the half-written folder is gone, nothing looks finished


def test_a_download_with_an_unpaired_file_is_refused_and_not_kept(tmp_path, monkeypatch):
    _install(monkeypatch, FakeDrive(break_pairs=True))
    with pytest.raises(DataError, match=r"DCC: 1 image\(s\) without annotation: test/images/img2\.png"):
        fetch(load_dataset("DCC"), mirror=None, download_dir=tmp_path / "raw")
    assert list((tmp_path / "raw").iterdir()) == []


def test_the_drive_download_calls_gdown_6_as_its_api_expects(tmp_path, monkeypatch):
    gdown = pytest.importorskip("gdown")
    real = inspect.signature(gdown.download_folder)
    calls = []
    monkeypatch.setattr(gdown, "download_folder", lambda **kwargs: calls.append(kwargs) or [])
    fetch_module.download_drive_folder(DCC_DRIVE_ID, tmp_path / "DCC")
    real.bind(**calls[0])  # raises TypeError on an argument this gdown does not take
    assert calls[0]["id"] == DCC_DRIVE_ID and calls[0]["output"] == str(tmp_path / "DCC")


def test_dcc_in_a_mirror_is_checked_by_layout(tmp_path):
    make_dcc(tmp_path, [("trainval", (306, 322)), ("test", (500, 380))])
    root, hashes = fetch(load_dataset("DCC"), mirror=tmp_path, download_dir=tmp_path / "raw")
    assert root == tmp_path and len(hashes) == 4
