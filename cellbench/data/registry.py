"""Dataset definitions: one folder per dataset under ``datasets/`` (``dataset.yaml`` + ``SHA256SUMS``).

The keys of ``dataset.yaml`` are described in ``workflow/schemas/dataset.schema.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import project_root
from ..errors import ConfigError
from ..plugins import is_reference, load_callable
from ..schemas import load_yaml
from ..schemas import validate as validate_schema
from .readers import RawSample, get_reader


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
    allow_empty_images: bool = False   # images whose annotation has no dot are real (else refused)

    @property
    def definition(self) -> Path:
        return self.definition_dir / "dataset.yaml"

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

    def read_samples(self, root: Path) -> list[RawSample]:
        """The dataset's images and dot files under the raw ``root``, by its reader."""
        if is_reference(self.reader):
            reader = load_callable(self.definition_dir, self.reader, self.definition)
        else:
            reader = get_reader(self.reader)
        return reader(root / self.folder)


def datasets_dir() -> Path:
    return project_root() / "datasets"


def available_datasets() -> list[str]:
    return sorted(p.parent.name for p in datasets_dir().glob("*/dataset.yaml"))


def load_dataset(name: str) -> DatasetSpec:
    path = datasets_dir() / name / "dataset.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown dataset {name!r}: no {path}; known: {', '.join(available_datasets())}")
    raw = validate_schema(load_yaml(path), "dataset", str(path), "workflow/schemas/dataset.schema.yaml")
    if raw["name"] != name:
        raise ConfigError(f"{path}: name {raw['name']!r} differs from its folder's name {name!r}")
    return DatasetSpec(
        name=raw["name"], title=raw["title"], folder=raw["folder"], reader=raw["reader"],
        urls=tuple(raw["urls"]), preprocess=tuple(raw["preprocess"]), paper=raw["paper"],
        definition_dir=path.parent, type=raw["type"], citation=raw["citation"],
        manual_download=raw["manual_download"], drive_folder=raw["drive_folder"],
        allow_empty_images=raw["allow_empty_images"])
