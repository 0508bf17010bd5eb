"""Get a dataset's raw files (local mirror or download) and verify them against the manifest.

The outcome is a small JSON record naming the verified root folder; later stages read the raw
files from there. A failed download leaves nothing behind that looks finished: the archive is
unpacked into a temporary folder that is renamed into place only after its hashes check out.
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
    hashes = {}
    for rel, expected in manifest.items():
        actual = sha256(present[rel])
        if actual != expected:
            raise DataError(f"{spec.name}: {root / rel} has SHA-256 {actual}, expected {expected} "
                            f"({spec.manifest_path}); the file is corrupted or altered: fetch the dataset again")
        hashes[rel] = actual
    return hashes


def download(spec: DatasetSpec, download_dir: Path) -> Path:
    """Download and unpack the archive into ``download_dir/<name>``; return that root."""
    root = download_dir / spec.name
    if (root / spec.folder).is_dir():
        return root
    if not spec.urls:
        raise DataError(
            f"{spec.name}: cannot be downloaded by a script; fetch it by hand from {spec.manual_download} "
            f"and put it under a data mirror as {spec.folder}/ (set data.mirror or CELLBENCH_DATA_MIRROR)")
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
            verify(spec, unpacked)
            if root.exists():
                shutil.rmtree(root)
            (unpacked).rename(root)
            return root
    raise DataError(f"{spec.name}: download failed from every address:\n  " + "\n  ".join(errors) +
                    "\nWith no network, put the unzipped dataset in a folder and set data.mirror in "
                    "config/config.yaml or the environment variable CELLBENCH_DATA_MIRROR to it.")


def fetch(spec: DatasetSpec, mirror: Path | None, download_dir: Path) -> tuple[Path, dict[str, str]]:
    """The verified raw root for ``spec``: the mirror when it holds the dataset, else a download."""
    if mirror is not None and (mirror / spec.folder).is_dir():
        root = mirror
        log.info("%s: using the local mirror %s", spec.name, mirror)
    else:
        if mirror is not None:
            log.info("%s: not in the mirror %s (no %s/); downloading", spec.name, mirror, spec.folder)
        root = download(spec, download_dir)
    return root, verify(spec, root)
