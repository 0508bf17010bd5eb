"""The first steps of training: does a method collapse or blow up before it has learned?

Runs the shared trainer's own steps (``Trainer.train_step``) for the first K steps and records,
per step, the loss and the ratio of predicted to true count of the step's batch. Used by
``benchmarks/first_steps.py`` (every method, every dataset, full protocol) and by the test suite
(DCL on MBM, the case that once collapsed within four steps).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import pandas as pd
import torch

from ..data.prepare import PreparedDataset
from ..device import seed_everything
from ..inputs import stats_for
from ..methods import build_model, get_method
from ..training.batches import make_batch, plan_epoch
from ..training.trainer import Trainer
from .common import train_settings
from .train import counter_task

log = logging.getLogger(__name__)

#: Predicted/true count ratio a healthy run keeps once past its first steps.
HEALTHY = (0.2, 5.0)


def first_steps(config: dict, dataset: str, method: str, train: PreparedDataset, val: PreparedDataset, steps: int,
                seed: int, setting: str = "default") -> list[dict]:
    """Per step: loss, mean predicted and true count of the batch (the output before the step's
    update), their ratio and the learning rate; the shared trainer's steps, on the CPU. A method
    fitted without gradients has no steps: no rows."""
    seed_everything(seed, False)
    spec = get_method(method)
    if spec.fitted:
        log.info("%s: fitted without gradient steps (training: fit): no first steps to record", method)
        return []
    settings = train_settings(config, seed, spec=spec)
    model = build_model(spec, "none", width=config["train"]["width"])
    task = counter_task(config, dataset, spec, model, seed, stats_for(model.init_description, train))
    # No checkpoint or log is ever written: only train_step is called, never fit.
    trainer = Trainer(task, train, val, settings, torch.device("cpu"), Path(os.devnull), Path(os.devnull))
    trainer.initialise_output()
    rows, step, tic = [], 0, time.perf_counter()
    while step < steps:
        plan = plan_epoch(trainer.train_data, settings.batch_size, trainer.generator, settings.crop_size)
        for i in range(trainer.steps_per_epoch):
            if step == steps:
                break
            batch = make_batch(trainer.train_data, plan, i, task.stride, settings.channels_last)
            lr = trainer.optimizer.param_groups[0]["lr"]
            loss, pred = trainer.train_step(batch)
            predicted = float(pred.float().sum()) / task.count_scale / len(batch.counts)
            true = float(batch.counts.sum()) / len(batch.counts)
            step += 1
            rows.append({"dataset": dataset, "method": method, "setting": setting, "step": step,
                         "loss": float(loss), "pred_count": predicted, "true_count": true,
                         "ratio": predicted / true if true > 0 else math.nan, "lr": lr,
                         "seconds": time.perf_counter() - tic})
            log.info("%s %s %s step %d/%d: loss %.4g, predicted %.1f, true %.1f per patch", dataset, method, setting,
                     step, steps, float(loss), predicted, true)
    return rows


def summary(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """Per dataset, method and setting: the ratio at step 1, its range from step ``start`` on, and
    the verdict (healthy when that range lies inside HEALTHY)."""
    def one(group: pd.DataFrame) -> pd.Series:
        later = group[group["step"] >= start]["ratio"]
        healthy = bool(later.between(*HEALTHY).all()) if len(later) else False
        return pd.Series({"steps": int(group["step"].max()), "ratio_step1": group["ratio"].iloc[0],
                          f"min_ratio_from_{start}": later.min(), f"max_ratio_from_{start}": later.max(),
                          "seconds_per_step": group["seconds"].iloc[-1] / len(group),
                          "verdict": "healthy" if healthy else "COLLAPSED or unstable"})
    return frame.groupby(["dataset", "method", "setting"], sort=False).apply(one, include_groups=False).reset_index()
