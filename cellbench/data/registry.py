"""Dataset definitions: one folder per dataset under ``datasets/`` (``dataset.yaml`` + ``SHA256SUMS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import project_root
from ..config import load_yaml
from ..errors import ConfigError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    folder: str
    reader: str
    urls: tuple[str, ...]
    preprocess: tuple[dict, ...]
    paper: dict
    definition_dir: Path
    type: str = "real"
    citation: str = ""
    manual_download: str | None = None
    drive_folder: str | None = None  # id of a public Google Drive folder, downloaded with gdown
    extra: dict = field(default_factory=dict)

    @property
    def manifest_path(self) -> Path:
        return self.definition_dir / "SHA256SUMS"

    def manifest(self) -> dict[str, str] | None:
        """Relative path -> SHA-256, or None when the dataset has no published hashes."""
        if not self.manifest_path.is_file():
            return None
        entries = {}
        for line_no, line in enumerate(self.manifest_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            digest, _, rel = line.partition("  ")
            if len(digest) != 64 or not rel:
                raise ConfigError(f"{self.manifest_path}:{line_no}: expected '<sha256>  <path>'")
            entries[rel] = digest
        return entries


def datasets_dir() -> Path:
    return project_root() / "datasets"


def available_datasets() -> list[str]:
    return sorted(p.parent.name for p in datasets_dir().glob("*/dataset.yaml"))


def load_dataset(name: str) -> DatasetSpec:
    path = datasets_dir() / name / "dataset.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown dataset {name!r}: no {path}; known: {', '.join(available_datasets())}")
    raw = load_yaml(path)
    required = ["name", "title", "folder", "reader", "urls", "preprocess", "paper"]
    missing = [k for k in required if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing keys {', '.join(missing)}")
    known = set(required) | {"type", "citation", "manual_download", "drive_folder"}
    return DatasetSpec(
        name=raw["name"], title=raw["title"], folder=raw["folder"], reader=raw["reader"],
        urls=tuple(raw["urls"]), preprocess=tuple(raw["preprocess"]), paper=raw["paper"],
        definition_dir=path.parent, type=raw.get("type", "real"), citation=raw.get("citation", ""),
        manual_download=raw.get("manual_download"), drive_folder=raw.get("drive_folder"),
        extra={k: v for k, v in raw.items() if k not in known},
    )
