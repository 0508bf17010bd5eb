"""The trainer: the DCL loss falls on real data, a resumed run equals an uninterrupted one,
a NaN loss stops the run naming the epoch and step."""

from __future__ import annotations

import math
import re

import pytest
import torch

from cellbench.device import seed_everything
from cellbench.errors import TrainingError
from cellbench.training.losses import count_l1, density_mse
from cellbench.methods import build_model, get_method
from cellbench.training.batches import DeviceDataset, augment, make_batch, plan_epoch
from cellbench.training import trainer as trainer_module
from cellbench.training.trainer import Task, TrainSettings, fit

from conftest import adam_losses

CPU = torch.device("cpu")


def settings(**overrides) -> TrainSettings:
    base = dict(epochs=3, batch_size=4, lr=1e-3, weight_decay=0.0, restart_period=2, restart_mult=1, amp=False,
                channels_last=False, crop_size=64, val_every=1, checkpoint_seconds=0.0, seed=0)
    return TrainSettings(**{**base, **overrides})


@pytest.fixture(scope="module")
def vgg_small(prepared):
    data = prepared["VGG"]
    ids = data.image_ids.tolist()
    return data.subset(ids[:8]), data.subset(ids[8:10])


def test_dcl_counter_loss_falls_on_a_real_batch(vgg_small):
    train, _ = vgg_small
    seed_everything(0, deterministic=False)
    model = build_model(get_method("dcl"))
    ds = DeviceDataset(train, CPU)
    batch = make_batch(ds, plan_epoch(ds, 4, torch.Generator().manual_seed(0), 96), 0, 8, False)
    losses = adam_losses(model, count_l1, batch, 12, lr=1e-4)
    assert losses[-1] < 0.5 * losses[0], losses


def test_batches_keep_image_and_targets_aligned(vgg_small):
    train, _ = vgg_small
    ds = DeviceDataset(train, CPU, sigma=2.0, density_scale=100.0)
    plan = plan_epoch(ds, 8, torch.Generator().manual_seed(1), None)
    batch = make_batch(ds, plan, 0, 8, False)
    # whole patches: flips and rotations keep every dot, and the density keeps the count
    order = plan.draws[0]
    torch.testing.assert_close(batch.counts, torch.as_tensor(train.patch_counts(), dtype=torch.float32)[order])
    torch.testing.assert_close(batch.density.sum(dim=(1, 2, 3)) / 100.0, batch.counts, rtol=1e-4, atol=1e-3)


def test_crops_match_slicing_and_keep_dots_with_their_pixels(vgg_small):
    train, _ = vgg_small
    ds = DeviceDataset(train, CPU)
    plan = plan_epoch(ds, 8, torch.Generator().manual_seed(2), 96)
    draws = plan.step(0)
    no_flip = draws.clone()
    no_flip[1:4] = 0
    images, dots = augment([ds.images[draws[0]], ds.dots[draws[0]]], no_flip, 96)
    for i, (idx, top, left) in enumerate(zip(draws[0], draws[4], draws[5])):
        window = (slice(None), slice(top, top + 96), slice(left, left + 96))
        assert torch.equal(images[i], ds.images[idx][window])
        assert torch.equal(dots[i], ds.dots[idx][window])
    batch = make_batch(ds, plan, 0, 8, False)
    torch.testing.assert_close(batch.counts, dots.sum(dim=(1, 2, 3)))  # flips move dots, never drop them
    assert (batch.counts < torch.as_tensor(train.patch_counts(), dtype=torch.float32)[draws[0]]).any()


def test_augmentation_draws_each_flip_and_rotation_of_the_square_equally():
    square = torch.arange(16.0).view(1, 1, 4, 4)
    ds = DeviceDataset.__new__(DeviceDataset)
    ds.images = square.expand(4000, 1, 4, 4)
    plan = plan_epoch(ds, 4000, torch.Generator().manual_seed(3), None)
    (out,) = augment([ds.images], plan.draws, None)
    group = [torch.rot90(s, k, dims=(-2, -1)) for s in (square[0], square[0].flip(-1)) for k in range(4)]
    seen = torch.tensor([[torch.equal(o, g) for g in group] for o in out])
    assert seen.sum(dim=1).eq(1).all()            # every output is one of the 8 symmetries
    share = seen.float().mean(dim=0)
    assert torch.all((share - 1 / 8).abs() < 0.02), share


def _mcnn_task(seed=0):
    seed_everything(seed, deterministic=True)
    return Task(model=build_model(get_method("mcnn")), loss=density_mse, stride=4, count_scale=100.0, sigma=2.0,
                density_scale=100.0)


def test_resumed_run_equals_uninterrupted_run(vgg_small, tmp_path):
    train, val = vgg_small
    reference = fit(_mcnn_task(), train, val, settings(), CPU, tmp_path / "a.ckpt", tmp_path / "a.csv")

    calls = {"n": 0}
    steps_per_epoch = 2

    def interrupting_loss(pred, batch):  # dies in the middle of epoch 3
        calls["n"] += 1
        if calls["n"] == 2 * steps_per_epoch + 1:
            raise KeyboardInterrupt
        return density_mse(pred, batch)

    task = _mcnn_task()
    task.loss = interrupting_loss
    with pytest.raises(KeyboardInterrupt):
        fit(task, train, val, settings(), CPU, tmp_path / "b.ckpt", tmp_path / "b.csv")
    assert torch.load(tmp_path / "b.ckpt", weights_only=True)["epoch"] == 2
    resumed = fit(_mcnn_task(seed=123), train, val, settings(), CPU, tmp_path / "b.ckpt", tmp_path / "b.csv")

    assert [r["val_mae"] for r in resumed.history] == [r["val_mae"] for r in reference.history]
    for key, value in reference.last_state_dict.items():
        assert torch.equal(value, resumed.last_state_dict[key]), key
    assert (tmp_path / "a.csv").read_text().count("\n") == (tmp_path / "b.csv").read_text().count("\n") == 4


def test_nan_loss_stops_naming_epoch_and_step(vgg_small, tmp_path):
    train, val = vgg_small
    calls = {"n": 0}

    def poisoned(pred, batch):
        calls["n"] += 1
        loss = density_mse(pred, batch)
        return loss * math.nan if calls["n"] == 4 else loss  # epoch 2, step 2

    task = _mcnn_task()
    task.loss = poisoned
    with pytest.raises(TrainingError, match=r"loss became NaN or infinite at epoch 2, step 2 of 2"):
        fit(task, train, val, settings(), CPU, tmp_path / "c.ckpt", tmp_path / "c.csv")
    assert torch.load(tmp_path / "c.ckpt", weights_only=True)["epoch"] == 1  # the last good checkpoint


def test_same_seed_gives_identical_training_on_cpu(vgg_small, tmp_path):
    train, val = vgg_small
    first = fit(_mcnn_task(), train, val, settings(epochs=2), CPU, tmp_path / "x.ckpt", tmp_path / "x.csv")
    second = fit(_mcnn_task(), train, val, settings(epochs=2), CPU, tmp_path / "y.ckpt", tmp_path / "y.csv")
    assert [r["val_mae"] for r in first.history] == [r["val_mae"] for r in second.history]
    assert all(torch.equal(v, second.state_dict[k]) for k, v in first.state_dict.items())


def test_a_progress_line_within_long_epochs_only(vgg_small, tmp_path, monkeypatch, caplog):
    train, val = vgg_small  # 8 patches at batch 4: 2 steps per epoch
    caplog.set_level("INFO", logger=trainer_module.__name__)
    fit(_mcnn_task(), train, val, settings(epochs=1), CPU, tmp_path / "q.ckpt", tmp_path / "q.csv")
    assert not [r for r in caplog.records if " s per step" in r.getMessage()]  # epochs shorter than 30 s: quiet

    caplog.clear()
    monkeypatch.setattr(trainer_module, "PROGRESS_SECONDS", 0.0)  # every epoch is "long"
    fit(_mcnn_task(), train, val, settings(epochs=2), CPU, tmp_path / "p.ckpt", tmp_path / "p.csv")
    lines = [r.getMessage() for r in caplog.records if " s per step" in r.getMessage()]
    assert len(lines) == 2  # after step 1 of 2, in each epoch
    for epoch, line in enumerate(lines, start=1):
        match = re.fullmatch(rf"run: epoch {epoch}/2, step 1/2, ([\d.]+) s per step, about (\d+) s left for the run",
                             line)
        assert match, line
        per_step, left = float(match[1]), int(match[2])
        steps_left = 1 + (2 - epoch) * 2
        assert abs(left - steps_left * per_step) <= 0.5 + 0.01 * steps_left, line


@pytest.mark.parametrize("keep_last", [False, True])
def test_a_run_keeps_the_best_weights_and_the_last_only_when_asked(vgg_small, tmp_path, keep_last):
    """Disk: counter.pt holds the selected weights in fp32 (exact predictions); the last epoch's
    weights (as large again) are written to counter_last.pt only with train.keep_last_weights."""
    import pandas as pd

    from cellbench import runs
    from cellbench.config import validate
    from cellbench.io import read_json, write_json
    from cellbench.stages.evaluate import evaluate_stage
    from cellbench.stages.train import train_stage

    train, val = vgg_small
    data = train.subset(train.image_ids.tolist())
    ids = data.image_ids.tolist()
    data.save(tmp_path / "patches.npz")
    write_json(tmp_path / "split.json", {"train": ids[:4], "val": ids[4:6], "test": ids[6:8]})
    config = validate({"datasets": ["VGG"], "methods": ["mcnn"], "train": {
        "epochs": 2, "batch_size": 4, "device": "cpu", "crop_size": 64, "keep_last_weights": keep_last}})
    run = tmp_path / "run"
    run.mkdir()
    (run / runs.COUNTER_LAST).write_bytes(b"stale")  # from an earlier run that kept them
    args = (config, "VGG", "mcnn", 0, tmp_path / "patches.npz", tmp_path / "split.json", run)
    train_stage(*args)
    evaluate_stage(*args)
    assert (run / runs.COUNTER_LAST).is_file() == keep_last
    saved = runs.SavedCounter.read(run)
    assert torch.load(run / runs.COUNTER, weights_only=True)["last"] is None
    assert all(v.dtype == torch.float32 for v in saved.best.values() if v.is_floating_point())
    predictions = pd.read_csv(run / runs.PREDICTIONS)
    assert ("pred_count_last_epoch" in predictions) == keep_last
    assert (read_json(run / runs.METRICS)["last_epoch"] is not None) == keep_last
    if not keep_last:
        with pytest.raises(Exception, match="train.keep_last_weights: true keeps them"):
            saved.model(get_method("mcnn"), "last")


def test_seeding_autotunes_training_only_and_deterministic_warns_instead_of_stopping():
    import torch
    from cellbench.device import seed_everything
    try:
        seed_everything(0, deterministic=False, training=True)
        assert torch.backends.cudnn.benchmark is True
        seed_everything(0, deterministic=False, training=False)   # evaluation, localization
        assert torch.backends.cudnn.benchmark is False
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()   # CUDA ops without one: a warning
        assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
