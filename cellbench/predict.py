"""Count the cells in your own images with a trained run or a shipped model (``cellbench predict``).

    python -m cellbench predict IMAGE_OR_FOLDER... (--run RUN_DIR | --model DATASET/METHOD) --out DIR

An image is brought to the scale its model was trained at exactly as the training data were: the
preprocessing of the model's dataset (``--like`` another dataset's, or ``--scale`` a factor), then,
where a patch is still larger than the training patch, padding on the right and bottom to a whole
number of patches and tiling; the counts of an image's patches are summed. A test image of the
run's own dataset is therefore counted exactly as the evaluate stage counted it.

Writes ``counts.csv`` (image, predicted count, the localizer's count where the method has one),
``points.csv`` (x, y in the image's own pixels: the peaks above the threshold the run chose on its
validation split, or the count-guided rule) and ``overlays/<image>.png`` (the image with the
points, and the predicted map, the count in the title). Images that cannot be read are named,
the others still counted; the exit status says whether any failed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from . import REPO_ROOT, runs
from .data.fetch import sha256
from .data.prepare import PatchToImage, PreparedDataset, preprocess_tracked
from .data.registry import dataset_cells, load_dataset
from .domain import Domain, place_grey, warnings_for
from .errors import CellbenchError, ConfigError, DataError
from .io import atomic_path, read_json
from .methods import MethodSpec, get_method
from .methods.registry import fitted_method

log = logging.getLogger(__name__)

MODELS_DIR = REPO_ROOT / "models"
MODELS_MANIFEST = MODELS_DIR / "SHA256SUMS"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
PROGRESS_EVERY = 25   # images between progress lines
SINGLE = "single channel"   # what load_images records of a grey image (in image_groups)
PATCH_SIZE = 256      # the patches every model is trained on (cellbench.data.prepare)


# --- the model ---------------------------------------------------------------------------------

@dataclass
class Predictor:
    """A trained counter (and localizer), with what its run chose: the dataset it was trained on,
    the inference settings and the localization threshold per source map."""
    name: str
    spec: MethodSpec
    dataset: str
    counter: runs.SavedCounter
    localizer: runs.SavedLocalizer | None
    config: dict
    thresholds: dict[str, float]   # source map -> threshold chosen on validation (may be absent)
    min_distance: int | None = None   # the peak spacing (patch pixels) the thresholds were chosen with
    grey_channels: tuple[int, ...] | None = None   # where a single-channel image goes (None: the signal channels)

    @property
    def grey_into(self) -> tuple[int, ...]:
        """The channels a single-channel image is put into: ``--grey-into``, else the model's signal channels."""
        return tuple(self.grey_channels or self.domain.signal_channels)

    @property
    def grey_fill(self) -> tuple[float, float, float]:
        """The values a single-channel image's other channels get: the training images' means there."""
        return self.domain.fill(self.grey_into) if self.domain else (0.0, 0.0, 0.0)

    @property
    def domain(self) -> Domain | None:
        """What the model was trained on: its record, else (a run saved before 2026-12-07) what its
        dataset's definition and input statistics tell."""
        recorded = Domain.from_dict(self.counter.domain)
        if recorded is not None:
            return recorded
        stats = self.counter.stats
        return Domain(dataset_cells(self.dataset).signal_channels,
                      stats.mean if stats.source == "training split" else None, None)

    @property
    def density_scale(self) -> float:
        """The density scale the localizer was trained with: its run's record, else its dataset's."""
        old = (self.config.get("targets") or {}).get(self.dataset)   # runs recorded before dataset.yaml held it
        return float(old["density_scale"]) if old else dataset_cells(self.dataset).density_scale

    @classmethod
    def from_run(cls, run_dir: Path, name: str | None = None) -> "Predictor":
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise CellbenchError(f"--run {run_dir}: no such folder")
        for needed in (runs.COUNTER, runs.METADATA):
            if not (run_dir / needed).is_file():
                raise CellbenchError(f"--run {run_dir}: no {needed} in it (a run folder holds counter.pt and "
                                     f"metadata.json once its training has finished)")
        meta = read_json(run_dir / runs.METADATA)
        spec = get_method(meta["method"]["name"])
        localizer = runs.SavedLocalizer.read(run_dir) if spec.localizer and (run_dir / runs.LOCALIZER).is_file() else None
        thresholds, distance = {}, None
        if (run_dir / runs.LOCALIZATION_SUMMARY).is_file():
            summary = read_json(run_dir / runs.LOCALIZATION_SUMMARY)
            distance = summary.get("min_distance_patch_pixels")
            for source, entry in summary["sources"].items():
                value = float(entry["threshold"])
                if math.isfinite(value):
                    thresholds[source] = value
        return cls(name or str(run_dir), spec, meta["dataset"], runs.SavedCounter.read(run_dir), localizer,
                   meta["config"], thresholds, distance)

    @classmethod
    def shipped(cls, name: str) -> "Predictor":
        """A model shipped under models/ (DATASET/METHOD), its files checked against the manifest."""
        folder = MODELS_DIR / name
        known = shipped_models()
        if name not in known:
            raise CellbenchError(f"--model {name!r}: no such shipped model; known: {', '.join(known) or 'none'} "
                                 f"(python -m cellbench predict --list)")
        verify_shipped(folder)
        return cls.from_run(folder, name)


def shipped_models() -> list[str]:
    return sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in MODELS_DIR.glob(f"*/*/{runs.COUNTER}"))


def verify_shipped(folder: Path) -> None:
    """Every file of a shipped model must have the SHA-256 in models/SHA256SUMS."""
    expected = {}
    for line in MODELS_MANIFEST.read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        expected[rel.strip()] = digest
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        rel = str(path.relative_to(MODELS_DIR))
        if expected.get(rel) != sha256(path):
            raise CellbenchError(f"{path}: its SHA-256 differs from {MODELS_MANIFEST} (or it is not listed): the "
                                 f"file is damaged or was changed; check out models/ again")


def list_shipped() -> str:
    """The shipped models, one line each: name, method, size, test MAE, the floor's test MAE, and what it
    was trained on."""
    header = ("model", "method", "size", "test MAE", "floor MAE", "trained on")
    rows = []
    for name in shipped_models():
        meta = read_json(MODELS_DIR / name / runs.METADATA)
        metrics = read_json(MODELS_DIR / name / runs.METRICS) if (MODELS_DIR / name / runs.METRICS).is_file() else {}
        size = sum(p.stat().st_size for p in (MODELS_DIR / name).glob("*.pt")) / 1e6
        floor = meta.get("shipped", {}).get("floor_test_mae")
        method = meta["method"]["name"] if isinstance(meta.get("method"), dict) else str(meta.get("method", "-"))
        kind = " (no deep learning)" if fitted_method(meta.get("method")) else ""
        rows.append((name, method + kind, f"{size:.2f} MB", f"{metrics['mae']:.2f}" if "mae" in metrics else "-",
                     f"{floor:.2f}" if isinstance(floor, (int, float)) else "-",
                     f"{meta['dataset']} seed {meta['seed']}, track {meta['config'].get('track', 'paper')}, "
                     f"width {meta['config']['train'].get('width', 1)}"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


# --- the images --------------------------------------------------------------------------------

def find_images(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    """The image files named or inside the folders named (sorted), and a message per input that
    gives none."""
    found, problems = [], []
    for item in inputs:
        if item.is_dir():
            files = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                problems.append(f"{item}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
            found += files
        elif item.is_file():
            found.append(item)
        else:
            problems.append(f"{item}: no such file or folder")
    unique, seen = [], set()
    for path in found:   # an image named twice (a folder and a file in it) is counted once
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique, problems


def read_user_image(path: Path, grey_into=(0, 1, 2), fill=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, bool]:
    """Any single image a microscope gives (PNG, JPEG, TIFF; 8- or 16-bit; grayscale or RGB) as
    RGB uint8, and whether it had a single channel: a 16-bit image is scaled by its type's range
    (65535 -> 255), not by its own maximum, so that two images of one acquisition keep their
    relative brightness; a single channel goes into the channels ``grey_into``, the others are set
    to ``fill`` (a model's signal channels and its training means: ``Predictor.grey_into``, ``grey_fill``)."""
    try:
        with Image.open(path) as img:
            img.load()
            if getattr(img, "n_frames", 1) > 1:
                log.warning("%s: %d pages; the first is counted", path, img.n_frames)
            mode = img.mode
            # palette, 1-bit and other colour spaces: Pillow's own conversion (decoded once)
            array = np.asarray(img.convert("RGB") if mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV") else img)
    except (OSError, SyntaxError, ValueError) as exc:   # not an image, truncated, empty
        raise DataError(f"{path}: not a readable image ({exc})") from exc
    if array.size == 0:
        raise DataError(f"{path}: the image is empty")
    if array.dtype == np.uint16 or mode.startswith("I;16"):
        array = (array.astype(np.float64) * (255.0 / 65535.0)).round()
    elif array.dtype != np.uint8:
        if array.dtype.kind == "f":   # floats: 0..1, else stretched from their own range
            low, high = float(np.nanmin(array)), float(np.nanmax(array))
            scale = 255.0 if high <= 1.0 and low >= 0.0 else 255.0 / max(high - low, 1e-12)
            array = array - (0.0 if high <= 1.0 and low >= 0.0 else low)
        else:
            scale = 255.0 / float(np.iinfo(array.dtype).max)
        array = array.astype(np.float64) * scale
    array = np.clip(array, 0, 255).astype(np.uint8)
    single = array.ndim == 2 or array.shape[2] == 2   # grey, or grey with alpha
    if array.ndim == 2:
        array = place_grey(array, grey_into, fill)
    elif array.shape[2] == 2:
        array = place_grey(array[:, :, 0], grey_into, fill)
    elif array.shape[2] >= 4:   # RGBA: the colour, not the transparency
        array = array[:, :, :3]
    return np.ascontiguousarray(array), single


def grey_channels(text: str | None) -> tuple[int, ...] | None:
    """``--grey-into``: None for auto (the model's signal channels), else the channels named."""
    if text is None or text == "auto":
        return None
    if text == "all":
        return (0, 1, 2)
    names = {"red": 0, "green": 1, "blue": 2, "r": 0, "g": 1, "b": 2, "0": 0, "1": 1, "2": 2}
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    unknown = [p for p in parts if p not in names]
    if unknown or not parts:
        raise ConfigError(f"--grey-into {text!r}: give auto, all, or channels among red, green, blue (or 0, 1, 2), "
                          f"comma-separated")
    return tuple(sorted({names[p] for p in parts}))


def preprocessing(dataset: str, like: str | None, scale: float | None) -> list[dict]:
    """The steps applied before padding and tiling: ``--scale`` (a resize by that factor), else the
    preprocessing of ``--like`` or of the model's own dataset."""
    if scale is not None:
        if not scale > 0:
            raise ConfigError(f"--scale {scale}: must be a positive factor")
        return [{"scale": float(scale)}]
    return list(load_dataset(like or dataset).preprocess)


def _pad_and_tile(patch, geometry: PatchToImage, path: Path) -> list:
    """A patch larger than the training patch: padded on the right and bottom to a whole number of
    patches (zeros: no cells), then cut into them. Smaller: refused."""
    image, points = patch
    h, w = image.shape[:2]
    if h < PATCH_SIZE or w < PATCH_SIZE:
        raise DataError(f"{path}: {w}x{h} pixels after preprocessing, smaller than the {PATCH_SIZE}x{PATCH_SIZE} "
                        f"patch the model was trained on; pass --scale (a factor above 1) or --like a dataset "
                        f"whose preprocessing resizes")
    rows, cols = math.ceil(h / PATCH_SIZE), math.ceil(w / PATCH_SIZE)
    padded = np.zeros((rows * PATCH_SIZE, cols * PATCH_SIZE, 3), np.uint8)
    padded[:h, :w] = image
    out = []
    for r in range(rows):
        for c in range(cols):
            origin = (c * PATCH_SIZE, r * PATCH_SIZE)
            tile = padded[origin[1]:origin[1] + PATCH_SIZE, origin[0]:origin[0] + PATCH_SIZE]
            out.append(((tile, points[:0]), geometry.after_crop(origin)))
    return out


def _patches(image: np.ndarray, steps: list[dict], path: Path) -> list:
    none = np.zeros((0, 2))
    own = [s for s in steps if "scale" not in s]
    if len(own) != len(steps):   # --scale: one resize by the factor
        from .data.prepare import _resize
        factor = steps[0]["scale"]
        h, w = image.shape[:2]
        new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
        tracked = [(_resize((image, none), new_w, new_h), PatchToImage().after_resize((new_w / w, new_h / h)))]
    else:
        try:
            tracked = preprocess_tracked(image, none, own)
        except ConfigError as exc:   # e.g. MBM's 2x2 grid on an odd size
            raise DataError(f"{path}: the preprocessing {own} does not apply to a {image.shape[1]}x{image.shape[0]} "
                            f"image ({exc}); pass --scale instead") from exc
    out = []
    for patch, geometry in tracked:
        if patch[0].shape[:2] == (PATCH_SIZE, PATCH_SIZE):
            out.append((patch, geometry))
        else:
            out += _pad_and_tile(patch, geometry, path)
    return out


def load_images(paths: list[Path], steps: list[dict], grey_into=(0, 1, 2),
                fill=(0.0, 0.0, 0.0)) -> tuple[PreparedDataset | None, list[str]]:
    """The readable images as patches (a PreparedDataset without dots; its ``image_groups`` say
    "single channel" or "colour" per image), and a message per image that could not be read or
    brought to the patch size."""
    images, patch_image, scales, offsets, ids, sizes, problems, kinds = [], [], [], [], [], [], [], []
    for path in paths:
        try:
            image, single = read_user_image(path, grey_into, fill)
            tracked = _patches(image, steps, path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:   # an image Pillow or numpy cannot take (too large, an odd mode): named
            problems.append(f"{path}: cannot be read as an image ({type(exc).__name__}: {exc})")
            continue
        for (tile, _), geometry in tracked:
            images.append(tile)
            patch_image.append(len(ids))
            scales.append(geometry.scale)
            offsets.append(geometry.offset)
        ids.append(str(path))
        kinds.append(SINGLE if single else "colour")
        sizes.append((image.shape[1], image.shape[0]))
    if not ids:
        return None, problems
    n = len(images)
    data = PreparedDataset(
        images=np.stack(images), points=np.zeros((0, 2), np.float32), point_offsets=np.zeros(n + 1, np.int64),
        patch_image=np.array(patch_image, np.int64), image_ids=np.array(ids), image_groups=np.array(kinds),
        image_counts=np.zeros(len(ids), np.int64), image_sizes=np.array(sizes, np.int64),
        patch_scale=np.array(scales, np.float64), patch_offset=np.array(offsets, np.float64))
    return data, problems


# --- counting ----------------------------------------------------------------------------------

@dataclass
class Prediction:
    counts: pd.DataFrame
    points: pd.DataFrame
    maps: dict[str, list[np.ndarray]]   # source -> one map per patch (patch pixels / stride)
    stride: dict[str, int]


def predict(predictor: Predictor, data: PreparedDataset, device: torch.device, rule: str = "auto") -> Prediction:
    """Counts, points and maps of every image of ``data``, in chunks of images (progress logged)."""
    from .inference import for_inference, image_counts, patch_outputs
    from .inputs import images_tensor
    from .localization import count_rule, find_peaks, image_peaks, threshold_rule
    from .stages.localize import min_distance

    train = predictor.config["train"]
    options = {"amp": train.get("amp", False), "channels_last": train.get("channels_last", False),
               "stats": predictor.counter.stats}   # the inputs normalised as in its training
    counter = for_inference(predictor.counter.model(predictor.spec, "best"), device, options["channels_last"])
    models = {"counter": counter}
    if predictor.localizer is not None:
        density_scale = predictor.density_scale
        models["localizer"] = for_inference(predictor.localizer.model(predictor.spec, counter, density_scale),
                                            device, options["channels_last"])
    source = "localizer" if "localizer" in models else "counter"   # the method's points come from its localizer
    # the peak spacing the run's threshold was chosen with (its localization.json), else the dataset's
    distance = predictor.min_distance or min_distance(data, predictor.dataset)
    ids = data.image_ids.tolist()
    count_rows, point_frames = [], []
    maps: dict[str, list[np.ndarray]] = {s: [] for s in models}
    strides: dict[str, int] = {}
    use_threshold = rule == "threshold" or (rule == "auto" and source in predictor.thresholds)
    if rule == "threshold" and source not in predictor.thresholds:
        raise CellbenchError(f"{predictor.name}: no localization threshold was chosen for its {source} map "
                             f"(no localization.json); use --rule count")
    scales = {"counter": predictor.counter.count_scale,
              "localizer": predictor.localizer.count_scale if predictor.localizer else None}
    for first in range(0, len(ids), PROGRESS_EVERY):
        chunk = data.subset(ids[first:first + PROGRESS_EVERY])
        images = images_tensor(chunk)
        per_image, patch_peaks = {}, []
        for name, model in models.items():   # one pass per model: counts, maps and peaks from the same outputs
            sums = []
            for _, out in patch_outputs(model, images, device, **options):
                strides[name] = images.shape[-1] // out.shape[-1]
                sums.append(out.sum(dim=(1, 2, 3)))   # as inference.patch_counts: the evaluate stage's counts
                patch_maps = list(out[:, 0].double().cpu().numpy())
                maps[name] += patch_maps
                if name == source:
                    patch_peaks += [find_peaks(m, min_distance=distance, stride=strides[name]) for m in patch_maps]
            per_patch = (torch.cat(sums) / scales[name]).double().cpu().numpy()
            per_image[name] = image_counts(per_patch, chunk.patch_image, len(chunk.image_ids))
        counts = per_image["counter"]
        rows = {"image": chunk.image_ids.tolist(), "pred_count": counts}
        if "localizer" in per_image:
            rows["localizer_count"] = per_image["localizer"]
        count_rows.append(pd.DataFrame(rows))
        for image, peaks, count in zip(chunk.image_ids.tolist(), image_peaks(chunk, patch_peaks), counts):
            kept = threshold_rule(peaks, predictor.thresholds[source]) if use_threshold else count_rule(peaks, count)
            point_frames.append(pd.DataFrame({"image": image, "x": kept.points[:, 0], "y": kept.points[:, 1],
                                              "value": kept.values,
                                              "rule": "threshold" if use_threshold else "count"}))
        done = min(first + PROGRESS_EVERY, len(ids))
        if len(ids) > PROGRESS_EVERY:
            log.info("counted %d of %d images", done, len(ids))
    points = pd.concat(point_frames, ignore_index=True) if point_frames else pd.DataFrame(
        columns=["image", "x", "y", "value", "rule"])
    counts = pd.concat(count_rows, ignore_index=True)
    counts["domain_warning"] = domain_warnings(predictor, data, points)
    return Prediction(counts, points, maps, strides)


def domain_warnings(predictor: Predictor, data: PreparedDataset, points: pd.DataFrame) -> list[str]:
    """Per image, why it lies outside what the model was trained on ('' when it does not): see
    ``cellbench.domain``; each is logged naming the image."""
    out = []
    for index, image in enumerate(data.image_ids.tolist()):
        reasons = warnings_for(predictor.domain, data, index, data.image_groups[index] == SINGLE, predictor.grey_into)
        for reason in reasons:
            log.warning("%s: outside what %s was trained on: %s", image, predictor.name, reason)
        out.append("; ".join(reasons))
    return out


# --- writing -----------------------------------------------------------------------------------

def overlay(path: Path, image: np.ndarray, data: PreparedDataset, index: int, prediction: Prediction,
            title: str, count_scale: float = 1.0) -> None:
    """The image with its points, beside the predicted map laid over the image's own pixels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = "localizer" if "localizer" in prediction.maps else "counter"
    patches = np.flatnonzero(data.patch_image == index)
    maps = [prediction.maps[source][p] for p in patches]
    vmax = max(float(np.max(m)) for m in maps) if maps else 1.0
    h, w = image.shape[:2]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.4), constrained_layout=True)
    axes[0].imshow(image)
    pts = prediction.points[prediction.points["image"] == data.image_ids[index]]
    axes[0].scatter(pts["x"], pts["y"], s=12, facecolors="none", edgecolors="yellow", linewidths=0.9)
    axes[0].set_title(f"{len(pts)} points ({pts['rule'].iloc[0] if len(pts) else 'no'} rule)")
    axes[1].imshow(image, alpha=0.35)
    stride = prediction.stride[source]
    for p, m in zip(patches, maps):
        # a map cell covers stride x stride patch pixels; the patch maps to the image affinely
        scale, offset = data.patch_scale[p], data.patch_offset[p]
        x0, y0 = offset - 0.5 * scale
        x1, y1 = offset + (PATCH_SIZE - 0.5) * scale
        shown = axes[1].imshow(m, extent=(x0, x1, y1, y0), cmap="magma", vmin=0, vmax=vmax or 1.0, alpha=0.8,
                               interpolation="nearest" if stride > 1 else "antialiased")
    axes[1].set_xlim(-0.5, w - 0.5)
    axes[1].set_ylim(h - 0.5, -0.5)
    axes[1].set_title(f"predicted {source} map")
    if maps:
        fig.colorbar(shown, ax=axes[1], shrink=0.8, label=f"map value (count = sum / {count_scale:g})")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def write_outputs(out: Path, predictor: Predictor, data: PreparedDataset, prediction: Prediction,
                  overlays: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "counts.csv") as tmp:
        prediction.counts.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(out / "points.csv") as tmp:
        prediction.points.to_csv(tmp, index=False, float_format="%.2f")
    if not overlays:
        return
    (out / "overlays").mkdir(exist_ok=True)
    names: set[str] = set()
    for index, row in prediction.counts.iterrows():
        path = Path(row["image"])
        stem = path.stem
        while stem in names:   # a.png and a.tif, or two folders' a.png: one overlay each
            stem = f"{stem}_{len(names)}"
        names.add(stem)
        extra = f", localizer {row['localizer_count']:.1f}" if "localizer_count" in row else ""
        title = f"{path.name}: {row['pred_count']:.1f} cells ({predictor.name}{extra})"
        scale = predictor.localizer.count_scale if predictor.localizer else predictor.counter.count_scale
        image = read_user_image(path, predictor.grey_into, predictor.grey_fill)[0]
        overlay(out / "overlays" / f"{stem}.png", image, data, index, prediction, title, scale)
