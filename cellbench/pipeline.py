"""The workflow's stages as functions: each reads its inputs, writes its outputs atomically.

The Snakemake rules call these through the command line (``python -m cellbench ...``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import torch

from .config import data_mirror
from .data.fetch import fetch, layout
from .data.prepare import PreparedDataset, prepare
from .data.readers import get_reader
from .data.registry import load_dataset
from .data.splits import make_split
from .data.stats import dataset_stats
from .device import resolve_device, seed_everything
from .errors import DataError
from .inference import image_counts, patch_counts
from .io import atomic_path, read_json, write_json, write_text
from .localizer import CounterConditionedLocalizer
from .losses import LOSSES
from .methods import build_localizer, build_model, describe, get_method, resolve_loss
from .metrics import count_metrics
from .provenance import environment
from .tensors import images_tensor
from .train import Task, TrainSettings, fit
from . import project_root

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- data
def fetch_stage(config: dict, dataset: str, out: Path) -> None:
    spec = load_dataset(dataset)
    download_dir = Path(config["data"]["download_dir"])
    root, hashes = fetch(spec, data_mirror(config), download_dir if download_dir.is_absolute()
                         else project_root() / download_dir)
    # The layout (which file pairs with which) is recorded too: DCC's is documented nowhere else.
    write_json(out, {"dataset": dataset, "root": str(root), "files": len(hashes),
                     "manifest": "published" if spec.manifest() is not None else "recorded", "sha256": hashes,
                     "layout": layout(spec, root)})


def prepare_stage(dataset: str, verified: Path, out: Path) -> None:
    spec = load_dataset(dataset)
    root = Path(read_json(verified)["root"])
    samples = get_reader(spec.reader)(root / spec.folder)
    if not samples:
        raise DataError(f"{spec.name}: no images found under {root / spec.folder}")
    log.info("%s: preparing %d images", dataset, len(samples))
    prepare(samples, spec.preprocess).save(out)


def split_stage(config: dict, dataset: str, seed: int, prepared: Path, out: Path) -> None:
    data = PreparedDataset.load(prepared)
    ratios = {k: config["split"][k] for k in ("train", "test", "val")}
    grouped = config["split"]["grouped"]
    split = make_split(data.image_ids.tolist(), data.image_groups.tolist(), ratios, seed, grouped)
    write_json(out, {"dataset": dataset, "seed": seed, "ratios": ratios, "grouped": grouped,
                     "sizes": {k: len(v) for k, v in split.items()}, **split})


def stats_stage(dataset: str, prepared: Path, out: Path) -> None:
    write_json(out, dataset_stats(load_dataset(dataset), PreparedDataset.load(prepared)))


# ---------------------------------------------------------------- training
def load_split(prepared: Path, split_file: Path, part: str, limit: int | None) -> PreparedDataset:
    ids = read_json(split_file)[part]
    return PreparedDataset.load(prepared).subset(ids[:limit] if limit else ids)


def _settings(config: dict, seed: int, stage: str = "counter") -> TrainSettings:
    t = config["train"]
    overrides = config["localizer"] if stage == "localizer" else {}
    return TrainSettings(
        epochs=overrides.get("epochs", t["epochs"]), batch_size=t["batch_size"], lr=overrides.get("lr", t["lr"]),
        weight_decay=t["weight_decay"], restart_period=overrides.get("restart_period", t["restart_period"]),
        restart_mult=t["restart_mult"], amp=t["amp"], channels_last=t["channels_last"], crop_size=t["crop_size"],
        val_every=t["val_every"], checkpoint_seconds=60.0 * t["checkpoint_minutes"], seed=seed)


def _setup(config: dict, seed: int, threads: int | None) -> torch.device:
    t = config["train"]
    if t["threads"] or threads:
        torch.set_num_threads(t["threads"] or threads)
    seed_everything(seed, t["deterministic"])
    return resolve_device(t["device"])


def train_stage(config: dict, dataset: str, method: str, seed: int, prepared: Path, split_file: Path,
                out_dir: Path, threads: int | None = None) -> None:
    """Fit a method's model; writes counter.pt, counter_log.csv and metadata.json in ``out_dir``."""
    tic = time.time()
    device = _setup(config, seed, threads)
    spec = get_method(method)
    limits = config["train"]["max_images"]
    train = load_split(prepared, split_file, "train", limits["train"])
    val = load_split(prepared, split_file, "val", limits["val"])
    model = build_model(spec, config["train"]["pretrained"])
    target = config["targets"][dataset]
    density = spec.target == "density"
    task = Task(model=model, loss=resolve_loss(spec), stride=spec.stride,
                count_scale=target["density_scale"] if density else 1.0,
                sigma=target["sigma"] if density else None, density_scale=target["density_scale"] if density else 1.0)
    settings = _settings(config, seed)
    log.info("%s / %s / seed %d: %d train and %d val images (%d/%d patches) on %s", dataset, method, seed,
             len(train.image_ids), len(val.image_ids), len(train.images), len(val.images), device)
    result = fit(task, train, val, settings, device, out_dir / "counter.ckpt", out_dir / "counter_log.csv")
    with atomic_path(out_dir / "counter.pt") as tmp:
        torch.save({"method": method, "best": result["state_dict"], "last": result["last_state_dict"],
                    "best_epoch": result["best_epoch"], "best_val_mae": result["best_val_mae"],
                    "count_scale": task.count_scale}, tmp)
    write_json(out_dir / "metadata.json", {
        "dataset": dataset, "method": describe(spec), "seed": seed, "config": config,
        "initialisation": getattr(model, "init_description", "not reported by the model"),
        "pretrained": config["train"]["pretrained"], "train_images": len(train.image_ids),
        "val_images": len(val.image_ids), "best_epoch": result["best_epoch"],
        "best_val_mae": result["best_val_mae"], "wall_seconds": time.time() - tic,
        "environment": environment(device)})
    (out_dir / "counter.ckpt").unlink(missing_ok=True)


def read_counter(run_dir: Path) -> dict:
    """The saved counter of a run: its best and last weights, best epoch and count scale."""
    return torch.load(run_dir / "counter.pt", map_location="cpu", weights_only=False)


def counter_model(spec, saved: dict, which: str = "best") -> torch.nn.Module:
    model = build_model(spec, "none")
    model.load_state_dict(saved[which])
    return model


def localizer_stage(config: dict, dataset: str, method: str, seed: int, prepared: Path, split_file: Path,
                    run_dir: Path, threads: int | None = None) -> None:
    """Fit the localizer with the counter frozen; writes localizer.pt and localizer_log.csv."""
    tic = time.time()
    device = _setup(config, seed, threads)
    spec = get_method(method)
    counter = counter_model(spec, read_counter(run_dir))
    target = config["targets"][dataset]
    model = CounterConditionedLocalizer(counter, build_localizer(spec), spec.stride, target["density_scale"])
    limits = config["train"]["max_images"]
    train = load_split(prepared, split_file, "train", limits["train"])
    val = load_split(prepared, split_file, "val", limits["val"])
    task = Task(model=model, loss=LOSSES["density_mse"], stride=1, count_scale=target["density_scale"],
                sigma=target["sigma"], density_scale=target["density_scale"])
    result = fit(task, train, val, _settings(config, seed, "localizer"), device, run_dir / "localizer.ckpt",
                 run_dir / "localizer_log.csv")
    localizer_state = {k[len("localizer."):]: v for k, v in result["state_dict"].items() if k.startswith("localizer.")}
    with atomic_path(run_dir / "localizer.pt") as tmp:
        torch.save({"method": method, "best": localizer_state, "best_epoch": result["best_epoch"],
                    "best_val_mae": result["best_val_mae"], "count_scale": task.count_scale,
                    "wall_seconds": time.time() - tic}, tmp)
    (run_dir / "localizer.ckpt").unlink(missing_ok=True)


# ---------------------------------------------------------------- evaluation
def evaluate_stage(config: dict, dataset: str, method: str, seed: int, prepared: Path, split_file: Path,
                   run_dir: Path, threads: int | None = None) -> None:
    """Count every test image; writes predictions.csv and metrics.json."""
    device = _setup(config, seed, threads)
    spec = get_method(method)
    test = load_split(prepared, split_file, "test", config["train"]["max_images"]["test"])
    images = images_tensor(test)
    amp, cl = config["train"]["amp"], config["train"]["channels_last"]
    n = len(test.image_ids)
    columns = {"image_id": test.image_ids, "true_count": test.image_counts}
    saved = read_counter(run_dir)
    scale = saved["count_scale"]
    models = {}
    for which in ("best", "last"):
        models[which] = counter_model(spec, saved, which).to(device)
        tic = time.perf_counter()
        columns[f"pred_count{'' if which == 'best' else '_last_epoch'}"] = image_counts(
            patch_counts(models[which], images, device, scale, amp=amp, channels_last=cl), test.patch_image, n)
        if which == "best":
            seconds = time.perf_counter() - tic
    localizer_metrics = None
    if spec.localizer:
        target = config["targets"][dataset]
        localizer = build_localizer(spec)
        loc = torch.load(run_dir / "localizer.pt", map_location="cpu", weights_only=False)
        localizer.load_state_dict(loc["best"])
        wrapped = CounterConditionedLocalizer(models["best"], localizer, spec.stride, target["density_scale"]).to(device)
        columns["localizer_count"] = image_counts(
            patch_counts(wrapped, images, device, loc["count_scale"], amp=amp, channels_last=cl), test.patch_image, n)
        localizer_metrics = count_metrics(test.image_counts, columns["localizer_count"])
    frame = pd.DataFrame(columns)
    frame["abs_error"] = (frame["pred_count"] - frame["true_count"]).abs()
    with atomic_path(run_dir / "predictions.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    metrics = count_metrics(frame["true_count"], frame["pred_count"])
    metrics.update({
        "dataset": dataset, "method": method, "seed": seed,
        "note": "rmse is what the DCL paper and this literature call 'MSE'; mse is the plain mean squared error",
        "best_epoch": saved["best_epoch"], "best_val_mae": saved["best_val_mae"],
        "last_epoch": count_metrics(frame["true_count"], frame["pred_count_last_epoch"]),
        "localizer": localizer_metrics,
        "inference_images_per_second": len(images) / seconds if seconds > 0 else None,
        "device": str(device),
    })
    write_json(run_dir / "metrics.json", metrics)
