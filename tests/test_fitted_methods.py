"""Methods fitted without gradient training (training: fit): the classical counter fits its few
parameters on the training split alone, keeps them like weights, and runs through the same trainer,
evaluation and files as any method; the contract refuses a fitted model without fit()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cellbench.inputs import InputStats
from cellbench.methods import build_model, get_method
from cellbench.training.fitting import FitData
from cellbench.training.trainer import Task, TrainSettings, fit

CPU = torch.device("cpu")


def _settings() -> TrainSettings:
    return TrainSettings(epochs=30, batch_size=8, lr=1e-3, weight_decay=0.0, restart_period=30, restart_mult=1,
                         amp=False, channels_last=False, crop_size=96, val_every=1, checkpoint_seconds=0.0, seed=0)


@pytest.fixture(scope="module")
def vgg_parts(prepared):
    data = prepared["VGG"]
    ids = data.image_ids.tolist()
    return data.subset(ids[:12]), data.subset(ids[100:110])


def test_the_classical_counter_fits_on_training_images_and_counts_others(vgg_parts, tmp_path):
    train, val = vgg_parts
    spec = get_method("classic_log")
    model = build_model(spec, "none", width=0.25)          # no width argument: any train.width builds it
    stats = InputStats.of_images(train.images)
    task = Task(model=model, loss=None, stride=spec.stride, fitted=True, input_stats=stats, label="VGG / classic")
    result = fit(task, train, val, _settings(), CPU, tmp_path / "c.ckpt", tmp_path / "c.csv")
    assert result.status == "fitted" and result.epochs == 0 and result.best_epoch == 0
    assert result.fitted["signal"] == "blue (bright cells)"      # VGG's fluorescence, chosen from the data
    floor = np.abs(train.image_counts - train.image_counts.mean()).mean()
    assert result.fitted["train_mae"] < 0.3 * floor
    assert result.best_val_mae < 0.3 * result.floor_val_mae      # it counts images it was not fitted on
    assert result.history == [dict(result.history[0], train_loss="", lr="")]   # a fit: no loss, no learning rate
    assert not (tmp_path / "c.ckpt").exists()
    # what the fit chose is in the state dict: a fresh model loaded with it counts the same
    again = build_model(spec, "none")
    again.load_state_dict(result.state_dict)
    x = FitData.of(val, stats).images[:2]
    assert torch.equal(model(x), again(x)) and float(again(x).sum()) > 0


def test_a_fitted_method_without_fit_is_refused_by_name(method_folder):
    from cellbench.errors import MethodError
    method_folder("nofit", "model: model.py:Plain\ntraining: fit\nstride: 1\n", "Plain")
    with pytest.raises(MethodError, match=r"nofit/method\.yaml: training: fit, but the model model\.py:Plain has no fit"):
        build_model(get_method("nofit"), "none")


def test_a_gradient_method_still_needs_an_output_layer(method_folder):
    from cellbench.errors import MethodError
    method_folder("noout", "model: model.py:Net\nstride: 1\n")
    with pytest.raises(MethodError, match=r"(?s)noout/method\.yaml: invalid.*'output' is a required property"):
        get_method("noout")
