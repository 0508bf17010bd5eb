"""What the training and evaluation stages share: a split's data, the trainer's settings, the device."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.prepare import PreparedDataset
from ..device import resolve_device, seed_everything
from ..io import read_json
from ..training.trainer import TrainSettings


def load_split(prepared: Path, split_file: Path, part: str, limit: int | None) -> PreparedDataset:
    ids = read_json(split_file)[part]
    return PreparedDataset.load(prepared).subset(ids[:limit] if limit else ids)


def load_splits(config: dict, prepared: Path, split_file: Path, *parts: str) -> list[PreparedDataset]:
    """The named parts of a split (train, val, test), each cut to ``train.max_images``."""
    limits = config["train"]["max_images"]
    return [load_split(prepared, split_file, part, limits[part]) for part in parts]


def inference_options(config: dict) -> dict:
    """Keyword arguments of ``inference.patch_outputs`` from the config."""
    return {"amp": config["train"]["amp"], "channels_last": config["train"]["channels_last"]}


def train_settings(config: dict, seed: int, stage: str = "counter") -> TrainSettings:
    """The trainer's settings from ``train`` (the localizer stage overrides some from ``localizer``)."""
    t = config["train"]
    overrides = config["localizer"] if stage == "localizer" else {}
    return TrainSettings(
        epochs=overrides.get("epochs", t["epochs"]), batch_size=t["batch_size"], lr=overrides.get("lr", t["lr"]),
        weight_decay=t["weight_decay"], restart_period=overrides.get("restart_period", t["restart_period"]),
        restart_mult=t["restart_mult"], amp=t["amp"], channels_last=t["channels_last"], crop_size=t["crop_size"],
        val_every=t["val_every"], checkpoint_seconds=60.0 * t["checkpoint_minutes"], seed=seed,
        warmup_epochs=overrides.get("warmup_epochs", t["warmup_epochs"]), collapse_low=t["collapse"]["low"],
        collapse_high=t["collapse"]["high"], collapse_patience=t["collapse"]["patience"])


def setup(config: dict, seed: int, threads: int | None) -> torch.device:
    """Threads, seeds and the device for a job."""
    t = config["train"]
    if t["threads"] or threads:
        torch.set_num_threads(t["threads"] or threads)
    seed_everything(seed, t["deterministic"])
    return resolve_device(t["device"])
