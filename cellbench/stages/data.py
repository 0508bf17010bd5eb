"""Data stages: fetch and verify, prepare patches, split per seed, statistics."""

from __future__ import annotations

import logging
from pathlib import Path

from .. import project_root
from ..config import data_mirror
from ..data.fetch import fetch, layout
from ..data.prepare import PreparedDataset, prepare
from ..data.registry import load_dataset
from ..data.splits import make_split
from ..data.stats import dataset_stats
from ..errors import DataError
from ..io import read_json, write_json

log = logging.getLogger(__name__)


def fetch_stage(config: dict, dataset: str, out: Path) -> None:
    spec = load_dataset(dataset)
    download_dir = Path(config["data"]["download_dir"])
    root, hashes = fetch(spec, data_mirror(config), download_dir if download_dir.is_absolute()
                         else project_root() / download_dir)
    # The layout (which file pairs with which) is recorded too: DCC's is documented nowhere else.
    write_json(out, {"dataset": dataset, "root": str(root), "files": len(hashes),
                     "manifest": "published" if spec.manifest() is not None else "recorded", "sha256": hashes,
                     "layout": layout(spec, root)})


def prepare_stage(dataset: str, verified: Path, out: Path) -> None:
    spec = load_dataset(dataset)
    root = Path(read_json(verified)["root"])
    samples = spec.read_samples(root)
    if not samples:
        raise DataError(f"{spec.name}: no images found under {root / spec.folder}")
    log.info("%s: preparing %d images", dataset, len(samples))
    prepare(samples, spec.preprocess).save(out)


def split_stage(config: dict, dataset: str, seed: int, prepared: Path, out: Path) -> None:
    data = PreparedDataset.load(prepared)
    ratios = {k: config["split"][k] for k in ("train", "test", "val")}
    grouped = config["split"]["grouped"]
    split = make_split(data.image_ids.tolist(), data.image_groups.tolist(), ratios, seed, grouped)
    write_json(out, {"dataset": dataset, "seed": seed, "ratios": ratios, "grouped": grouped,
                     "sizes": {k: len(v) for k, v in split.items()}, **split})


def stats_stage(dataset: str, prepared: Path, out: Path) -> None:
    write_json(out, dataset_stats(load_dataset(dataset), PreparedDataset.load(prepared)))
