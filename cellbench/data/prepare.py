"""Dataset conversion: raw images and dots -> 256x256 patches with dot coordinates.

Dots travel as coordinates through every step (never as a resampled dot image), so each dot
lands in exactly one patch and counts are preserved exactly. Coordinates are pixel centres:
pixel ``i`` covers ``[i - 0.5, i + 0.5)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..io import atomic_path
from .readers import RawSample, load_sample

log = logging.getLogger(__name__)

Patch = tuple[np.ndarray, np.ndarray]  # (H, W, 3) uint8 image, (N, 2) points (x, y)


def _resize(patch: Patch, width: int, height: int) -> Patch:
    image, points = patch
    h, w = image.shape[:2]
    resized = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
    scale = np.array([width / w, height / h])
    moved = (points + 0.5) * scale - 0.5
    # Clamp onto the image so no dot can fall off an edge through rounding.
    moved = np.clip(moved, -0.5, np.array([width, height]) - 0.5 - 1e-6)
    return resized, moved


def _crop_grid(patch: Patch, rows: int, cols: int) -> list[Patch]:
    """Cut into rows x cols equal tiles (sizes must divide); each dot goes to exactly one tile."""
    image, points = patch
    h, w = image.shape[:2]
    th, tw = h // rows, w // cols
    col_of = np.clip(np.floor((points[:, 0] + 0.5) / tw), 0, cols - 1).astype(int)
    row_of = np.clip(np.floor((points[:, 1] + 0.5) / th), 0, rows - 1).astype(int)
    tiles = []
    for r in range(rows):
        for c in range(cols):
            keep = (row_of == r) & (col_of == c)
            tile_points = points[keep] - np.array([c * tw, r * th])
            tiles.append((image[r * th:(r + 1) * th, c * tw:(c + 1) * tw], tile_points))
    return tiles


def _pad_square(patch: Patch) -> Patch:
    image, points = patch
    h, w = image.shape[:2]
    side = max(h, w)
    padded = np.zeros((side, side, 3), dtype=image.dtype)
    padded[:h, :w] = image
    return padded, points


def apply_step(patches: list[Patch], step: dict) -> list[Patch]:
    if len(step) != 1:
        raise ConfigError(f"preprocess step {step!r}: expected exactly one key")
    (kind, arg), = step.items()
    out: list[Patch] = []
    for patch in patches:
        h, w = patch[0].shape[:2]
        if kind == "resize":
            out.append(_resize(patch, int(arg), int(arg)))
        elif kind == "grid":
            if h % arg or w % arg:
                raise ConfigError(f"preprocess grid {arg}: image {w}x{h} is not divisible")
            out.extend(_crop_grid(patch, int(arg), int(arg)))
        elif kind == "pad_square":
            out.append(_pad_square(patch))
        elif kind == "resize_multiple":
            # Nearest multiple of `arg` to each side (at least one multiple).
            new_w = max(int(arg), int(round(w / arg)) * int(arg))
            new_h = max(int(arg), int(round(h / arg)) * int(arg))
            out.append(_resize(patch, new_w, new_h))
        elif kind == "tile":
            out.extend(_crop_grid(patch, h // int(arg), w // int(arg)))
        else:
            raise ConfigError(f"preprocess: unknown step {kind!r} (known: resize, grid, pad_square, "
                              f"resize_multiple, tile)")
    return out


def preprocess(image: np.ndarray, points: np.ndarray, steps: list[dict] | tuple[dict, ...]) -> list[Patch]:
    patches = [(image, points)]
    for step in steps:
        patches = apply_step(patches, step)
    return patches


@dataclass
class PreparedDataset:
    """All patches of one dataset, in memory; see ``save``/``load`` for the file format."""
    images: np.ndarray          # (P, 256, 256, 3) uint8
    points: np.ndarray          # (M, 2) float32, (x, y) in patch pixels
    point_offsets: np.ndarray   # (P + 1,) int64: points of patch p are points[off[p]:off[p+1]]
    patch_image: np.ndarray     # (P,) int64: index into image_ids
    image_ids: np.ndarray       # (N,) str
    image_groups: np.ndarray    # (N,) str
    image_counts: np.ndarray    # (N,) int64, from the raw annotation
    image_sizes: np.ndarray     # (N, 2) int64, raw (width, height)

    def patch_points(self, p: int) -> np.ndarray:
        return self.points[self.point_offsets[p]:self.point_offsets[p + 1]]

    def patch_counts(self) -> np.ndarray:
        return np.diff(self.point_offsets)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> "PreparedDataset":
        with np.load(path, allow_pickle=False) as data:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def subset(self, image_ids: list[str]) -> "PreparedDataset":
        """The patches of the given images, in the given order."""
        index = {name: i for i, name in enumerate(self.image_ids.tolist())}
        chosen = [index[name] for name in image_ids]
        patches = [p for i in chosen for p in np.flatnonzero(self.patch_image == i)]
        counts = self.patch_counts()[patches]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        points = (np.concatenate([self.patch_points(p) for p in patches])
                  if patches else np.zeros((0, 2), np.float32)).astype(np.float32)
        remap = {old: new for new, old in enumerate(chosen)}
        return PreparedDataset(
            images=self.images[patches], points=points, point_offsets=offsets,
            patch_image=np.array([remap[i] for i in self.patch_image[patches]], dtype=np.int64),
            image_ids=self.image_ids[chosen], image_groups=self.image_groups[chosen],
            image_counts=self.image_counts[chosen], image_sizes=self.image_sizes[chosen])


def prepare(samples: list[RawSample], steps: list[dict] | tuple[dict, ...], patch_size: int = 256) -> PreparedDataset:
    images, points, counts, patch_image = [], [], [], []
    ids, groups, image_counts, sizes = [], [], [], []
    for index, sample in enumerate(samples):
        image, dots = load_sample(sample)
        patches = preprocess(image, dots, steps)
        total = sum(len(pts) for _, pts in patches)
        if total != len(dots):  # an invariant of the steps above: a bug, not bad input
            raise AssertionError(f"{sample.image_path}: {len(dots)} dots became {total} after preprocessing")
        for patch_img, patch_pts in patches:
            if patch_img.shape[:2] != (patch_size, patch_size):
                raise ConfigError(f"{sample.image_path}: preprocessing gave a {patch_img.shape[1]}x"
                                  f"{patch_img.shape[0]} patch, expected {patch_size}x{patch_size}")
            images.append(patch_img)
            points.append(patch_pts.astype(np.float32))
            counts.append(len(patch_pts))
            patch_image.append(index)
        ids.append(sample.image_id)
        groups.append(sample.group)
        image_counts.append(len(dots))
        sizes.append((image.shape[1], image.shape[0]))
    return PreparedDataset(
        images=np.stack(images), points=np.concatenate(points) if points else np.zeros((0, 2), np.float32),
        point_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        patch_image=np.array(patch_image, dtype=np.int64), image_ids=np.array(ids),
        image_groups=np.array(groups), image_counts=np.array(image_counts, dtype=np.int64),
        image_sizes=np.array(sizes, dtype=np.int64))
