"""Image-level train/test/val splits drawn from a seed, and training subsets drawn from a split;
identical on every machine.

numpy's PCG64 generator is stable across platforms and versions for ``permutation``, and the
image ids are sorted before drawing, so a seed always gives the same split file.

A training subset (the data-efficiency study, ``data_efficiency`` in the config) keeps the
split's test and validation images and takes ``size`` of its training images. Repeat ``r`` of a
split orders the training images once, by a generator seeded with (split seed, r), and every
size takes the first images of that order: within a repeat the subsets are nested (the 8 images
are among the 16), so a curve's steps differ only by the images added. numpy seeds (s, 0) as it
seeds s, so repeat 0's order is drawn from the numbers that drew the split itself: a fixed but
arbitrary order like any other, kept so that the published subsets stay what they are.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

SPLITS = ("train", "test", "val")


def split_sizes(n: int, ratios: dict[str, float]) -> dict[str, int]:
    n_train = int(round(n * ratios["train"]))
    n_val = max(1, int(round(n * ratios["val"])))
    n_test = n - n_train - n_val
    if n_train < 1 or n_test < 1:
        raise ConfigError(f"split: {n} images cannot be split {ratios} with at least one image each")
    return {"train": n_train, "test": n_test, "val": n_val}


def has_groups(groups: list[str]) -> bool:
    """Whether some group holds more than one image (MBM's slides); VGG's and ADI's do not."""
    return len(set(groups)) < len(groups)


def make_split(image_ids: list[str], groups: list[str], ratios: dict[str, float], seed: int,
               grouped: bool = False) -> dict[str, list[str]]:
    """Assign every image to exactly one of train/test/val; with ``grouped``, whole groups move (val
    first: it holds at least one whole group). A dataset without groups is split the same either way."""
    order = sorted(range(len(image_ids)), key=lambda i: image_ids[i])
    ids = [image_ids[i] for i in order]
    grps = [groups[i] for i in order]
    rng = np.random.default_rng(seed)
    sizes = split_sizes(len(ids), ratios)
    if not grouped or not has_groups(grps):
        perm = rng.permutation(len(ids))
        cut1, cut2 = sizes["train"], sizes["train"] + sizes["val"]
        parts = {"train": perm[:cut1], "val": perm[cut1:cut2], "test": perm[cut2:]}
        return {name: sorted(ids[i] for i in idx) for name, idx in parts.items()}
    unique = sorted(set(grps))
    members = {g: [i for i, x in enumerate(grps) if x == g] for g in unique}
    result: dict[str, list[str]] = {"train": [], "test": [], "val": []}
    # Fill val first (it is the smallest), then train; the rest is test.
    targets = [("val", sizes["val"]), ("train", sizes["train"])]
    queue = [unique[i] for i in rng.permutation(len(unique))]
    for name, target in targets:
        while queue and len(result[name]) < target:
            result[name].extend(ids[i] for i in members[queue.pop(0)])
    for g in queue:
        result["test"].extend(ids[i] for i in members[g])
    if not result["test"]:
        raise ConfigError(f"split: grouped split of {len(unique)} groups leaves no test images")
    return {name: sorted(v) for name, v in result.items()}


def subset_suffix(size: int | None, repeat: int | None) -> str:
    """What a training subset adds to its split's and its runs' names: ``-n16-r1``; '' for the whole split."""
    return "" if size is None else f"-n{size}-r{repeat}"


def draw_subset(train: list[str], seed: int, size: int, repeat: int) -> list[str]:
    """``size`` of the ``train`` images, repeat ``repeat`` of split seed ``seed`` (nested over sizes)."""
    ids = sorted(train)
    if not 0 < size < len(ids):
        raise ConfigError(f"data_efficiency: a training subset of {size} images needs a training split of more "
                          f"than {size} images; this one has {len(ids)} (the whole split is the seed's ordinary "
                          f"run: list only smaller sizes)")
    order = np.random.default_rng([seed, repeat]).permutation(len(ids))
    return sorted(ids[i] for i in order[:size])


def check_split(split: dict, image_ids: list[str], groups: list[str], path) -> None:
    """A split file read back: its parts disjoint, every image in the prepared data, and (where it
    records a seed, as the split stage's files do) the split its seed and ratios draw; DataError
    naming the image and the file otherwise."""
    from ..errors import DataError

    where = f"{path}"
    known = set(image_ids)
    seen: dict[str, str] = {}
    for part in SPLITS:
        if part not in split or not isinstance(split[part], list):
            raise DataError(f"{where}: no list of {part!r} images: not a split file; delete it and run the same "
                            f"command again")
        for image in split[part]:
            if image in seen:
                raise DataError(f"{where}: image {image!r} is in both {seen[image]!r} and {part!r}: a split's parts "
                                f"must not overlap; delete the file and run the same command again")
            if image not in known:
                raise DataError(f"{where}: image {image!r} ({part}) is not in the prepared data ({len(known)} images): "
                                f"the split belongs to other data; delete it and run the same command again")
            seen[image] = part
    if "seed" not in split and "ratios" not in split:
        return   # a split made by hand records no seed: there is nothing to draw it again from
    try:
        drawn = make_split(image_ids, groups, split["ratios"], int(split["seed"]), bool(split.get("grouped")))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: no valid seed and ratios recorded ({exc}); delete it and run the same command "
                        f"again") from exc
    subset = split.get("subset")
    if subset is not None:
        try:
            drawn["train"] = draw_subset(drawn["train"], int(split["seed"]), int(subset["size"]), int(subset["repeat"]))
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise DataError(f"{where}: its training subset records no valid size and repeat ({exc}); delete it and "
                            f"run the same command again") from exc
    for part in SPLITS:
        if sorted(split[part]) != drawn[part]:
            other = sorted(set(split[part]) ^ set(drawn[part]))
            raise DataError(f"{where}: its {part!r} images are not those seed {split['seed']} draws (first "
                            f"difference: image {other[0]!r}): the file was edited or made by other code; delete it "
                            f"and run the same command again")
