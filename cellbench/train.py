"""The one trainer: every method and the localizer stage are fitted here.

Adam, cosine annealing with warm restarts stepped per iteration, flips and 90-degree rotations
on the device (drawn once per epoch: the steps need no host synchronisation), model selection
on the validation MAE, a resumable checkpoint (written atomically) at the end of the first epoch
``checkpoint_seconds`` after the last one, a per-epoch CSV log.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .data.prepare import PreparedDataset
from .errors import TrainingError
from .inference import autocast, image_counts, patch_counts
from .io import atomic_path, write_text
from .metrics import count_metrics
from .tensors import DeviceDataset, images_tensor, make_batch, plan_epoch

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    restart_period: int
    restart_mult: int
    amp: bool
    channels_last: bool
    crop_size: int | None
    val_every: int
    checkpoint_seconds: float   # 0: after every epoch; on a GPU a VGG-19 checkpoint costs more than an epoch
    seed: int


@dataclass
class Task:
    """What to fit: the model, its loss, and how its output map becomes a count."""
    model: nn.Module
    loss: Callable
    stride: int
    count_scale: float = 1.0          # count = sum(output) / count_scale
    sigma: float | None = None        # Gaussian sigma when the loss needs a density map
    density_scale: float = 1.0


def _fingerprint(task: Task, settings: TrainSettings, train: PreparedDataset, val: PreparedDataset) -> str:
    # How often checkpoints are written does not change the run, so it may change on resume.
    run_settings = {k: v for k, v in asdict(settings).items() if k != "checkpoint_seconds"}
    blob = json.dumps({"settings": run_settings, "model": type(task.model).__name__, "stride": task.stride,
                       "sigma": task.sigma, "scale": task.density_scale,
                       "train": train.image_ids.tolist(), "val": val.image_ids.tolist()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def evaluate_counts(model: nn.Module, data: PreparedDataset, images: torch.Tensor, device: torch.device,
                    count_scale: float, amp: bool, channels_last: bool) -> np.ndarray:
    per_patch = patch_counts(model, images, device, count_scale, amp=amp, channels_last=channels_last)
    return image_counts(per_patch, data.patch_image, len(data.image_ids))


def _write_log(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["epoch", "train_loss", "val_mae", "val_rmse", "lr", "seconds"])
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buf.getvalue())


def fit(task: Task, train: PreparedDataset, val: PreparedDataset, settings: TrainSettings, device: torch.device,
        checkpoint_path: Path, log_path: Path) -> dict:
    """Train, resuming from ``checkpoint_path`` when it holds a run with the same settings.

    Returns the best model's state dict (on the CPU) and the run summary.
    """
    model = task.model.to(device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    # The fused CUDA kernel updates every parameter in one launch instead of several per step.
    optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay,
                                 fused=device.type == "cuda")
    steps_per_epoch = math.ceil(len(train.images) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=settings.restart_period * steps_per_epoch, T_mult=settings.restart_mult)
    generator = torch.Generator().manual_seed(settings.seed)
    train_ds = DeviceDataset(train, device, task.sigma, task.density_scale)
    val_images = images_tensor(val)
    val_true = val.image_counts.astype(float)
    fingerprint = _fingerprint(task, settings, train, val)

    start_epoch, history = 1, []
    best = {"mae": math.inf, "epoch": 0, "state": None}
    if checkpoint_path.is_file():
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if ckpt.get("fingerprint") == fingerprint:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            generator.set_state(ckpt["generator"])
            start_epoch, history, best = ckpt["epoch"] + 1, ckpt["history"], ckpt["best"]
            log.info("resuming from %s after epoch %d", checkpoint_path, ckpt["epoch"])
        else:
            log.warning("%s was written with other settings or data; starting afresh", checkpoint_path)

    last_checkpoint = time.perf_counter()
    for epoch in range(start_epoch, settings.epochs + 1):
        tic = time.perf_counter()
        model.train()
        plan = plan_epoch(train_ds, settings.batch_size, generator, settings.crop_size)
        loss_sum = torch.zeros((), device=device)
        first_bad = torch.full((), -1, device=device, dtype=torch.long)
        for step in range(steps_per_epoch):
            batch = make_batch(train_ds, plan, step, task.stride, settings.channels_last)
            with autocast(device, settings.amp):
                pred = model(batch.images)
            loss = task.loss(pred, batch)
            # Checked at the end of the epoch, to avoid a host sync per step.
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step + 1, first_bad)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach()
        bad_step = int(first_bad)
        if bad_step >= 0:
            saved = (f"the last good checkpoint is {checkpoint_path}" if checkpoint_path.is_file()
                     else "no checkpoint was written before it")
            raise TrainingError(f"loss became NaN or infinite at epoch {epoch}, step "
                                f"{bad_step} of {steps_per_epoch}; {saved}")
        row = {"epoch": epoch, "train_loss": float(loss_sum) / steps_per_epoch, "val_mae": "", "val_rmse": "",
               "lr": optimizer.param_groups[0]["lr"], "seconds": 0.0}
        if epoch % settings.val_every == 0 or epoch == settings.epochs:
            pred = evaluate_counts(model, val, val_images, device, task.count_scale, settings.amp, settings.channels_last)
            metrics = count_metrics(val_true, pred)
            row.update(val_mae=metrics["mae"], val_rmse=metrics["rmse"])
            if metrics["mae"] < best["mae"]:
                # Kept on the device: a copy to the host would stall the next epoch's launches.
                best = {"mae": metrics["mae"], "epoch": epoch,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        row["seconds"] = time.perf_counter() - tic
        history.append(row)
        log.info("epoch %d/%d  loss %.4g  val MAE %s  (best %.3f at %d)  lr %.2e  %.1fs", epoch, settings.epochs,
                 row["train_loss"], f"{row['val_mae']:.3f}" if row["val_mae"] != "" else "-", best["mae"],
                 best["epoch"], row["lr"], row["seconds"])
        _write_log(log_path, history)
        if epoch < settings.epochs and time.perf_counter() - last_checkpoint >= settings.checkpoint_seconds:
            with atomic_path(checkpoint_path) as tmp:
                torch.save({"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "generator": generator.get_state(), "history": history, "best": best}, tmp)
            last_checkpoint = time.perf_counter()
    if best["state"] is None:  # no validation ran (cannot happen: the last epoch always validates)
        raise TrainingError("no validation was run; check train.val_every")
    last_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    best_state = {k: v.cpu() for k, v in best["state"].items()}
    return {"state_dict": best_state, "last_state_dict": last_state, "best_epoch": best["epoch"],
            "best_val_mae": best["mae"],
            "epochs": settings.epochs, "history": history}
