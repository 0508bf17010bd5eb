"""Evaluation stage: count every test image with the selected model (and the last epoch's, when its
weights were kept); metrics."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from .. import runs
from ..data.registry import dataset_cells
from ..inference import count_images, counts_and_grids
from ..inputs import images_tensor
from ..io import atomic_path, read_json, write_json
from ..methods import get_method
from ..localization.geometry import true_points
from ..metrics import count_metrics, game_metrics, grid_sums, patch_metrics
from .common import inference_model, inference_options, load_split, setup


def evaluate_stage(config: dict, dataset: str, method: str, seed: int, prepared: Path, split_file: Path,
                   run_dir: Path, threads: int | None = None) -> None:
    """Count every test image; writes predictions.csv and metrics.json in ``run_dir``."""
    device = setup(config, seed, threads, training=False)
    spec = get_method(method)
    test = load_split(prepared, split_file, "test", config["train"]["max_images"]["test"])
    images = images_tensor(test)
    columns = {"image_id": test.image_ids, "true_count": test.image_counts}
    saved = runs.SavedCounter.read(run_dir)
    options = inference_options(config, saved.stats)
    best = inference_model(saved.model(spec, "best"), device, config)
    tic, grid_timing = time.perf_counter(), {}
    columns["pred_count"], pred_grids, pred_patches = counts_and_grids(best, test, device, saved.count_scale,
                                                                       spec.stride, images=images, timing=grid_timing,
                                                                       **options)
    seconds = time.perf_counter() - tic - grid_timing["grid_seconds"]   # inference alone, as before GAME
    true_grids = [grid_sums(points, size) for points, size in zip(true_points(test), test.image_sizes)]
    if saved.last is not None:  # train.keep_last_weights
        last = inference_model(saved.model(spec, "last"), device, config)
        columns["pred_count_last_epoch"] = count_images(last, test, device, saved.count_scale, images=images,
                                                        **options)
    localizer_metrics = None
    if spec.localizer:
        loc = runs.SavedLocalizer.read(run_dir)
        wrapped = inference_model(loc.model(spec, best, dataset_cells(dataset).density_scale), device, config)
        columns["localizer_count"] = count_images(wrapped, test, device, loc.count_scale, images=images, **options)
        localizer_metrics = count_metrics(test.image_counts, columns["localizer_count"])
    frame = pd.DataFrame(columns)
    frame["abs_error"] = (frame["pred_count"] - frame["true_count"]).abs()
    with atomic_path(run_dir / runs.PREDICTIONS) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    metrics = count_metrics(frame["true_count"], frame["pred_count"])
    metrics.update(game_metrics(pred_grids, true_grids))
    metrics["per_patch"] = patch_metrics(test.patch_counts(), pred_patches, test.patch_image)
    metadata = read_json(run_dir / runs.METADATA) if (run_dir / runs.METADATA).is_file() else {}
    metrics.update({
        "dataset": dataset, "method": method, "seed": seed,
        "status": metadata.get("status", "trained"), "collapse": metadata.get("collapse"),
        "train_images": metadata.get("train_images"), "subset": metadata.get("subset"),
        "note": "mae and rmse are per image (an image's patches summed); rmse is what the DCL paper and this "
                "literature call 'MSE'; mse is the plain mean squared error; per_patch: the same per patch, for a "
                "dataset whose images are cut into several patches (MBM, DCC; null otherwise); game<L> is GAME(L): "
                "the image cut into 4^L equal cells, the absolute count error summed over them, averaged over "
                "images, in original-image pixels (game0 is the mae)",
        "best_epoch": saved.best_epoch, "best_val_mae": saved.best_val_mae,
        "last_epoch": (count_metrics(frame["true_count"], frame["pred_count_last_epoch"])
                       if "pred_count_last_epoch" in frame else None),
        "localizer": localizer_metrics,
    })
    write_json(run_dir / runs.METRICS, metrics)
    runs.record_timing(run_dir, "evaluate", seconds=seconds, device=str(device),
                       inference_images_per_second=len(images) / seconds if seconds > 0 else None,
                       game_grid_seconds=grid_timing["grid_seconds"])
