"""Dataset definitions: one folder per dataset under ``datasets/`` (``dataset.yaml`` + ``SHA256SUMS``).

The keys of ``dataset.yaml`` are described in ``workflow/schemas/dataset.schema.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import project_root
from ..errors import ConfigError
from ..plugins import is_reference, load_callable
from ..schemas import load_yaml
from ..schemas import validate as validate_schema
from .readers import RawSample, get_reader


@dataclass(frozen=True)
class Cells:
    """What the stages know of a dataset's cells (``cells`` in its dataset.yaml), from one place."""
    spacing: float                 # median nearest-neighbour distance between dots, original-image pixels
    sigma: float                   # density targets' Gaussian sigma, patch pixels
    density_scale: float = 100.0   # density maps are multiplied by this for pixel losses
    signal_channels: tuple[int, ...] = (0, 1, 2)   # channels that hold the cells' signal


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    folder: str
    reader: str
    urls: tuple[str, ...]
    preprocess: tuple[dict, ...]
    paper: dict | None
    definition_dir: Path
    cells: Cells = Cells(spacing=1.0, sigma=1.0)
    type: str = "real"
    citation: str = ""
    manual_download: str | None = None
    drive_folder: str | None = None  # id of a public Google Drive folder, downloaded with gdown
    allow_empty_images: bool = False   # images whose annotation has no dot are real (else refused)
    location: Path | None = None       # the folder holding ``folder`` when it is not in the mirror
    reader_options: dict = field(default_factory=dict)   # keyword arguments of the reader (points: folders, format)

    @property
    def paper_error_unit(self) -> str:
        """The unit the DCL paper's Table 2 errors of this dataset fit: image or patch."""
        return (self.paper or {}).get("error_unit", "image")

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
        return reader(root / self.folder, **self.reader_options)


def datasets_dir() -> Path:
    return project_root() / "datasets"


def available_datasets() -> list[str]:
    return sorted(p.parent.name for p in datasets_dir().glob("*/dataset.yaml"))


def load_dataset(name: str) -> DatasetSpec:
    path = datasets_dir() / name / "dataset.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown dataset {name!r}: no {path}; known: {', '.join(available_datasets())} "
                          f"(a dataset of your own: python -m cellbench add-dataset)")
    raw = validate_schema(load_yaml(path), "dataset", str(path), "datasets/README.md")
    if raw["name"] != name:
        raise ConfigError(f"{path}: name {raw['name']!r} differs from its folder's name {name!r}")
    location = None
    if raw["location"]:
        location = Path(raw["location"]).expanduser()
        location = location if location.is_absolute() else project_root() / location
    cells = raw["cells"]
    return DatasetSpec(
        name=raw["name"], title=raw["title"], folder=raw["folder"], reader=raw["reader"],
        urls=tuple(raw["urls"]), preprocess=tuple(raw["preprocess"]), paper=raw["paper"],
        definition_dir=path.parent, type=raw["type"], citation=raw["citation"],
        manual_download=raw["manual_download"], drive_folder=raw["drive_folder"],
        allow_empty_images=raw["allow_empty_images"], location=location, reader_options=raw["reader_options"],
        cells=Cells(spacing=float(cells["spacing"]), sigma=float(cells["sigma"]),
                    density_scale=float(cells["density_scale"]),
                    signal_channels=tuple(int(c) for c in cells["signal_channels"])))


def dataset_cells(name: str) -> Cells:
    """The cell knowledge of dataset ``name`` (its dataset.yaml's ``cells``)."""
    return load_dataset(name).cells
