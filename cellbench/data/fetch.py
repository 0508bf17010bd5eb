"""Get a dataset's raw files (local mirror or download) and verify them against the manifest.

The outcome is a small JSON record naming the verified root folder; later stages read the raw
files from there. A failed download leaves nothing behind that looks finished: an archive is
unpacked (a Google Drive folder downloaded) into a temporary folder that is renamed into place
only after its hashes, or for a dataset without published hashes its layout, check out.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from ..errors import DataError
from .registry import DatasetSpec

log = logging.getLogger(__name__)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(spec: DatasetSpec, root: Path) -> dict[str, str]:
    """Check ``root/<folder>`` file by file; return relative path -> SHA-256 of what was checked."""
    folder = root / spec.folder
    if not folder.is_dir():
        raise DataError(f"{spec.name}: folder {folder} not found")
    present = {p.relative_to(root).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = spec.manifest()
    if manifest is None:
        spec.read_samples(root)  # layout check: every image has its annotation
        log.warning("%s: no published hashes (%s absent); recording the %d files seen",
                    spec.name, spec.manifest_path, len(present))
        return {rel: sha256(path) for rel, path in present.items()}
    missing = sorted(set(manifest) - set(present))
    extra = sorted(set(present) - set(manifest))
    if missing:
        raise DataError(f"{spec.name}: {len(missing)} file(s) of {spec.manifest_path} missing under {root}, "
                        f"first: {missing[0]}; fetch the dataset again or fix the mirror")
    if extra:
        raise DataError(f"{spec.name}: {len(extra)} file(s) under {root} not in {spec.manifest_path}, "
                        f"first: {extra[0]}; remove them or fetch a clean copy")
    hashes = {rel: sha256(present[rel]) for rel in manifest}
    wrong = [f"{root / rel} has SHA-256 {hashes[rel]}, expected {expected}" for rel, expected in manifest.items()
             if hashes[rel] != expected]
    if wrong:
        raise DataError(f"{spec.name}: {len(wrong)} file(s) differ from {spec.manifest_path} (corrupted or altered: "
                        f"fetch the dataset again):\n  " + "\n  ".join(wrong))
    return hashes


DRIVE_FOLDER_URL = "https://drive.google.com/drive/folders/{}"
# Seconds without a byte before gdown gives up on a file, and extra attempts per file: a stalled
# connection must end in a clear error, and one dropped file must not cost the whole folder.
DRIVE_TIMEOUT_S = 60
DRIVE_RETRIES = 2


def download_drive_folder(folder_id: str, dest: Path) -> None:
    """Download the public Google Drive folder ``folder_id`` into ``dest`` (created by gdown).

    The only place that talks to Drive: tests replace this function with one writing files.
    """
    import gdown  # here, not at the top: only DCC needs it, the other datasets work without it

    gdown.download_folder(id=folder_id, output=str(dest), quiet=False,
                          timeout=DRIVE_TIMEOUT_S, retries=DRIVE_RETRIES)


def _move_into_place(spec: DatasetSpec, staged: Path, root: Path) -> Path:
    """Verify a complete download, then rename it to ``root``: nothing unverified looks finished."""
    verify(spec, staged)
    if root.exists():
        shutil.rmtree(root)
    staged.rename(root)
    return root


def _download_drive(spec: DatasetSpec, download_dir: Path) -> Path:
    address = DRIVE_FOLDER_URL.format(spec.drive_folder)
    download_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=download_dir, prefix=f".{spec.name}.") as tmp:
        staged = Path(tmp) / "root"
        log.info("%s: downloading the Google Drive folder %s", spec.name, address)
        try:
            download_drive_folder(spec.drive_folder, staged / spec.folder)
        # gdown raises its own DownloadError, requests' errors, OSError, or ImportError when it is
        # not installed: all mean "no copy from Drive", and all get the same advice.
        except Exception as exc:
            raise DataError(
                f"{spec.name}: download of the Google Drive folder {address} failed: {exc}\n"
                f"Drive refuses when the folder's download quota is spent (try again in a day) or when "
                f"there is no network. By hand: open {address}, download it all, unzip, and put the "
                f"files in a data mirror as {spec.folder}/ (images and their dot annotations, in any "
                f"subfolders, e.g. {spec.folder}/trainval/images/NAME.png with "
                f"{spec.folder}/trainval/dots/NAME.png), then set data.mirror in config/config.yaml or "
                f"the environment variable CELLBENCH_DATA_MIRROR to that mirror.") from exc
        return _move_into_place(spec, staged, download_dir / spec.name)


def _download_archives(spec: DatasetSpec, download_dir: Path) -> Path:
    download_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in spec.urls:
        with tempfile.TemporaryDirectory(dir=download_dir, prefix=f".{spec.name}.") as tmp:
            archive = Path(tmp) / "archive.zip"
            try:
                log.info("%s: downloading %s", spec.name, url)
                urllib.request.urlretrieve(url, archive)
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(Path(tmp) / "unpacked")
            except (OSError, zipfile.BadZipFile) as exc:
                errors.append(f"{url}: {exc}")
                continue
            unpacked = Path(tmp) / "unpacked"
            shutil.rmtree(unpacked / "__MACOSX", ignore_errors=True)
            return _move_into_place(spec, unpacked, download_dir / spec.name)
    raise DataError(f"{spec.name}: download failed from every address:\n  " + "\n  ".join(errors) +
                    "\nWith no network, put the unzipped dataset in a folder and set data.mirror in "
                    "config/config.yaml or the environment variable CELLBENCH_DATA_MIRROR to it.")


def download(spec: DatasetSpec, download_dir: Path) -> Path:
    """Download into ``download_dir/<name>`` (archives unpacked) and verify; return that root."""
    root = download_dir / spec.name
    if (root / spec.folder).is_dir():
        return root
    if spec.drive_folder:
        return _download_drive(spec, download_dir)
    if not spec.urls:
        raise DataError(
            f"{spec.name}: cannot be downloaded by a script; fetch it by hand from {spec.manual_download} "
            f"and put it under a data mirror as {spec.folder}/ (set data.mirror or CELLBENCH_DATA_MIRROR)")
    return _download_archives(spec, download_dir)


def layout(spec: DatasetSpec, root: Path) -> list[dict[str, str]]:
    """The image/annotation pairs the reader finds under ``root``, as paths relative to it."""
    return [{"image": s.image_path.relative_to(root).as_posix(), "dots": s.dots_path.relative_to(root).as_posix()}
            for s in spec.read_samples(root)]


def sha256sums(hashes: dict[str, str]) -> str:
    """``sha256sum`` lines (the format of ``datasets/<name>/SHA256SUMS``), sorted by path."""
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(hashes.items()))


def fetch(spec: DatasetSpec, mirror: Path | None, download_dir: Path) -> tuple[Path, dict[str, str]]:
    """The verified raw root for ``spec``: its own ``location`` when its definition names one, else
    the mirror when it holds the dataset, else a download."""
    if spec.location is not None:
        if not (spec.location / spec.folder).is_dir():
            raise DataError(f"{spec.definition}: location {spec.location} holds no folder {spec.folder}/ (the "
                            f"dataset's files); put them there, or correct location or folder")
        log.info("%s: using its own location %s", spec.name, spec.location)
        return spec.location, verify(spec, spec.location)
    if mirror is not None and (mirror / spec.folder).is_dir():
        root = mirror
        log.info("%s: using the local mirror %s", spec.name, mirror)
    else:
        if mirror is not None:
            log.info("%s: not in the mirror %s (no %s/); downloading", spec.name, mirror, spec.folder)
        root = download(spec, download_dir)
    return root, verify(spec, root)
