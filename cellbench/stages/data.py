"""Data stages: fetch and verify, prepare patches, split per seed, statistics."""

from __future__ import annotations

import logging
from pathlib import Path

from .. import project_root
from ..config import data_mirror
from ..data.fetch import fetch, layout, sha256
from ..data.prepare import PreparedDataset, prepare
from ..data.registry import load_dataset
from ..data.splits import check_split, draw_subset, make_split
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


def recheck_raw_files(dataset: str, record: dict, verified: Path) -> None:
    """The raw files are not inputs of the prepare rule (a mirror may sit anywhere): check that
    they are still the files the fetch verified, every one, naming each that changed or went."""
    root = Path(record["root"])
    changed, gone = [], []
    for rel, digest in sorted(record["sha256"].items()):
        path = root / rel
        if not path.is_file():
            gone.append(str(path))
        elif sha256(path) != digest:
            changed.append(str(path))
    if changed or gone:
        lines = [f"{p} changed since it was fetched" for p in changed] + [f"{p} is gone" for p in gone]
        raise DataError(f"{dataset}: {len(lines)} raw file(s) differ from what the fetch verified ({verified}):\n  "
                        + "\n  ".join(lines) + f"\ndelete {verified.parent} and run the workflow again to fetch and "
                        f"verify the data anew")


def prepare_stage(dataset: str, verified: Path, out: Path) -> None:
    spec = load_dataset(dataset)
    record = read_json(verified, "the fetch stage's record of verified raw files (verified.json)")
    recheck_raw_files(dataset, record, verified)
    root = Path(record["root"])
    samples = spec.read_samples(root)
    def recorded(path: Path) -> bool:
        try:
            return Path(path).relative_to(root).as_posix() in record["sha256"]
        except ValueError:   # outside the verified folder
            return False
    unverified = [str(p) for s in samples for p in (s.image_path, s.dots_path) if not recorded(p)]
    if unverified:
        raise DataError(f"{dataset}: {len(unverified)} raw file(s) appeared since the fetch verified the data "
                        f"({verified}):\n  " + "\n  ".join(unverified[:20]) + f"\ndelete {verified.parent} and run "
                        f"the workflow again to fetch and verify the data anew")
    if not samples:
        raise DataError(f"{spec.name}: no images found under {root / spec.folder}")
    log.info("%s: preparing %d images", dataset, len(samples))
    prepare(samples, spec.preprocess, allow_empty=spec.allow_empty_images).save(out)


def split_stage(config: dict, dataset: str, seed: int, prepared: Path, out: Path) -> None:
    data = PreparedDataset.load(prepared)
    ratios = {k: config["split"][k] for k in ("train", "test", "val")}
    grouped = config["split"]["grouped"]
    split = make_split(data.image_ids.tolist(), data.image_groups.tolist(), ratios, seed, grouped)
    write_json(out, {"dataset": dataset, "seed": seed, "ratios": ratios, "grouped": grouped,
                     "sizes": {k: len(v) for k, v in split.items()}, **split})


def subset_stage(dataset: str, size: int, repeat: int, prepared: Path, split_file: Path, out: Path) -> None:
    """A training subset of a split (see ``draw_subset``): the split's file with ``size`` of its
    training images, and ``subset`` recording the size, the repeat, and the patches of the whole
    training part (``epoch_patches``: an epoch of a subset run takes as many steps as the whole
    split's, so that every size trains for the same number of steps)."""
    data = PreparedDataset.load(prepared)
    split = read_json(split_file, "a split file (the split stage's seed<k>.json)")
    check_split(split, data.image_ids.tolist(), data.image_groups.tolist(), split_file)
    if "subset" in split:
        raise DataError(f"{split_file}: is a training subset already; draw subsets from a seed's split")
    full = split["train"]
    train = draw_subset(full, int(split["seed"]), size, repeat)
    epoch_patches = int(len(data.subset(full).images))
    write_json(out, {**split, "train": train, "sizes": {**split["sizes"], "train": len(train)},
                     "subset": {"size": size, "repeat": repeat, "of": len(full), "epoch_patches": epoch_patches}})
    log.info("%s: training subset of %d of %d images (repeat %d) -> %s", dataset, size, len(full), repeat, out)


def stats_stage(dataset: str, prepared: Path, out: Path) -> None:
    write_json(out, dataset_stats(load_dataset(dataset), PreparedDataset.load(prepared)))
