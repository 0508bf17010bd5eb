"""Readers for the raw dataset layouts: list the images and decode their dot annotations.

A reader returns ``RawSample`` records; ``load_sample`` turns one into an RGB array and the dot
coordinates (x, y) in pixel units, checking that image and annotation agree in size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import DataError


@dataclass(frozen=True)
class RawSample:
    image_id: str
    image_path: Path
    dots_path: Path
    group: str
    dots_format: str


Reader = Callable[[Path], list[RawSample]]
READERS: dict[str, Reader] = {}


def register_reader(name: str) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn
    return wrap


def get_reader(name: str) -> Reader:
    if name not in READERS:
        raise DataError(f"unknown reader {name!r}; known: {', '.join(sorted(READERS))}")
    return READERS[name]


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: folder not found")
    return path


def _pair_or_fail(image: Path, dots: Path) -> None:
    if not dots.is_file():
        raise DataError(f"{image}: its annotation {dots} is missing")


@register_reader("vgg")
def read_vgg(folder: Path) -> list[RawSample]:
    samples = []
    for image in sorted(_require_dir(folder).glob("*cell.png")):
        stem = image.name[: -len("cell.png")]
        dots = folder / f"{stem}dots.png"
        _pair_or_fail(image, dots)
        samples.append(RawSample(stem, image, dots, stem, "red_exact"))
    return samples


_MBM_NAME = re.compile(r"^BM_GRAZ_HE_(\d+_\d+)_(\d+)\.png$")


@register_reader("mbm")
def read_mbm(folder: Path) -> list[RawSample]:
    samples = []
    for image in sorted(_require_dir(folder).glob("BM_GRAZ_HE_*.png")):
        match = _MBM_NAME.match(image.name)
        if not match:  # an annotation file
            continue
        original, crop = match.groups()
        dots = folder / f"BM_GRAZ_HE_{original}_dots_{crop}.png"
        _pair_or_fail(image, dots)
        samples.append(RawSample(f"{original}_{crop}", image, dots, original, "nonzero"))
    return samples


@register_reader("adi")
def read_adi(folder: Path) -> list[RawSample]:
    samples = []
    for image in sorted(_require_dir(folder / "images").glob("*.jpeg")):
        dots = folder / "annotations" / image.name
        _pair_or_fail(image, dots)
        samples.append(RawSample(image.stem, image, dots, image.stem, "red_threshold"))
    return samples


# DCC's Drive folder documents no layout, so each file's role is read from common markers: an
# annotation sits in a folder named like dots/ or has a name ending in "dots"; the rest are images.
_DCC_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
_DOTS_DIRS = {"dots", "dot", "annotations", "annotation", "labels", "gt", "ground_truth", "groundtruth"}
_IMAGE_DIRS = {"images", "image", "imgs", "img"}
# A trailing "dots" or "cell" marks the role in the name; both are dropped from the pairing key,
# so images/NAMEcell.png pairs with dots/NAMEcell.png as well as NAMEcell.png with NAMEdots.png.
_MARKED_NAME = re.compile(r"^(.+?)[_\-. ]?(dots|cell)$", re.IGNORECASE)


def _dcc_role(rel: Path) -> tuple[str, str]:
    """("image" or "dots", pairing key) of one file: its folders less the role folders, and its bare name."""
    dirs = rel.parent.parts
    marked = _MARKED_NAME.match(rel.stem)
    stem, marker = (marked.group(1), marked.group(2).lower()) if marked else (rel.stem, "")
    is_dots = marker == "dots" or any(d.lower() in _DOTS_DIRS for d in dirs)
    kept = [d for d in dirs if d.lower() not in _DOTS_DIRS | _IMAGE_DIRS]
    return ("dots" if is_dots else "image"), "/".join([*kept, stem])


def _dcc_files(folder: Path) -> dict[str, dict[str, list[Path]]]:
    """role -> pairing key -> files with that key (relative to ``folder``); hidden files skipped."""
    found: dict[str, dict[str, list[Path]]] = {"image": {}, "dots": {}}
    for path in sorted(_require_dir(folder).rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or path.suffix.lower() not in _DCC_SUFFIXES or \
                any(part.startswith(".") for part in rel.parts):
            continue
        role, key = _dcc_role(rel)
        found[role].setdefault(key, []).append(rel)
    return found


def _dcc_problems(found: dict[str, dict[str, list[Path]]]) -> list[str]:
    """Every file that cannot be paired: twins of one key, images alone, annotations alone."""
    problems = [f"{len(paths)} {role} files for {key}: {', '.join(p.as_posix() for p in paths)}"
                for role, by_key in found.items() for key, paths in by_key.items() if len(paths) > 1]
    images, dots = found["image"], found["dots"]
    lonely_images = [images[k][0].as_posix() for k in sorted(set(images) - set(dots))]
    lonely_dots = [dots[k][0].as_posix() for k in sorted(set(dots) - set(images))]
    if lonely_images:
        problems.append(f"{len(lonely_images)} image(s) without annotation: {', '.join(lonely_images)}")
    if lonely_dots:
        problems.append(f"{len(lonely_dots)} annotation(s) without image: {', '.join(lonely_dots)}")
    return problems


@register_reader("dcc")
def read_dcc(folder: Path) -> list[RawSample]:
    """Image/annotation pairs found by name anywhere under ``folder`` (train and test parts pooled).

    ``trainval/images/NAME.png`` pairs with ``trainval/dots/NAME.png`` (image id ``trainval_NAME``);
    ``NAME.png`` or ``NAMEcell.png`` with ``NAME_dots.png`` or ``NAMEdots.png`` in the same folder.
    """
    found = _dcc_files(folder)
    problems = _dcc_problems(found)
    if problems:
        raise DataError(f"{folder}: " + "; ".join(problems) + ". Each image needs one dot annotation of the "
                        "same name (in a dots/ folder beside its images/ folder, or named NAME_dots.png); "
                        "fetch the dataset again or fix the mirror")
    if not found["image"]:
        raise DataError(f"{folder}: no image/annotation pairs found; fetch the dataset again or fix the mirror")
    samples = []
    for key in sorted(found["image"]):
        image_id = key.replace("/", "_")
        samples.append(RawSample(image_id, folder / found["image"][key][0], folder / found["dots"][key][0],
                                 image_id, "nonzero"))
    return samples


def read_image(path: Path) -> Image.Image:
    """Open and fully decode an image; a truncated or corrupted file is refused by name."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc}); the file is truncated or corrupted: "
                        f"fetch the dataset again") from exc


def decode_dots(img: Image.Image, fmt: str) -> np.ndarray:
    """Boolean mask of dot pixels for one annotation format."""
    if fmt == "nonzero":
        arr = np.asarray(img)
        return arr.any(axis=-1) if arr.ndim == 3 else arr != 0
    rgb = np.asarray(img.convert("RGB"))
    if fmt == "red_exact":  # VGG: every dot is one pixel of exactly (255, 0, 0)
        return (rgb[..., 0] == 255) & (rgb[..., 1] == 0) & (rgb[..., 2] == 0)
    if fmt == "red_threshold":  # ADI: JPEG, so red is only nearly pure
        return rgb[..., 0] > 127
    raise DataError(f"unknown dot format {fmt!r}")


def load_sample(sample: RawSample) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 image (H, W, 3) and float64 dot coordinates (N, 2) as (x, y) pixel centres."""
    image = read_image(sample.image_path)
    dots_img = read_image(sample.dots_path)
    if image.size != dots_img.size:
        raise DataError(f"{sample.dots_path}: annotation is {dots_img.size[0]}x{dots_img.size[1]} but its "
                        f"image {sample.image_path} is {image.size[0]}x{image.size[1]}")
    mask = decode_dots(dots_img, sample.dots_format)
    rows, cols = np.nonzero(mask)
    points = np.stack([cols, rows], axis=1).astype(np.float64)
    return np.asarray(image.convert("RGB")), points
