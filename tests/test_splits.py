"""Splits are disjoint, cover every image, follow about 10:9:1, and are reproducible byte for byte."""

from __future__ import annotations

import pytest

from cellbench.cli import main
from cellbench.data.splits import make_split

RATIOS = {"train": 0.5, "test": 0.45, "val": 0.05}
SIZES = {"VGG": (100, 90, 10), "ADI": (100, 90, 10), "MBM": (22, 20, 2)}


@pytest.mark.parametrize("name", sorted(SIZES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_partitions_every_image(prepared, name, seed):
    data = prepared[name]
    ids = data.image_ids.tolist()
    split = make_split(ids, data.image_groups.tolist(), RATIOS, seed)
    parts = [set(split[k]) for k in ("train", "test", "val")]
    assert tuple(len(p) for p in parts) == SIZES[name]
    assert set.union(*parts) == set(ids)
    assert sum(len(p) for p in parts) == len(ids)  # disjoint


def test_same_seed_same_split_other_seed_other_split(prepared):
    data = prepared["VGG"]
    args = (data.image_ids.tolist(), data.image_groups.tolist(), RATIOS)
    assert make_split(*args, seed=3) == make_split(*args, seed=3)
    assert make_split(*args, seed=3)["test"] != make_split(*args, seed=4)["test"]
    # input order does not matter: ids are sorted before drawing
    reordered = make_split(list(reversed(args[0])), list(reversed(args[1])), RATIOS, seed=3)
    assert reordered == make_split(*args, seed=3)


def test_grouped_split_keeps_mbm_originals_together(prepared):
    data = prepared["MBM"]
    group_of = dict(zip(data.image_ids.tolist(), data.image_groups.tolist()))
    split = make_split(data.image_ids.tolist(), data.image_groups.tolist(), RATIOS, seed=0, grouped=True)
    groups = {k: {group_of[i] for i in v} for k, v in split.items()}
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["val"])
    assert not (groups["test"] & groups["val"])
    assert sum(len(v) for v in split.values()) == 44


def test_split_files_are_byte_identical(prepared, tmp_path):
    prepared["VGG"].save(tmp_path / "patches.npz")
    for name in ("a.json", "b.json"):
        assert main(["split", "--dataset", "VGG", "--seed", "7", "--prepared", str(tmp_path / "patches.npz"),
                     "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_default_split_keeps_a_slide_whole_and_validates_on_at_least_one(prepared, seed):
    """split.grouped is on by default: MBM's four crops of a slide sit in one part (the old split
    had 0001_01 in train and test), and validation is a whole slide, 4 images, not 2."""
    from cellbench.config import load_config
    config = load_config()
    assert config["split"]["grouped"] is True
    data = prepared["MBM"]
    ratios = {k: config["split"][k] for k in ("train", "test", "val")}
    split = make_split(data.image_ids.tolist(), data.image_groups.tolist(), ratios, seed, config["split"]["grouped"])
    group = dict(zip(data.image_ids.tolist(), data.image_groups.tolist()))
    parts = {name: {group[i] for i in ids} for name, ids in split.items()}
    assert not (parts["train"] & parts["test"]) and not (parts["val"] & (parts["train"] | parts["test"]))
    assert len(split["val"]) >= 4 and len(split["val"]) % 4 == 0


@pytest.mark.parametrize("name", ["VGG", "ADI"])
def test_a_dataset_without_groups_is_split_the_same_grouped_or_not(prepared, name):
    data = prepared[name]
    ratios = {"train": 0.5, "test": 0.45, "val": 0.05}
    args = (data.image_ids.tolist(), data.image_groups.tolist(), ratios, 0)
    assert make_split(*args, grouped=True) == make_split(*args, grouped=False)
