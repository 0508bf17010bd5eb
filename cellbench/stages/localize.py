"""Localization stage (issue 12): where a trained run puts the cells, on the test split.

For each source map of the run (``counter``: the counter's own output map, for every method;
``localizer``: the full-resolution map of a method that declares a localizer, on top of the same
counter) and each test image:

* peaks of every patch's map (``find_peaks`` at the map's stride, which equals peak finding on the
  map upsampled to the patch), mapped to original-image pixels (``image_peaks``: MBM quarters and
  ADI's resize undone, padding dropped);
* two rules: ``threshold`` (peaks above a threshold chosen on the validation split, never on test,
  at the primary radius) and ``count`` (the round(predicted count) highest peaks, the count being
  the run's counter's, for both sources: the counter says how many, the map says where);
* one-to-one matching with the true dots at every radius of ``radii_for(dataset)``.

Writes, in the run's folder: ``localization.csv`` (one row per source, rule, radius and image: tp,
fp, fn, precision, recall, F1; undefined values empty, never 0), ``points.csv`` (the points either
rule keeps, in original-image pixels) and ``localization.json`` (the thresholds and the validation
images they came from, the radii, the test set's summed scores).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import runs
from ..data.registry import dataset_cells
from ..data.prepare import PreparedDataset
from ..inference import patch_outputs
from ..inputs import images_tensor
from ..io import atomic_path, write_json
from ..localization import (Counts, Peaks, choose_threshold, count_rule, find_peaks, image_peaks, match_radii,
                            radii_for, rounded_count, threshold_rule, total, true_points)
from ..methods import get_method
from .common import inference_model, inference_options, load_splits, setup

log = logging.getLogger(__name__)

SOURCES = ("counter", "localizer")
RULES = ("threshold", "count")
#: Columns of localization.csv, in order.
COLUMNS = ["source", "rule", "radius", "primary", "image_id", "true_count", "pred_count", "n_pred", "tp", "fp",
           "fn", "precision", "recall", "f1", "count_error", "threshold"]


@dataclass
class SplitMaps:
    """What a source map gives on one split: per image, its peaks (original-image pixels, highest
    first) and the counter's predicted count."""
    peaks: list[Peaks]
    counts: np.ndarray
    stride: int


def min_distance(data: PreparedDataset, dataset: str) -> int:
    """Peaks closer than a quarter of the cell spacing (the smallest radius) are one peak: that
    distance in patch pixels (the patches' median scale), at least 1."""
    scale = float(np.median(data.patch_scale)) if data.patch_scale is not None and len(data.patch_scale) else 1.0
    return max(1, int(round(radii_for(dataset).values[0] / scale)))


def split_maps(model: torch.nn.Module, data: PreparedDataset, device: torch.device, distance: int,
               counter_scale: float | None = None, options: dict | None = None) -> SplitMaps:
    """Peaks of ``model``'s map on every patch of ``data``, gathered per image in original pixels;
    with ``counter_scale`` also the per-image count (sum of the map / scale), else zeros."""
    images = images_tensor(data)
    patch_peaks: list[Peaks] = []
    patch_counts = np.zeros(len(images))
    stride = 1
    for start, out in patch_outputs(model, images, device, **(options or {})):
        stride = images.shape[-1] // out.shape[-1]
        if stride * out.shape[-1] != images.shape[-1] or stride * out.shape[-2] != images.shape[-2]:
            raise ValueError(f"output map {tuple(out.shape[-2:])} is not the input {tuple(images.shape[-2:])} "
                             f"divided by a whole stride")
        maps = out[:, 0].double().cpu().numpy()
        patch_peaks += [find_peaks(m, min_distance=distance, stride=stride) for m in maps]
        if counter_scale is not None:
            patch_counts[start:start + len(maps)] = maps.sum(axis=(1, 2)) / counter_scale
    counts = np.bincount(data.patch_image, weights=patch_counts, minlength=len(data.image_ids))
    return SplitMaps(image_peaks(data, patch_peaks), counts, stride)


def _row(source: str, rule: str, radius: float, primary: bool, image_id: str, pred_count: float, counts: Counts,
         threshold: float) -> dict:
    return {"source": source, "rule": rule, "radius": radius, "primary": primary, "image_id": image_id,
            "true_count": counts.true, "pred_count": pred_count, "n_pred": counts.predicted, "tp": counts.tp,
            "fp": counts.fp, "fn": counts.fn, **counts.scores(), "count_error": counts.count_error,
            "threshold": threshold}


def localize_maps(source: str, test: SplitMaps, truths: list[np.ndarray], image_ids: list[str], threshold: float,
                  radii: tuple[float, ...], primary: float) -> tuple[list[dict], list[pd.DataFrame]]:
    """Rows of localization.csv and the kept points of one source on the test images."""
    rows, points = [], []
    for peaks, true, image_id, count in zip(test.peaks, truths, image_ids, test.counts):
        kept = {"threshold": threshold_rule(peaks, threshold), "count": count_rule(peaks, count)}
        for rule, chosen in kept.items():
            for radius, match in zip(radii, match_radii(chosen.points, true, radii)):
                rows.append(_row(source, rule, radius, radius == primary, image_id, float(count), match.counts,
                                 threshold if rule == "threshold" else math.nan))
        # both rules keep a prefix of the peaks (highest first): the longer prefix holds both
        n = max(len(kept["threshold"]), len(kept["count"]))
        points.append(pd.DataFrame({
            "source": source, "image_id": image_id, "x": peaks.points[:n, 0], "y": peaks.points[:n, 1],
            "value": peaks.values[:n], "threshold_rule": peaks.values[:n] > threshold,
            "count_rule": np.arange(n) < rounded_count(count)}))
    return rows, points


def _nan_to_none(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def _set_scores(frame: pd.DataFrame) -> dict:
    """Summed tp, fp, fn and their scores per rule and radius (micro over the test images)."""
    out: dict = {}
    for (rule, radius), group in frame.groupby(["rule", "radius"], sort=False):
        c = total(Counts(int(r.tp), int(r.fp), int(r.fn)) for r in group.itertuples())
        out.setdefault(rule, {})[f"{radius:g}"] = {"tp": c.tp, "fp": c.fp, "fn": c.fn,
                                                   **{k: _nan_to_none(v) for k, v in c.scores().items()}}
    return out


def localize_stage(config: dict, dataset: str, method: str, seed: int, prepared: Path, split_file: Path,
                   run_dir: Path, threads: int | None = None) -> None:
    """Localize the test images with a trained run; writes localization.csv, points.csv and
    localization.json in ``run_dir``."""
    tic = time.perf_counter()
    device = setup(config, seed, threads, training=False)
    spec = get_method(method)
    val, test = load_splits(config, prepared, split_file, "val", "test")
    radii = radii_for(dataset)
    distance = min_distance(test, dataset)
    saved = runs.SavedCounter.read(run_dir)
    options = inference_options(config, saved.stats)
    counter = inference_model(saved.model(spec, "best"), device, config)
    models = {"counter": counter}
    if spec.localizer:
        loc = runs.SavedLocalizer.read(run_dir)
        models["localizer"] = inference_model(loc.model(spec, counter, dataset_cells(dataset).density_scale),
                                              device, config)
    truths = {"val": true_points(val), "test": true_points(test)}
    rows, points, summary = [], [], {}
    counts = {}
    for source, model in models.items():
        maps = {}
        for part, data in (("val", val), ("test", test)):
            maps[part] = split_maps(model, data, device, distance,
                                    saved.count_scale if source == "counter" else None, options)
            if source == "counter":
                counts[part] = maps[part].counts
            maps[part].counts = counts[part]  # the count rule uses the counter's count for every source
        choice = choose_threshold(maps["val"].peaks, truths["val"], radii.primary)
        source_rows, source_points = localize_maps(source, maps["test"], truths["test"], test.image_ids.tolist(),
                                                   choice.threshold, radii.values, radii.primary)
        rows += source_rows
        points += source_points
        summary[source] = {
            "threshold": choice.threshold if math.isfinite(choice.threshold) else str(choice.threshold),
            "val_counts": {"tp": choice.counts.tp, "fp": choice.counts.fp, "fn": choice.counts.fn},
            "val_f1": _nan_to_none(choice.counts.f1), "map_stride": maps["test"].stride,
            "test": _set_scores(pd.DataFrame(source_rows))}
        log.info("%s / %s / seed %d, %s map: threshold %.4g (validation F1 %.3f at r=%g px)", dataset, method, seed,
                 source, choice.threshold, choice.counts.f1, radii.primary)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(run_dir / runs.LOCALIZATION) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    kept = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    with atomic_path(run_dir / runs.POINTS) as tmp:
        kept.to_csv(tmp, index=False, float_format="%.6g")
    write_json(run_dir / runs.LOCALIZATION_SUMMARY, {
        "dataset": dataset, "method": method, "seed": seed, "sources": summary,
        "radii": list(radii.values), "primary_radius": radii.primary, "min_distance_patch_pixels": distance,
        "threshold_chosen_on": "val", "val_images": val.image_ids.tolist(), "test_images": test.image_ids.tolist(),
        "count_rule_count": "the run's counter's predicted count per image (sum of its map / count_scale)"})
    runs.record_timing(run_dir, "localize", seconds=time.perf_counter() - tic, device=str(device))
