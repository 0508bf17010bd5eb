"""The one trainer: every method and the localizer stage are fitted here.

The output layer's bias set from the training data, Adam, a linear warm-up then cosine annealing
with warm restarts stepped per iteration (timm's ``CosineLRScheduler``), an exponential moving
average of the weights (timm's ``ModelEmaV3``) that is validated, selected and saved in place of
the raw weights, flips and 90-degree rotations on the device (drawn once per epoch: the steps need
no host synchronisation), model selection on the validation MAE, a collapse guard, checks that the
run learned more than a constant (``guards``), a resumable checkpoint (written atomically) at the
end of the first epoch ``checkpoint_seconds`` after the last one, a per-epoch CSV log.

``Trainer.fit`` reads as its steps: ``initialise_output`` and ``resume``, then per epoch
``train_epoch`` (of ``train_step``s), ``validate_and_select``, ``guard_collapse``, ``record`` and
``checkpoint``; then ``judge_learning`` and ``result``. A method fitted without gradients
(``training: fit``, see ``fitting``) takes ``fit_once`` instead of the epochs.

Why the moving average: a CPU-track run selects its epoch on a handful of validation images (MBM:
one slide's four crops), and the raw weights of one epoch swing from one to the next; the average
over the last epochs swings less, so the selected epoch says more about the model than about those
images. Its horizon is ``ema_epochs`` (the decay 1 - 1 / (ema_epochs x steps per epoch)); before
that many steps it is the plain average of the steps so far (timm's warm-up with power 1).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..data.prepare import PreparedDataset
from ..errors import TrainingError
from ..inference import autocast, count_images
from ..inputs import InputStats, images_tensor
from ..io import atomic_path, read_back, write_text
from ..metrics import count_metrics
from .batches import Batch, DeviceDataset, make_batch, plan_epoch
from .fitting import FitData
from .guards import LearningChecks, best_constant_mae, did_not_learn_reasons, spread_and_correlation
from .output_init import init_output, mean_target_per_position

log = logging.getLogger(__name__)

#: Within an epoch that lasts longer than this, a progress line every this many seconds. Only the
#: host's clock is read (no synchronisation with the device), so a fast epoch stays quiet and free.
PROGRESS_SECONDS = 30.0

LOG_COLUMNS = ["epoch", "train_loss", "val_mae", "val_rmse", "val_count_ratio", "lr", "seconds"]


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
    warmup_epochs: float = 0.0
    collapse_low: float = 0.05      # validation predicted/true count ratio below which ...
    collapse_high: float = 20.0     # ... or above which a validation counts towards a collapse
    collapse_patience: int = 5      # validations in a row outside the range: the run has collapsed
    did_not_learn_ratio: float = 0.9  # best val MAE at or above this times the best constant's: did not learn
    min_spread: float = 0.1           # std of the selected epoch's val predictions under this x the truth's: idem
    min_correlation: float = 0.3      # their correlation with the true counts under this: idem
    ema_epochs: float = 0.0           # horizon of the weights' moving average in epochs; 0: no average
    # Patches an epoch draws; None: the training patches once each. A run on a training subset
    # sets the whole split's count, so that every size takes the same number of steps.
    epoch_patches: int | None = None


@dataclass
class Task:
    """What to fit: the model, its loss, and how its output map becomes a count."""
    model: nn.Module
    loss: Callable
    stride: int
    count_scale: float = 1.0          # count = sum(output) / count_scale
    sigma: float | None = None        # Gaussian sigma when the loss needs a density map
    density_scale: float = 1.0
    output: dict | None = None        # {layer, activation}: set from the data before training
    fitted: bool = False              # True: the model's fit(FitData) replaces the gradient steps
    floor: bool = False               # a trivial baseline: never judged by the did-not-learn checks
    input_stats: InputStats | None = None  # what inputs are normalised with (ImageNet's when None)
    label: str = "run"                # names the run in messages (dataset / method / seed)
    where: str = ""                   # the definition that declared ``output``, for errors


@dataclass
class Best:
    """The model selected so far: lowest validation MAE, its epoch, weights (on the device) and
    validation predictions per image."""
    mae: float = math.inf
    epoch: int = 0
    state: dict | None = None
    val_pred: list[float] | None = None


@dataclass
class FitResult:
    state_dict: dict             # the selected (best) model, on the CPU
    last_state_dict: dict        # the last epoch's model, on the CPU
    best_epoch: int
    best_val_mae: float
    epochs: int
    history: list[dict] = field(default_factory=list)
    output_bias: float | None = None  # what the output layer's bias was set to
    collapsed: dict | None = None     # {epoch, ratio}: the run was stopped by the collapse guard
    floor_val_mae: float | None = None  # validation MAE of the best constant (the median validation count)
    did_not_learn: bool = False       # the selected epoch failed a check of ``guards``
    did_not_learn_reasons: list[str] = field(default_factory=list)
    val_spread: float | None = None   # std of the selected epoch's validation predictions / the truth's
    val_correlation: float | None = None  # their Pearson correlation with the true counts
    fitted: dict | None = None        # a fitted method's summary (what its fit chose)

    @property
    def status(self) -> str:
        """trained (fitted), collapsed or did not learn (what metadata.json, metrics.json and the tables say)."""
        if self.collapsed:
            return "collapsed"
        if self.did_not_learn:
            return "did not learn"
        return "fitted" if self.fitted is not None else "trained"


def _fingerprint(task: Task, settings: TrainSettings, train: PreparedDataset, val: PreparedDataset) -> str:
    # How often checkpoints are written does not change the run, so it may change on resume.
    run_settings = {k: v for k, v in asdict(settings).items() if k != "checkpoint_seconds"}
    blob = json.dumps({"settings": run_settings, "model": type(task.model).__name__, "stride": task.stride,
                       "sigma": task.sigma, "scale": task.density_scale,
                       "train": train.image_ids.tolist(), "val": val.image_ids.tolist()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def floor_val_mae(val: PreparedDataset) -> float:
    """The validation MAE of the best constant (the median validation count): what a run must beat
    by a margin (``guards``)."""
    return best_constant_mae(val.image_counts.astype(float))


def duration_text(seconds: float) -> str:
    """A duration for a person: seconds, minutes, hours or days."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _write_log(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buf.getvalue())


class Trainer:
    """Fits ``task.model`` on ``train``, selecting on ``val``; resumable from ``checkpoint_path``."""

    def __init__(self, task: Task, train: PreparedDataset, val: PreparedDataset, settings: TrainSettings,
                 device: torch.device, checkpoint_path: Path, log_path: Path):
        self.task, self.settings, self.device = task, settings, device
        self.checkpoint_path, self.log_path = checkpoint_path, log_path
        self.model = task.model.to(device)
        if settings.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.epoch_patches = max(len(train.images), settings.epoch_patches or 0)
        self.steps_per_epoch = math.ceil(self.epoch_patches / settings.batch_size)
        self.optimizer, self.scheduler = (None, None) if task.fitted else self._optimizer()
        self.ema = None   # made by initialise_output, once the model starts where it will train from
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.train_data = (None if task.fitted else
                           DeviceDataset(train, device, task.sigma, task.density_scale, task.input_stats))
        self.val, self.val_images = val, images_tensor(val)
        self.fingerprint = _fingerprint(task, settings, train, val)
        self.start_epoch, self.history, self.best = 1, [], Best()
        self.train, self.output_bias, self.updates = train, None, 0
        self.outside, self.collapsed = 0, None   # validations in a row outside the range; the collapse
        self.floor_val_mae, self.did_not_learn, self.reasons = floor_val_mae(val), False, []
        self.fitted: dict | None = None

    def _optimizer(self):
        from timm.scheduler import CosineLRScheduler
        s = self.settings
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise TrainingError(f"{self.task.where or self.task.label}: the model has no trainable parameters "
                                f"(a method fitted without gradient steps says training: fit in its method.yaml)")
        # The fused kernel updates every parameter in one launch instead of several per step, and
        # keeps the step count on the device (the unfused one reads it on the host per parameter).
        optimizer = torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay,
                                     fused=self.device.type in ("cuda", "cpu"))
        warmup = round(s.warmup_epochs * self.steps_per_epoch)
        # SGDR per iteration after a linear warm-up from lr / warmup: restarts without end
        # (cycle_limit), each period restart_mult times the last.
        scheduler = CosineLRScheduler(optimizer, t_initial=s.restart_period * self.steps_per_epoch,
                                      cycle_mul=s.restart_mult, cycle_limit=10 ** 9, warmup_t=warmup,
                                      warmup_lr_init=s.lr / warmup if warmup else 0.0, warmup_prefix=True,
                                      t_in_epochs=False)
        return optimizer, scheduler

    @property
    def selected_model(self) -> nn.Module:
        """The model that is validated, selected and saved: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    # ------------------------------------------------------------ the steps
    def fit(self) -> FitResult:
        if self.task.fitted:
            return self.fit_once()
        self.initialise_output()
        self.resume()
        last_checkpoint = time.perf_counter()
        for epoch in range(self.start_epoch, self.settings.epochs + 1):
            tic = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            val_metrics = self.validate_and_select(epoch)
            self.guard_collapse(epoch, val_metrics)
            self.record(epoch, train_loss, val_metrics, time.perf_counter() - tic)
            if self.collapsed:
                break
            if (epoch < self.settings.epochs
                    and time.perf_counter() - last_checkpoint >= self.settings.checkpoint_seconds):
                self.checkpoint(epoch)
                last_checkpoint = time.perf_counter()
        self.judge_learning()
        return self.result()

    def fit_once(self) -> FitResult:
        """A method fitted without gradients: its ``fit`` on the whole training split, then one
        validation (see ``fitting``)."""
        tic = time.perf_counter()
        fit = getattr(self.model, "fit", None)
        if not callable(fit):
            raise TrainingError(f"{self.task.where or self.task.label}: training: fit, but the model "
                                f"{type(self.model).__name__} has no fit(data) method (methods/README.md)")
        self.model.eval()
        summary = fit(FitData.of(self.train, self.task.input_stats or InputStats.imagenet()))
        self.fitted = dict(summary or {})
        log.info("%s: fitted on %d training images (%d patches): %s", self.task.label, len(self.train.image_ids),
                 len(self.train.images), ", ".join(f"{k} {v}" for k, v in self.fitted.items()) or "-")
        val_metrics = self.validate_and_select(0, force=True)
        self.record(0, float("nan"), val_metrics, time.perf_counter() - tic)
        self.judge_learning()
        return self.result()

    def initialise_output(self) -> None:
        """Start the output at the training split's mean target per position (see output_init), and
        the moving average of the weights there."""
        if self.task.output is not None:
            value = mean_target_per_position(self.train, self.task.stride, self.task.density_scale)
            self.output_bias = init_output(self.model, self.task.output, value, self.task.where or self.task.label)
            log.info("%s: output layer %s starts at %.4g per position (bias %.4g)", self.task.label,
                     self.task.output["layer"], value, self.output_bias)
        if self.settings.ema_epochs > 0:
            from timm.utils import ModelEmaV3
            horizon = self.settings.ema_epochs * self.steps_per_epoch
            self.ema = ModelEmaV3(self.model, decay=1.0 - 1.0 / horizon, use_warmup=True, warmup_power=1.0)

    def resume(self) -> None:
        """Continue from the checkpoint when it holds a run with the same settings and data."""
        if not self.checkpoint_path.is_file():
            return
        with read_back(self.checkpoint_path, "the resume checkpoint of an interrupted training"):
            ckpt = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        if ckpt.get("fingerprint") != self.fingerprint:
            log.warning("%s was written with other settings or data; starting afresh", self.checkpoint_path)
            return
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None:
            self.ema.module.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.updates = ckpt["updates"]
        self.scheduler.step_update(self.updates)
        self.generator.set_state(ckpt["generator"])
        self.start_epoch, self.history, self.best = ckpt["epoch"] + 1, ckpt["history"], Best(**ckpt["best"])
        self.outside = ckpt.get("outside", 0)
        log.info("resuming from %s after epoch %d", self.checkpoint_path, ckpt["epoch"])

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training patches; the mean loss. A NaN or infinite loss stops the run."""
        s, model = self.settings, self.model
        model.train()
        plan = plan_epoch(self.train_data, s.batch_size, self.generator, s.crop_size, self.epoch_patches)
        loss_sum = torch.zeros((), device=self.device)
        first_bad = torch.full((), -1, device=self.device, dtype=torch.long)
        start = last_report = time.perf_counter()
        for step in range(self.steps_per_epoch):
            now = time.perf_counter()
            if step and now - last_report >= PROGRESS_SECONDS:
                self.progress(epoch, step, now - start)
                last_report = now
            batch = make_batch(self.train_data, plan, step, self.task.stride, s.channels_last)
            loss, _ = self.train_step(batch)
            # Checked at the end of the epoch, to avoid a host sync per step.
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step + 1, first_bad)
            loss_sum += loss
        bad_step = int(first_bad)
        if bad_step >= 0:
            saved = (f"the last good checkpoint is {self.checkpoint_path}" if self.checkpoint_path.is_file()
                     else "no checkpoint was written before it")
            raise TrainingError(f"loss became NaN or infinite at epoch {epoch}, step "
                                f"{bad_step} of {self.steps_per_epoch}; {saved}")
        return float(loss_sum) / self.steps_per_epoch

    def progress(self, epoch: int, steps_done: int, seconds: float) -> None:
        """The progress line within a long epoch: steps done, time per step, time left for the run
        (training steps only: the per-epoch validation is not counted)."""
        per_step = seconds / steps_done
        steps_left = (self.steps_per_epoch - steps_done) + (self.settings.epochs - epoch) * self.steps_per_epoch
        log.info("%s: epoch %d/%d, step %d/%d, %.2f s per step, about %s left for the run", self.task.label, epoch,
                 self.settings.epochs, steps_done, self.steps_per_epoch, per_step, duration_text(steps_left * per_step))

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step (and the moving average's); the loss and the output (both detached,
        on the device)."""
        with autocast(self.device, self.settings.amp):
            pred = self.model(batch.images)
        loss = self.task.loss(pred, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        self.scheduler.step_update(self.updates)
        if self.ema is not None:
            self.ema.update(self.model, step=self.updates)
        return loss.detach(), pred.detach()

    def validate_and_select(self, epoch: int, force: bool = False) -> dict | None:
        """Validation metrics on the epochs that validate (else None); keeps the best model."""
        s = self.settings
        if not force and epoch % s.val_every != 0 and epoch != s.epochs:
            return None
        model = self.selected_model
        pred = count_images(model, self.val, self.device, self.task.count_scale, images=self.val_images,
                            amp=s.amp, channels_last=s.channels_last, stats=self.task.input_stats)
        true = self.val.image_counts.astype(float)
        metrics = count_metrics(true, pred)
        metrics["count_ratio"] = float(pred.sum() / true.sum()) if true.sum() > 0 else float("nan")
        if metrics["mae"] < self.best.mae:
            # Kept on the device: a copy to the host would stall the next epoch's launches.
            self.best = Best(metrics["mae"], epoch, {k: v.detach().clone() for k, v in model.state_dict().items()},
                             [float(v) for v in pred])
        return metrics

    def guard_collapse(self, epoch: int, val_metrics: dict | None) -> None:
        """Mark the run collapsed when the validation count ratio stays out of range."""
        if val_metrics is None or math.isnan(val_metrics["count_ratio"]):
            return
        s, ratio = self.settings, val_metrics["count_ratio"]
        self.outside = self.outside + 1 if not s.collapse_low <= ratio <= s.collapse_high else 0
        if self.outside >= s.collapse_patience:
            self.collapsed = {"epoch": epoch, "ratio": ratio}
            log.error("%s: collapsed at epoch %d: validation predictions are %.3g times the true counts for %d "
                      "validations in a row (accepted: %g to %g); training stopped, the run is marked collapsed",
                      self.task.label, epoch, ratio, self.outside, s.collapse_low, s.collapse_high)

    def judge_learning(self) -> None:
        """Mark a run whose selected epoch is no better than a constant (``guards``): beaten by the
        best constant, one number for every image, or predictions that do not follow the truth. A
        collapsed run is already marked; a floor is a constant by design."""
        if self.collapsed or self.task.floor or self.best.val_pred is None:
            return
        s = self.settings
        checks = LearningChecks(s.did_not_learn_ratio, s.min_spread, s.min_correlation)
        self.reasons = did_not_learn_reasons(np.asarray(self.best.val_pred), self.val.image_counts.astype(float),
                                             self.best.mae, checks)
        if self.reasons:
            self.did_not_learn = True
            when, advice = ((f"fitted", "its fit found nothing better than a constant on these images") if self.task.fitted
                            else (f"at its selected epoch {self.best.epoch}", "look at its learning curve; another "
                                  "learning rate (train.lr, or the method's tracks entry) often helps"))
            log.error("%s: did not learn: %s, on the %d validation images, %s; the run is marked 'did not learn' and no "
                      "table shows its number (%s)", self.task.label, when, len(self.val.image_ids),
                      "; ".join(self.reasons), advice)

    def record(self, epoch: int, train_loss: float, val_metrics: dict | None, seconds: float) -> None:
        """Append the epoch to the history, log it and rewrite the CSV log (a fitted method's one row
        has no loss and no learning rate)."""
        fitted = self.task.fitted
        row = {"epoch": epoch, "train_loss": "" if fitted else train_loss,
               "val_mae": val_metrics["mae"] if val_metrics else "",
               "val_rmse": val_metrics["rmse"] if val_metrics else "",
               "val_count_ratio": val_metrics["count_ratio"] if val_metrics else "",
               "lr": "" if fitted else self.optimizer.param_groups[0]["lr"], "seconds": seconds}
        self.history.append(row)
        if fitted:
            log.info("fit: val MAE %.3f  %.1fs", self.best.mae, seconds)
        else:
            left = (self.settings.epochs - epoch) * seconds
            log.info("epoch %d/%d  loss %.4g  val MAE %s  (best %.3f at %d)  lr %.2e  %.1fs%s", epoch,
                     self.settings.epochs, train_loss, f"{row['val_mae']:.3f}" if val_metrics else "-",
                     self.best.mae, self.best.epoch, row["lr"], seconds,
                     f"  (about {duration_text(left)} left)" if left > 0 else "")
        _write_log(self.log_path, self.history)

    def checkpoint(self, epoch: int) -> None:
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save({"fingerprint": self.fingerprint, "epoch": epoch, "model": self.model.state_dict(),
                        "ema": self.ema.module.state_dict() if self.ema is not None else None,
                        "optimizer": self.optimizer.state_dict(), "updates": self.updates,
                        "generator": self.generator.get_state(), "history": self.history,
                        "best": asdict(self.best), "outside": self.outside}, tmp)

    def result(self) -> FitResult:
        if self.best.state is None:  # cannot happen: the last epoch always validates
            raise TrainingError("no validation was run; check train.val_every")
        spread, correlation = (spread_and_correlation(np.asarray(self.best.val_pred), self.val.image_counts)
                               if self.best.val_pred is not None else (None, None))
        return FitResult(
            state_dict={k: v.cpu() for k, v in self.best.state.items()},
            last_state_dict={k: v.detach().cpu().clone() for k, v in self.selected_model.state_dict().items()},
            best_epoch=self.best.epoch, best_val_mae=self.best.mae, epochs=0 if self.task.fitted else self.settings.epochs,
            history=self.history, output_bias=self.output_bias, collapsed=self.collapsed,
            floor_val_mae=self.floor_val_mae, did_not_learn=self.did_not_learn,
            did_not_learn_reasons=list(self.reasons), val_spread=_finite(spread), val_correlation=_finite(correlation),
            fitted=self.fitted)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def fit(task: Task, train: PreparedDataset, val: PreparedDataset, settings: TrainSettings, device: torch.device,
        checkpoint_path: Path, log_path: Path) -> FitResult:
    """Train, resuming from ``checkpoint_path`` when it holds a run with the same settings."""
    return Trainer(task, train, val, settings, device, checkpoint_path, log_path).fit()
