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


# --- Annotations exported by annotation tools (a dataset of your own: add-dataset) -----------------
#
# Pixel-centre conventions, all brought to cellbench's (pixel j covers [j - 0.5, j + 0.5), its centre at j;
# x to the right, y down, in image pixels):
#   fiji    Fiji/ImageJ multi-point "Measure" CSV (header " ,X,Y", more columns allowed): ImageJ's pixel i
#           covers [i, i + 1), a click on it gives X = i + 0.5, so x = X - 0.5 and y = Y - 0.5. The image
#           must be uncalibrated (Image > Properties: pixel units), else X and Y are in microns.
#   napari  napari Points layer saved as CSV (header "index,axis-0,axis-1", or without index; the last two
#           axes are row and column of a 2D image): napari puts pixel centres at integers, so x = axis-1,
#           y = axis-0.
#   xy      a CSV with columns x and y (lowercase) in cellbench's own convention.
#   dots    an image of the same size whose non-zero pixels are dots (the public datasets' form).
POINT_FORMATS = ("fiji", "napari", "xy", "dots")
POINT_SUFFIXES = ("", "_points", "-points", "_dots", "-dots", "_annotations")   # stems that pair NAME with NAME<sfx>
IMAGE_FILES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def point_format(path: Path) -> str:
    """The annotation format of one file: dots for an image, else read from the CSV's header."""
    if path.suffix.lower() in IMAGE_FILES:
        return "dots"
    try:
        header = path.open(newline="", encoding="utf-8-sig").readline()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    columns = [c.strip() for c in header.strip().split(",")]
    if "X" in columns and "Y" in columns:
        return "fiji"
    if any(c.startswith("axis-") for c in columns):
        return "napari"
    if "x" in columns and "y" in columns:
        return "xy"
    raise DataError(f"{path}: not a points CSV cellbench reads: its header {header.strip()!r} has neither X and Y "
                    f"(Fiji's multi-point Measure), axis-0 and axis-1 (napari), nor x and y; formats: "
                    f"{', '.join(POINT_FORMATS)}")


def read_point_csv(path: Path, fmt: str) -> np.ndarray:
    """(N, 2) float64 x, y of a points CSV in cellbench's pixel convention (see above)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return np.zeros((0, 2))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    try:
        if fmt == "fiji":
            points = frame[["X", "Y"]].to_numpy(float) - 0.5
        elif fmt == "napari":
            axes = sorted((c for c in frame.columns if c.startswith("axis-")), key=lambda c: int(c.split("-")[1]))
            if len(axes) < 2:
                raise KeyError("axis-0 and axis-1")
            points = frame[[axes[-1], axes[-2]]].to_numpy(float)   # column, row of the image's two last axes
        elif fmt == "xy":
            points = frame[["x", "y"]].to_numpy(float)
        else:
            raise DataError(f"{path}: unknown points format {fmt!r}; known: {', '.join(POINT_FORMATS)}")
    except KeyError as exc:
        raise DataError(f"{path}: a {fmt} points CSV needs the column(s) {exc} (found: {', '.join(frame.columns)})") from exc
    except ValueError as exc:
        raise DataError(f"{path}: a coordinate is not a number ({exc})") from exc
    if not np.isfinite(points).all():
        raise DataError(f"{path}: a coordinate is missing or not finite")
    return points.reshape(-1, 2)


def _annotation_key(path: Path) -> str:
    stem = path.stem
    for suffix in sorted(POINT_SUFFIXES, key=len, reverse=True):
        if suffix and stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


@register_reader("points")
def read_points(folder: Path, images: str = "images", points: str = "points", format: str = "auto") -> list[RawSample]:
    """Images in ``folder/images`` paired by name with their annotations in ``folder/points``
    (NAME.png with NAME.csv, NAME_points.csv, NAME_dots.png, ...), in any of POINT_FORMATS (``auto``:
    read from each file). Every image without annotation and annotation without image is named."""
    image_dir, point_dir = _require_dir(folder / images), _require_dir(folder / points)
    same = image_dir.resolve() == point_dir.resolve()
    # In one folder, NAME_dots.png is NAME's annotation, not an image of its own.
    image_files = {p.stem: p for p in sorted(image_dir.iterdir())
                   if p.is_file() and p.suffix.lower() in IMAGE_FILES and not p.name.startswith(".")
                   and not (same and _annotation_key(p) != p.stem)}
    annotations: dict[str, list[Path]] = {}
    for path in sorted(point_dir.iterdir()):
        if not path.is_file() or path.name.startswith(".") or not (
                path.suffix.lower() == ".csv" or path.suffix.lower() in IMAGE_FILES):
            continue
        if same and path.stem in image_files and path.suffix.lower() in IMAGE_FILES:
            continue   # the image itself
        key = path.stem if path.stem in image_files else _annotation_key(path)
        annotations.setdefault(key, []).append(path)
    problems = [f"{len(v)} annotations for {k}: {', '.join(p.name for p in v)}" for k, v in annotations.items()
                if len(v) > 1]
    lonely = sorted(set(image_files) - set(annotations))
    extra = sorted(set(annotations) - set(image_files))
    if lonely:
        problems.append(f"{len(lonely)} image(s) without annotation: {', '.join(image_files[k].name for k in lonely)}")
    if extra:
        problems.append(f"{len(extra)} annotation(s) without image: {', '.join(annotations[k][0].name for k in extra)}")
    if problems:
        raise DataError(f"{folder}: " + "; ".join(problems) + f". Each image in {image_dir} needs one annotation of "
                        f"its name in {point_dir} (NAME.csv, NAME_points.csv or a dot image NAME_dots.png)")
    if not image_files:
        raise DataError(f"{image_dir}: no images ({', '.join(IMAGE_FILES)})")
    samples = []
    for stem, image in image_files.items():
        annotation = annotations[stem][0]
        fmt = point_format(annotation) if format == "auto" else format
        samples.append(RawSample(stem, image, annotation, stem, "nonzero" if fmt == "dots" else f"csv_{fmt}"))
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
    if sample.dots_format.startswith("csv_"):   # points exported by an annotation tool
        points = read_point_csv(sample.dots_path, sample.dots_format[len("csv_"):])
        width, height = image.size
        outside = (points[:, 0] < -0.5) | (points[:, 1] < -0.5) | (points[:, 0] >= width - 0.5) | \
                  (points[:, 1] >= height - 0.5)
        if outside.any():
            x, y = points[np.argmax(outside)]
            raise DataError(f"{sample.dots_path}: {int(outside.sum())} point(s) outside its image {sample.image_path} "
                            f"({width}x{height}), first at x={x:g}, y={y:g}: another image's points, or coordinates in "
                            f"microns (set the image's scale to pixels in Fiji before measuring)")
        return np.asarray(image.convert("RGB")), points
    dots_img = read_image(sample.dots_path)
    if image.size != dots_img.size:
        raise DataError(f"{sample.dots_path}: annotation is {dots_img.size[0]}x{dots_img.size[1]} but its "
                        f"image {sample.image_path} is {image.size[0]}x{image.size[1]}")
    mask = decode_dots(dots_img, sample.dots_format)
    rows, cols = np.nonzero(mask)
    points = np.stack([cols, rows], axis=1).astype(np.float64)
    return np.asarray(image.convert("RGB")), points
