"""What the training and evaluation stages share: a split's data, the trainer's settings, the device."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.prepare import PreparedDataset
from ..data.splits import check_split
from ..device import resolve_device, seed_everything
from ..io import read_json
from ..methods import MethodSpec
from ..training.trainer import TrainSettings


def _split_parts(prepared: Path, split_file: Path, limits: dict[str, int | None], *parts: str) -> list[PreparedDataset]:
    """The named parts of a split, read once and checked against the prepared data (``check_split``)."""
    data = PreparedDataset.load(prepared)
    split = read_json(split_file, "a split file (the split stage's seed<k>.json)")
    check_split(split, data.image_ids.tolist(), data.image_groups.tolist(), split_file)
    return [data.subset(split[part][:limits[part]] if limits.get(part) else split[part]) for part in parts]


def load_split(prepared: Path, split_file: Path, part: str, limit: int | None) -> PreparedDataset:
    """One part of a split (at most ``limit`` images)."""
    return _split_parts(prepared, split_file, {part: limit}, part)[0]


def load_splits(config: dict, prepared: Path, split_file: Path, *parts: str) -> list[PreparedDataset]:
    """The named parts of a split (train, val, test), each cut to ``train.max_images``; the prepared
    file and the split are read and checked once for all of them."""
    return _split_parts(prepared, split_file, config["train"]["max_images"], *parts)


def inference_model(model: torch.nn.Module, device: torch.device, config: dict) -> torch.nn.Module:
    """A trained model ready for the evaluate and localize stages (device, memory format)."""
    from ..inference import for_inference
    return for_inference(model, device, config["train"]["channels_last"])


def inference_options(config: dict, stats=None) -> dict:
    """Keyword arguments of ``inference.patch_outputs`` from the config and the run's input
    statistics (``SavedCounter.stats``)."""
    return {"amp": config["train"]["amp"], "channels_last": config["train"]["channels_last"], "stats": stats}


def learning_rate(config: dict, spec: MethodSpec | None, stage: str = "counter") -> float:
    """Adam's learning rate of a method's counter or localizer: the method's own for the config's
    track (its ``tracks`` entry, chosen on validation), else the config's."""
    own = spec.track_settings(config["track"]) if spec else {}
    if stage == "localizer":
        return own.get("localizer_lr", config["localizer"]["lr"])
    return own.get("lr", config["train"]["lr"])


def split_subset(split_file: Path) -> dict | None:
    """A training subset's record (size, repeat, of, epoch_patches: see ``subset_stage``); None for
    a seed's whole split."""
    return read_json(split_file, "a split file (the split stage's seed<k>.json)").get("subset")


def train_settings(config: dict, seed: int, stage: str = "counter", spec: MethodSpec | None = None,
                   subset: dict | None = None) -> TrainSettings:
    """The trainer's settings from ``train`` (the localizer stage overrides some from ``localizer``;
    the method's ``tracks`` entry its learning rate; a training ``subset`` the patches per epoch)."""
    t = config["train"]
    overrides = config["localizer"] if stage == "localizer" else {}
    own = spec.track_settings(config["track"]) if spec else {}
    epochs = overrides.get("epochs", t["epochs"])
    restart_period = overrides.get("restart_period", t["restart_period"])
    if "epochs" in own and stage == "counter":  # the method's own length on this track: one SGDR period
        epochs = restart_period = own["epochs"]
    return TrainSettings(
        epochs=epochs, batch_size=t["batch_size"], lr=learning_rate(config, spec, stage),
        weight_decay=t["weight_decay"], restart_period=restart_period,
        restart_mult=t["restart_mult"], amp=t["amp"], channels_last=t["channels_last"],
        crop_size=own.get("crop_size", t["crop_size"]),
        val_every=t["val_every"], checkpoint_seconds=60.0 * t["checkpoint_minutes"], seed=seed,
        warmup_epochs=overrides.get("warmup_epochs", t["warmup_epochs"]), collapse_low=t["collapse"]["low"],
        collapse_high=t["collapse"]["high"], collapse_patience=t["collapse"]["patience"],
        did_not_learn_ratio=t["did_not_learn_ratio"], min_spread=t["did_not_learn_spread"],
        min_correlation=t["did_not_learn_correlation"], ema_epochs=overrides.get("ema_epochs", t["ema_epochs"]),
        epoch_patches=subset["epoch_patches"] if subset else None)


def setup(config: dict, seed: int, threads: int | None, training: bool = True) -> torch.device:
    """Threads (those given, which a workflow job resolves from the method's track and the config,
    else train.threads), seeds and the device for a job (``training``: autotune cuDNN, see seed_everything)."""
    t = config["train"]
    if threads or t["threads"]:
        torch.set_num_threads(threads or t["threads"])
    seed_everything(seed, t["deterministic"], training)
    return resolve_device(t["device"])
