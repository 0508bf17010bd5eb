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


@register_reader("dcc")
def read_dcc(folder: Path) -> list[RawSample]:
    """``DCC/{trainval,test}/images/NAME.png`` with dots in ``DCC/{trainval,test}/dots/NAME.png``."""
    samples = []
    for part in ("trainval", "test"):
        for image in sorted(_require_dir(folder / part / "images").glob("*.png")):
            dots = folder / part / "dots" / image.name
            _pair_or_fail(image, dots)
            image_id = f"{part}_{image.stem}"
            samples.append(RawSample(image_id, image, dots, image_id, "nonzero"))
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
