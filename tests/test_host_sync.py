"""A training step makes no host synchronisation, for every method (the GPU's rule, checked on the
CPU): no op whose result the host must wait for (.item(), int(tensor), nonzero, data-dependent
shapes). And the dots' coordinates a loss reads follow the images' augmentation exactly."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from cellbench.config import load_config
from cellbench.methods import build_model, discover, get_method
from cellbench.stages.common import train_settings
from cellbench.stages.train import counter_task
from cellbench.training.batches import make_batch, plan_epoch, points_from_dots
from cellbench.training.trainer import Trainer
from pathlib import Path

# Ops that make the host wait for the device: a scalar read, or an output whose shape depends on
# the data (the host must learn the shape before it can go on).
SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique", "_unique2", "unique_dim",
           "unique_consecutive", "repeat_interleave", "bincount", "is_nonzero", "equal", "item"}


class SyncCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SYNCING:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def _trainer(name: str, prepared, crop: int | None = 96) -> Trainer:
    config = load_config()
    config["track"] = "cpu"
    config["train"].update(device="cpu", pretrained="none", crop_size=crop, width=0.25, amp=False)
    spec = get_method(name)
    data = prepared["VGG"]
    ids = data.image_ids.tolist()
    train, val = data.subset(ids[:8]), data.subset(ids[8:9])
    model = build_model(spec, "none", width=0.25)
    task = counter_task(config, "VGG", spec, model, 0)
    return Trainer(task, train, val, train_settings(config, 0, spec=spec), torch.device("cpu"),
                   Path(os.devnull), Path(os.devnull))


@pytest.mark.parametrize("name", sorted(m for m in discover() if not get_method(m).fitted))
def test_a_training_step_makes_no_host_synchronisation(name, prepared):
    trainer = _trainer(name, prepared)
    trainer.initialise_output()
    plan = plan_epoch(trainer.train_data, 8, trainer.generator, trainer.settings.crop_size)
    trainer.train_step(make_batch(trainer.train_data, plan, 0, trainer.task.stride, True))  # warm
    with SyncCounter() as counter:
        batch = make_batch(trainer.train_data, plan, 0, trainer.task.stride, True)
        trainer.train_step(batch)
    assert counter.seen == [], f"{name}: {counter.seen}"


def test_the_counter_catches_a_synchronisation():
    with SyncCounter() as counter:
        x = torch.arange(4.0)
        float(x.sum())
        x.nonzero()
    assert any("_local_scalar_dense" in s for s in counter.seen) and any("nonzero" in s for s in counter.seen)


@pytest.mark.parametrize("crop", [None, 96])
def test_batch_points_are_the_dots_of_the_augmented_maps(prepared, crop):
    trainer = _trainer("dm_count", prepared, crop)
    for epoch in range(3):
        plan = plan_epoch(trainer.train_data, 8, trainer.generator, crop)
        batch = make_batch(trainer.train_data, plan, 0, 8, False)
        expected, expected_mask = points_from_dots(batch.dots)
        for b in range(batch.images.shape[0]):
            got = sorted(map(tuple, batch.points[b][batch.point_mask[b]].tolist()))
            want = sorted(map(tuple, expected[b][expected_mask[b]].tolist()))
            assert got == want, (epoch, b)
