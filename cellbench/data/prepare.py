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

from ..errors import ConfigError, DataError
from ..io import atomic_path, read_back
from .readers import RawSample, load_sample

log = logging.getLogger(__name__)

Patch = tuple[np.ndarray, np.ndarray]  # (H, W, 3) uint8 image, (N, 2) points (x, y)


@dataclass(frozen=True)
class PatchToImage:
    """The affine map from a patch's pixel coordinates back to its original image's:
    ``original = patch * scale + offset`` per axis (x, y), pixel centres on both sides.

    Every preprocessing step is such a map (resize scales about pixel edges, grid/tile crops
    shift, padding on the right and bottom changes nothing), so their composition is one too.
    """
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64).reshape(-1, 2) * self.scale + self.offset

    def after_resize(self, factor: tuple[float, float]) -> "PatchToImage":
        """Followed by a resize with ``new = (old + 0.5) * factor - 0.5`` (see ``_resize``)."""
        s, o = np.array(self.scale), np.array(self.offset)
        f = np.array(factor, np.float64)
        return PatchToImage(tuple(s / f), tuple(s * (0.5 / f - 0.5) + o))

    def after_crop(self, origin: tuple[int, int]) -> "PatchToImage":
        """Followed by a crop whose top-left pixel was ``origin`` (x, y): ``new = old - origin``."""
        s, o = np.array(self.scale), np.array(self.offset)
        return PatchToImage(self.scale, tuple(s * np.array(origin, np.float64) + o))


Tracked = tuple[Patch, PatchToImage]  # a patch and the map from it back to its original image


def _resize(patch: Patch, width: int, height: int) -> Patch:
    image, points = patch
    h, w = image.shape[:2]
    resized = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
    scale = np.array([width / w, height / h])
    moved = (points + 0.5) * scale - 0.5
    # Clamp onto the image so no dot can fall off an edge through rounding.
    moved = np.clip(moved, -0.5, np.array([width, height]) - 0.5 - 1e-6)
    return resized, moved


def _tile_origins(h: int, w: int, rows: int, cols: int) -> list[tuple[int, int]]:
    """Top-left pixel (x, y) of each tile of ``_crop_grid``, in its (row-major) order."""
    th, tw = h // rows, w // cols
    return [(c * tw, r * th) for r in range(rows) for c in range(cols)]


def _crop_grid(patch: Patch, rows: int, cols: int) -> list[Patch]:
    """Cut into rows x cols equal tiles (sizes must divide); each dot goes to exactly one tile."""
    image, points = patch
    h, w = image.shape[:2]
    th, tw = h // rows, w // cols
    col_of = np.clip(np.floor((points[:, 0] + 0.5) / tw), 0, cols - 1).astype(int)
    row_of = np.clip(np.floor((points[:, 1] + 0.5) / th), 0, rows - 1).astype(int)
    tiles = []
    for x0, y0 in _tile_origins(h, w, rows, cols):
        keep = (row_of == y0 // th) & (col_of == x0 // tw)
        tiles.append((image[y0:y0 + th, x0:x0 + tw], points[keep] - np.array([x0, y0])))
    return tiles


def _tiles_tracked(patch: Patch, geometry: PatchToImage, rows: int, cols: int) -> list[Tracked]:
    origins = _tile_origins(*patch[0].shape[:2], rows, cols)
    return list(zip(_crop_grid(patch, rows, cols), (geometry.after_crop(o) for o in origins)))


def _pad_square(patch: Patch) -> Patch:
    image, points = patch
    h, w = image.shape[:2]
    side = max(h, w)
    padded = np.zeros((side, side, 3), dtype=image.dtype)
    padded[:h, :w] = image
    return padded, points


def _apply_step_tracked(items: list[Tracked], step: dict) -> list[Tracked]:
    if len(step) != 1:
        raise ConfigError(f"preprocess step {step!r}: expected exactly one key")
    (kind, arg), = step.items()
    out: list[Tracked] = []
    for patch, geometry in items:
        h, w = patch[0].shape[:2]
        if kind == "resize":
            out.append((_resize(patch, int(arg), int(arg)), geometry.after_resize((int(arg) / w, int(arg) / h))))
        elif kind == "grid":
            if h % arg or w % arg:
                raise ConfigError(f"preprocess grid {arg}: image {w}x{h} is not divisible")
            out.extend(_tiles_tracked(patch, geometry, int(arg), int(arg)))
        elif kind == "pad_square":
            out.append((_pad_square(patch), geometry))
        elif kind == "resize_multiple":
            # Nearest multiple of `arg` to each side (at least one multiple).
            new_w = max(int(arg), int(round(w / arg)) * int(arg))
            new_h = max(int(arg), int(round(h / arg)) * int(arg))
            out.append((_resize(patch, new_w, new_h), geometry.after_resize((new_w / w, new_h / h))))
        elif kind == "tile":
            out.extend(_tiles_tracked(patch, geometry, h // int(arg), w // int(arg)))
        elif kind == "rescale":
            # By a factor, keeping the aspect ratio: brings a dataset's cells to the size the methods expect.
            new_w, new_h = max(1, int(round(w * float(arg)))), max(1, int(round(h * float(arg))))
            out.append((_resize(patch, new_w, new_h), geometry.after_resize((new_w / w, new_h / h))))
        elif kind == "pad_multiple":
            # Zeros on the right and bottom up to whole multiples of `arg` (then tile): no cell is added.
            side_w, side_h = -(-w // int(arg)) * int(arg), -(-h // int(arg)) * int(arg)
            padded = np.zeros((side_h, side_w, 3), dtype=patch[0].dtype)
            padded[:h, :w] = patch[0]
            out.append(((padded, patch[1]), geometry))
        else:
            raise ConfigError(f"preprocess: unknown step {kind!r} (known: resize, grid, pad_square, "
                              f"resize_multiple, tile, rescale, pad_multiple)")
    return out


def apply_step(patches: list[Patch], step: dict) -> list[Patch]:
    return [patch for patch, _ in _apply_step_tracked([(p, PatchToImage()) for p in patches], step)]


def preprocess(image: np.ndarray, points: np.ndarray, steps: list[dict] | tuple[dict, ...]) -> list[Patch]:
    return [patch for patch, _ in preprocess_tracked(image, points, steps)]


def preprocess_tracked(image: np.ndarray, points: np.ndarray,
                       steps: list[dict] | tuple[dict, ...]) -> list[Tracked]:
    """``preprocess``, with each patch's map back to the original image's pixel coordinates."""
    items: list[Tracked] = [((image, points), PatchToImage())]
    for step in steps:
        items = _apply_step_tracked(items, step)
    return items


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
    # Patch p back to its original image: original (x, y) = patch (x, y) * patch_scale[p] + patch_offset[p]
    # (see PatchToImage). None when loaded from a file written before these fields existed.
    patch_scale: np.ndarray | None = None   # (P, 2) float64
    patch_offset: np.ndarray | None = None  # (P, 2) float64

    def patch_points(self, p: int) -> np.ndarray:
        return self.points[self.point_offsets[p]:self.point_offsets[p + 1]]

    def patch_counts(self) -> np.ndarray:
        return np.diff(self.point_offsets)

    def patch_geometry(self, p: int) -> PatchToImage:
        if self.patch_scale is None or self.patch_offset is None:
            raise ValueError("this prepared dataset has no patch geometry (written before it was recorded): "
                             "prepare it again")
        return PatchToImage(tuple(self.patch_scale[p]), tuple(self.patch_offset[p]))

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: getattr(self, k) for k in self.__dataclass_fields__
                                if getattr(self, k) is not None})

    @classmethod
    def load(cls, path: Path) -> "PreparedDataset":
        required = [k for k, f in cls.__dataclass_fields__.items() if f.default is not None]
        with read_back(path, "prepared patches (the prepare stage's patches.npz)"):
            with np.load(path, allow_pickle=False) as data:  # optional fields may be absent from older files
                missing = [k for k in required if k not in data.files]
                if missing:
                    raise ValueError(f"no {', '.join(missing)} in it: not a prepared dataset")
                loaded = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data.files})
            n = len(loaded.image_ids)
            if len(loaded.point_offsets) != len(loaded.images) + 1 or len(loaded.image_counts) != n:
                raise ValueError("its arrays disagree in length")
            return loaded

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
            image_counts=self.image_counts[chosen], image_sizes=self.image_sizes[chosen],
            patch_scale=None if self.patch_scale is None else self.patch_scale[patches],
            patch_offset=None if self.patch_offset is None else self.patch_offset[patches])


def prepare(samples: list[RawSample], steps: list[dict] | tuple[dict, ...], patch_size: int = 256,
            allow_empty: bool = False) -> PreparedDataset:
    """Every sample as patches; an annotation without a dot is refused (naming every such file)
    unless the dataset allows empty images (``allow_empty_images`` in its dataset.yaml)."""
    images, points, counts, patch_image, scales, offsets = [], [], [], [], [], []
    ids, groups, image_counts, sizes = [], [], [], []
    empty = []
    for index, sample in enumerate(samples):
        image, dots = load_sample(sample)
        if not len(dots) and not allow_empty:
            empty.append(str(sample.dots_path))
        tracked = preprocess_tracked(image, dots, steps)
        patches = [patch for patch, _ in tracked]
        total = sum(len(pts) for _, pts in patches)
        if total != len(dots):  # an invariant of the steps above: a bug, not bad input
            raise AssertionError(f"{sample.image_path}: {len(dots)} dots became {total} after preprocessing")
        for (patch_img, patch_pts), geometry in tracked:
            if patch_img.shape[:2] != (patch_size, patch_size):
                raise ConfigError(f"{sample.image_path}: preprocessing gave a {patch_img.shape[1]}x"
                                  f"{patch_img.shape[0]} patch, expected {patch_size}x{patch_size}")
            images.append(patch_img)
            points.append(patch_pts.astype(np.float32))
            counts.append(len(patch_pts))
            patch_image.append(index)
            scales.append(geometry.scale)
            offsets.append(geometry.offset)
        ids.append(sample.image_id)
        groups.append(sample.group)
        image_counts.append(len(dots))
        sizes.append((image.shape[1], image.shape[0]))
    if empty:
        raise DataError(f"{len(empty)} annotation(s) without a single dot (a blackened or empty annotation file; "
                        f"set allow_empty_images: true in the dataset's dataset.yaml if such images are real):\n  "
                        + "\n  ".join(empty))
    return PreparedDataset(
        images=np.stack(images), points=np.concatenate(points) if points else np.zeros((0, 2), np.float32),
        point_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        patch_image=np.array(patch_image, dtype=np.int64), image_ids=np.array(ids),
        image_groups=np.array(groups), image_counts=np.array(image_counts, dtype=np.int64),
        image_sizes=np.array(sizes, dtype=np.int64),
        patch_scale=np.array(scales, dtype=np.float64).reshape(-1, 2),
        patch_offset=np.array(offsets, dtype=np.float64).reshape(-1, 2))
