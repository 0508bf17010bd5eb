"""A dataset of your own, from what annotation tools export: ``python -m cellbench add-dataset``.

It pairs each image with its annotation (Fiji multi-point CSV, napari points CSV, a CSV of x, y, or
a dot image: ``readers.read_points``), measures what the methods need to know of the cells, and
writes ``datasets/<NAME>/``: the definition (where the files are, how to read them, the cells'
spacing, the density targets' sigma, the signal channels, the preprocessing) and the hash manifest
of every file. It says what it measured and chose; every stage then reads it from there.

What is measured, and why:

* spacing: the median distance from a dot to its nearest other dot, in the images' pixels; the
  localization radii are fractions of it;
* the preprocessing: the methods were built for cells a few to a few tens of pixels apart in 256x256
  patches (VGG 8.5, ADI 15, MBM 23); images whose cells are further apart than ``SPACING_RANGE`` are
  scaled so that they are ``SPACING_TARGET`` apart (and closer ones enlarged likewise), then padded
  with zeros to whole 256x256 patches and cut into them;
* sigma: a quarter of the spacing in patch pixels, within ``SIGMA_RANGE`` (VGG's 2 and the others' 3
  follow the same rule);
* signal channels: the channels whose intensity varies (standard deviation at least a quarter of the
  most varied channel's): VGG's cells are in blue alone; a stained or grey image has all three.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .. import project_root
from ..errors import ConfigError, DataError
from ..io import write_text
from .fetch import sha256, sha256sums
from .prepare import preprocess
from .readers import POINT_FORMATS, load_sample, read_points

log = logging.getLogger(__name__)

PATCH = 256
SPACING_RANGE = (8.0, 24.0)   # cell spacing in patch pixels the methods were built for
SPACING_TARGET = 16.0          # where a dataset outside that range is scaled to
SIGMA_RANGE = (1.0, 3.0)
SIGNAL_SHARE = 0.25            # a channel with under this share of the most varied channel's std holds no signal
NAME = re.compile(r"^[A-Za-z0-9]+$")   # what the workflow's {dataset} wildcard accepts


@dataclass
class Measured:
    """What add-dataset measured and chose (printed, and written into dataset.yaml)."""
    images: int
    cells: int
    cells_per_image: tuple[float, float]     # mean, std
    sizes: tuple[str, str]                   # smallest, largest image (WxH)
    spacing: float                           # original-image pixels
    rescale: float
    sigma: float
    signal_channels: list[int]
    formats: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        scaled = (f"rescaled by {self.rescale:g} (cells {self.spacing * self.rescale:.1f} px apart in the patches; the "
                  f"methods were built for {SPACING_RANGE[0]:g} to {SPACING_RANGE[1]:g})" if self.rescale != 1 else
                  f"not rescaled (cells {self.spacing:.1f} px apart, within the {SPACING_RANGE[0]:g} to "
                  f"{SPACING_RANGE[1]:g} the methods were built for)")
        return "\n".join([
            f"  images:           {self.images} ({self.sizes[0]} to {self.sizes[1]}), annotations: "
            + ", ".join(f"{n} {fmt}" for fmt, n in sorted(self.formats.items())),
            f"  cells:            {self.cells} ({self.cells_per_image[0]:.1f} ± {self.cells_per_image[1]:.1f} per image)",
            f"  cell spacing:     {self.spacing:.2f} px (median distance to the nearest other dot; localization "
            f"radii {0.25 * self.spacing:.2f}, {0.5 * self.spacing:.2f}, {0.75 * self.spacing:.2f} px)",
            f"  preprocessing:    {scaled}, padded to whole {PATCH}x{PATCH} patches and cut into them",
            f"  density sigma:    {self.sigma:g} px of the patches (a quarter of the spacing there, within "
            f"{SIGMA_RANGE[0]:g} to {SIGMA_RANGE[1]:g})",
            f"  signal channels:  {self.signal_channels} (0 red, 1 green, 2 blue: where predict puts a grey image)"])


def choose_rescale(spacing: float) -> float:
    """1 when the cells are as far apart as the methods expect, else the factor to SPACING_TARGET."""
    if not math.isfinite(spacing) or SPACING_RANGE[0] <= spacing <= SPACING_RANGE[1]:
        return 1.0
    return round(SPACING_TARGET / spacing, 4)


def choose_sigma(patch_spacing: float) -> float:
    return float(np.clip(round(patch_spacing / 4 * 2) / 2, *SIGMA_RANGE))


def signal_channels(images: list[np.ndarray]) -> list[int]:
    stds = np.array([np.concatenate([im[..., c].ravel()[::7] for im in images]).astype(float).std() for c in range(3)])
    return [int(c) for c in np.flatnonzero(stds >= SIGNAL_SHARE * stds.max())] if stds.max() > 0 else [0, 1, 2]


def measure(samples) -> tuple[Measured, list[tuple[np.ndarray, np.ndarray]]]:
    """Load every pair (a bad file is named), then measure the dataset."""
    from ..localization.radii import median_spacing

    loaded = [load_sample(s) for s in samples]
    counts = np.array([len(p) for _, p in loaded], float)
    spacing = median_spacing(p for _, p in loaded)
    if not math.isfinite(spacing):
        raise DataError("no image has two or more dots: the cell spacing cannot be measured (cellbench counts "
                        "images of many cells)")
    rescale = choose_rescale(spacing)
    areas = sorted((im.shape[1] * im.shape[0], f"{im.shape[1]}x{im.shape[0]}") for im, _ in loaded)
    formats: dict[str, int] = {}
    for s in samples:
        fmt = s.dots_format.removeprefix("csv_").replace("nonzero", "dots")
        formats[fmt] = formats.get(fmt, 0) + 1
    return Measured(images=len(loaded), cells=int(counts.sum()), cells_per_image=(counts.mean(), counts.std()),
                    sizes=(areas[0][1], areas[-1][1]), spacing=round(float(spacing), 3), rescale=rescale,
                    sigma=choose_sigma(spacing * rescale), signal_channels=signal_channels([im for im, _ in loaded]),
                    formats=formats), loaded


def preprocessing(rescale: float) -> list[dict]:
    return ([{"rescale": rescale}] if rescale != 1 else []) + [{"pad_multiple": PATCH}, {"tile": PATCH}]


def _layout(images: Path, points: Path) -> tuple[Path, Path, str, str]:
    """(location, folder, images, points): the dataset's folder is the images' and annotations' common
    folder (one folder holding both, or the parent of two sibling folders)."""
    images, points = images.resolve(), points.resolve()
    for path, what in ((images, "--images"), (points, "--points")):
        if not path.is_dir():
            raise DataError(f"{what} {path}: no such folder")
    if images == points:
        root = images
    elif images.parent == points.parent:
        root = images.parent
    else:
        raise DataError(f"--images {images} and --points {points} must be one folder or two folders side by side "
                        f"(the dataset's folder holds both, and every file in it is hashed): move them under one folder")
    rel = lambda p: "." if p == root else p.relative_to(root).as_posix()   # noqa: E731
    return root.parent, root, rel(images), rel(points)


def add_dataset(name: str, images: Path, points: Path, fmt: str = "auto", title: str | None = None,
                citation: str = "", force: bool = False, datasets_dir: Path | None = None) -> tuple[Path, Measured]:
    """Write datasets/<name>/ (dataset.yaml and SHA256SUMS) for the images in ``images`` and their
    annotations in ``points``; the definition's folder and what was measured."""
    if not NAME.match(name):
        raise ConfigError(f"add-dataset: the name {name!r} must be letters and digits only (it names folders and "
                          f"the workflow's dataset wildcard)")
    if fmt not in ("auto", *POINT_FORMATS):
        raise ConfigError(f"add-dataset: --format {fmt!r}; known: auto, {', '.join(POINT_FORMATS)}")
    target = (datasets_dir or project_root() / "datasets") / name
    if (target / "dataset.yaml").exists() and not force:
        raise ConfigError(f"add-dataset: {target / 'dataset.yaml'} exists; choose another name, or --force to "
                          f"measure and write it again")
    location, root, image_rel, point_rel = _layout(Path(images), Path(points))
    samples = read_points(root, image_rel, point_rel, fmt)
    found, loaded = measure(samples)
    for (image, dots), sample in zip(loaded, samples):   # the preprocessing keeps every dot: checked once here
        kept = sum(len(p) for _, p in preprocess(image, dots, preprocessing(found.rescale)))
        if kept != len(dots):
            raise AssertionError(f"{sample.image_path}: {len(dots)} dots became {kept} after preprocessing")
    files = {p.relative_to(location).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
    definition = {
        "name": name, "title": title or name, "citation": citation, "type": "real",
        "location": str(location), "folder": root.name, "reader": "points",
        "reader_options": {"images": image_rel, "points": point_rel, "format": fmt},
        "preprocess": preprocessing(found.rescale),
        "cells": {"spacing": found.spacing, "sigma": found.sigma, "density_scale": 100.0,
                  "signal_channels": found.signal_channels},
    }
    target.mkdir(parents=True, exist_ok=True)
    header = (f"# Written by `python -m cellbench add-dataset {name}`: what was measured on its {found.images} "
              f"images and {found.cells} cells.\n# Edit title and citation freely; the cells' numbers and the "
              f"preprocessing were chosen from the data (README, \"Your own annotated images\").\n")
    write_text(target / "SHA256SUMS", sha256sums({rel: sha256(path) for rel, path in files.items()}))
    write_text(target / "dataset.yaml", header + yaml.safe_dump(definition, sort_keys=False))
    return target, found
