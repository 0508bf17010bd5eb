"""Training stages: a method's counter, then (for methods that declare one) its localizer."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from .. import runs
from ..data.registry import dataset_cells
from ..domain import Domain
from ..inputs import InputStats, stats_for
from ..io import write_json
from ..localizer import CounterConditionedLocalizer
from ..methods import (MethodSpec, build_localizer, build_model, describe, get_method, method_target, resolve_loss,
                       training_sizes)
from ..provenance import environment, method_files
from ..training.losses import LOSSES
from ..training.trainer import Task, fit
from .common import load_splits, setup, split_subset, train_settings

log = logging.getLogger(__name__)


def density_scale_at(density_scale: float, stride: int) -> float:
    """The factor of a density target at ``stride``: the dataset's ``density_scale`` over stride^2, so
    that a map cell holds the mean scaled density of the stride x stride pixels it covers, not their
    sum. A stride-8 map's targets were 64 times a stride-1 map's: a network with batch norm (features
    of unit scale) had to grow its output weights 64 times larger, which Adam does at about lr per step
    (MCNN on VGG: validation MAE 37 of the floor's 46 after 30 epochs; the original CSRNet's targets,
    counts per 8x8 block, are of this new scale)."""
    return density_scale / stride ** 2


def counter_task(config: dict, dataset: str, spec: MethodSpec, model: torch.nn.Module, seed: int,
                 stats: InputStats | None = None) -> Task:
    """What the trainer fits for a method's counter on a dataset; ``stats``: what its inputs are
    normalised with (``inputs.stats_for``)."""
    target = dataset_cells(dataset)
    density = not spec.fitted and method_target(spec) == "density"   # a fitted method's map is a count map
    scale = density_scale_at(target.density_scale, spec.stride) if density else 1.0
    return Task(model=model, loss=None if spec.fitted else resolve_loss(spec), stride=spec.stride,
                count_scale=scale, sigma=target.sigma if density else None, density_scale=scale,
                output=None if spec.fitted else spec.output, fitted=spec.fitted, floor=spec.floor, input_stats=stats,
                label=f"{dataset} / {spec.name} / seed {seed}", where=str(spec.definition))


def train_stage(config: dict, dataset: str, method: str, seed: int, prepared: Path, split_file: Path,
                run_dir: Path, threads: int | None = None) -> None:
    """Fit a method's model; writes the counter, its log and metadata.json in ``run_dir``."""
    tic = time.time()
    device = setup(config, seed, threads)
    spec = get_method(method)
    train, val = load_splits(config, prepared, split_file, "train", "val")
    width = config["train"]["width"]
    model = build_model(spec, config["train"]["pretrained"], training_sizes(config, spec), width)
    stats = stats_for(getattr(model, "init_description", ""), train)
    domain = Domain.of(train, dataset_cells(dataset).signal_channels)
    task = counter_task(config, dataset, spec, model, seed, stats)
    log.info("%s / %s / seed %d: %d train and %d val images (%d/%d patches) on %s", dataset, method, seed,
             len(train.image_ids), len(val.image_ids), len(train.images), len(val.images), device)
    subset = split_subset(split_file)
    result = fit(task, train, val, train_settings(config, seed, spec=spec, subset=subset), device,
                 run_dir / runs.COUNTER_CHECKPOINT, run_dir / runs.COUNTER_LOG)
    runs.SavedCounter(method=method, best=result.state_dict,
                      last=result.last_state_dict if config["train"]["keep_last_weights"] else None,
                      best_epoch=result.best_epoch, best_val_mae=result.best_val_mae,
                      count_scale=task.count_scale, width=width, input_stats=stats.to_dict(),
                      domain=domain.to_dict()).save(run_dir)
    write_json(run_dir / runs.METADATA, {
        "dataset": dataset, "method": describe(spec), "seed": seed, "config": config,
        "initialisation": getattr(model, "init_description", "not reported by the model"),
        "pretrained": config["train"]["pretrained"], "train_images": len(train.image_ids), "subset": subset,
        "val_images": len(val.image_ids), "best_epoch": result.best_epoch,
        "best_val_mae": result.best_val_mae, "wall_seconds": time.time() - tic,
        "status": result.status, "collapse": result.collapsed,
        "floor_val_mae": result.floor_val_mae, "floor": "the best constant's validation MAE (median count)",
        "did_not_learn": result.did_not_learn, "did_not_learn_reasons": result.did_not_learn_reasons,
        "val_spread": result.val_spread, "val_correlation": result.val_correlation,
        "epochs": result.epochs, "fit": result.fitted, "input_stats": stats.to_dict(), "domain": domain.to_dict(),
        "output_bias": result.output_bias,
        "warmup_epochs": config["train"]["warmup_epochs"],
        "method_files": (files := method_files(spec.directory)),
        "environment": _with_method_state(environment(device), files)})
    (run_dir / runs.COUNTER_CHECKPOINT).unlink(missing_ok=True)


def _with_method_state(env: dict, files: dict) -> dict:
    """A method folder that is modified or not in git makes the tree dirty for this run: the
    commit alone would not give the method that ran (its files' hash is in metadata.json)."""
    if files["git"] in ("modified", "untracked"):
        env["git"] = dict(env["git"], dirty=True, method_files=files["git"])
    return env


def localizer_stage(config: dict, dataset: str, method: str, seed: int, prepared: Path, split_file: Path,
                    run_dir: Path, threads: int | None = None) -> None:
    """Fit the localizer with the counter frozen; writes the localizer and its log in ``run_dir``."""
    tic = time.time()
    device = setup(config, seed, threads)
    spec = get_method(method)
    saved = runs.SavedCounter.read(run_dir)
    counter = saved.model(spec)
    target = dataset_cells(dataset)
    localizer = build_localizer(spec, training_sizes(config, spec), config["train"]["width"])
    model = CounterConditionedLocalizer(counter, localizer, spec.stride, target.density_scale)
    train, val = load_splits(config, prepared, split_file, "train", "val")
    output = spec.localizer.get("output")
    task = Task(model=model, loss=LOSSES["density_mse"], stride=1, count_scale=target.density_scale,
                sigma=target.sigma, density_scale=target.density_scale,
                output=dict(output, layer=f"localizer.{output['layer']}") if output else None,
                input_stats=saved.stats,   # the image reaches the localizer as it reaches the counter
                label=f"{dataset} / {method} localizer / seed {seed}", where=f"{spec.definition} (localizer)")
    result = fit(task, train, val, train_settings(config, seed, "localizer", spec, split_subset(split_file)), device,
                 run_dir / runs.LOCALIZER_CHECKPOINT, run_dir / runs.LOCALIZER_LOG)
    localizer_state = {k[len("localizer."):]: v for k, v in result.state_dict.items() if k.startswith("localizer.")}
    runs.SavedLocalizer(method=method, best=localizer_state, best_epoch=result.best_epoch,
                        best_val_mae=result.best_val_mae, count_scale=task.count_scale,
                        wall_seconds=time.time() - tic, width=config["train"]["width"]).save(run_dir)
    (run_dir / runs.LOCALIZER_CHECKPOINT).unlink(missing_ok=True)
