"""Training that learns from the first step: outputs start at the data's scale, the warm-up and
SGDR schedule (timm's), the moving average of the weights (timm's), GMP in fp32 under autocast, the
paired ablation, the collapse guard, the floor, the did-not-learn checks, and the first steps of
DCL on MBM (the case that once collapsed to zero within four steps)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cellbench.config import load_config
from cellbench.device import seed_everything
from cellbench.methods import build_model, get_method
from cellbench.stages.first_steps import HEALTHY, first_steps
from cellbench.training.losses import count_l1
from cellbench.training.output_init import init_output, inverse_activation, mean_target_per_position
from cellbench.training.guards import LearningChecks, best_constant_mae, did_not_learn_reasons
from cellbench.training.trainer import Task, Trainer, TrainSettings, fit

CPU = torch.device("cpu")


@pytest.mark.parametrize("activation, fn", [("identity", lambda b: b), ("relu", lambda b: max(b, 0.0)),
                                            ("softplus", lambda b: math.log1p(math.exp(b))), ("exp", math.exp)])
@pytest.mark.parametrize("value", [1e-4, 0.03, 0.7, 25.0])
def test_inverse_activation_gives_the_value_back(activation, fn, value):
    assert fn(inverse_activation(activation, value)) == pytest.approx(value, rel=1e-9)


def test_output_layer_starts_at_the_mean_density(mbm_prepared):
    spec = get_method("dcl")
    model = build_model(spec)
    value = mean_target_per_position(mbm_prepared, spec.stride)
    expected = mbm_prepared.patch_counts().mean() / (32 * 32)
    assert value == pytest.approx(expected)
    nn.init.zeros_(model.head.weight)  # so the output is the bias alone
    init_output(model, spec.output, value, "dcl")
    with torch.no_grad():
        out = model(torch.randn(2, 3, 256, 256))
    assert out.sum(dim=(1, 2, 3)) == pytest.approx(torch.full((2,), float(expected * 32 * 32)), rel=1e-5)


def test_output_layer_that_is_not_there_is_named(mbm_prepared):
    from cellbench.errors import MethodError
    model = build_model(get_method("mcnn"))
    with pytest.raises(MethodError, match=r"mcnn/method.yaml: output.layer 'head' is not a submodule"):
        init_output(model, {"layer": "head", "activation": "identity"}, 0.5, "methods/mcnn/method.yaml")


@pytest.mark.parametrize("mult", [1, 2])
def test_schedule_warms_up_linearly_then_matches_torch_sgdr(mbm_small, tmp_path, mult):
    """The trainer's schedule (timm's CosineLRScheduler, per step): a linear warm-up from lr / W over
    W steps, then exactly torch's CosineAnnealingWarmRestarts, restarts without end."""
    train, val = mbm_small   # 32 patches: 4 steps per epoch at batch 8
    task = Task(model=_Constant(), loss=count_l1, stride=8, output={"layer": "level", "activation": "identity"})
    settings = _settings(lr=1.0, warmup_epochs=1.5, restart_period=3, restart_mult=mult)
    trainer = Trainer(task, train, val, settings, CPU, tmp_path / "s.ckpt", tmp_path / "s.csv")
    warmup, period = 6, 12
    lrs = []
    for step in range(6 + 80):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.scheduler.step_update(step + 1)
    assert lrs[:warmup] == pytest.approx([1 / 6 + s * (1 - 1 / 6) / 6 for s in range(warmup)])
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sgdr = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=period, T_mult=mult)
    for step in range(80):
        assert lrs[warmup + step] == pytest.approx(opt.param_groups[0]["lr"], abs=1e-9), step
        opt.step()
        sgdr.step()


def test_the_selected_weights_are_the_moving_average_of_the_steps(mbm_small, tmp_path):
    """With a horizon longer than the run, the moving average is the plain mean of the weights after
    each step (timm's warm-up with power 1), and that average is what is validated and saved."""
    train, val = mbm_small
    seen = []
    model = _Constant()

    def loss(pred, batch):   # records the weight each step starts from
        seen.append(float(model.level.bias.detach()))
        return count_l1(pred, batch)
    task = Task(model=model, loss=loss, stride=8, output={"layer": "level", "activation": "identity"})
    trainer = Trainer(task, train, val, _settings(epochs=3, restart_period=3, ema_epochs=1000.0), CPU,
                      tmp_path / "e.ckpt", tmp_path / "e.csv")
    result = trainer.fit()
    after_each_step = seen[1:] + [float(model.level.bias.detach())]
    assert len(after_each_step) == 12
    assert float(result.last_state_dict["level.bias"]) == pytest.approx(sum(after_each_step) / 12, rel=1e-5)
    assert float(result.last_state_dict["level.bias"]) != pytest.approx(float(model.level.bias.detach()), rel=1e-3)


def _gmp_with_fractional_offsets():
    seed_everything(0, False)
    gmp = build_model(get_method("dcl")).gmp
    with torch.no_grad():  # non-integer, non-trivial offsets that depend on the features
        for conv in (gmp.offset_u, gmp.offset_v):
            conv.weight.normal_(0, 0.02)
            conv.bias.add_(0.37)
    return gmp


def test_gmp_under_bf16_autocast_stays_within_one_percent_of_fp32():
    gmp = _gmp_with_fractional_offsets()
    x = torch.randn(2, 512, 16, 16)
    reference = gmp.aggregate(x, *gmp.offsets(x))
    with torch.no_grad():
        fp32 = gmp(x) - x
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = gmp(x)
            mixed_bf16_input = gmp(x.bfloat16())
    assert torch.allclose(fp32, reference, atol=1e-5)
    assert mixed.dtype == torch.float32 and mixed_bf16_input.dtype == torch.bfloat16
    assert ((mixed - x - fp32).norm() / fp32.norm()).item() < 0.01
    x16 = x.bfloat16().float()  # the same input, rounded as a bf16 trunk would give it
    fp32_same_input = gmp(x16) - x16
    assert ((mixed_bf16_input.float() - x16 - fp32_same_input).norm() / fp32_same_input.norm()).item() < 0.01


def test_ablation_is_paired_at_initialisation():
    seed_everything(3, False)
    full = build_model(get_method("dcl")).state_dict()
    seed_everything(3, False)
    ablated = build_model(get_method("dcl_no_gmp")).state_dict()
    shared = [k for k in ablated if k.startswith(("trunk.", "head."))]
    assert len(shared) == len(ablated) > 30
    for key in shared:
        assert torch.equal(full[key], ablated[key]), key


class _Dead(nn.Module):
    """Predicts zero whatever it learns: the collapse the guard must catch."""

    def __init__(self):
        super().__init__()
        self.level = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.relu(-self.level.abs() - 1.0) * x[:, :1, ::8, ::8]


def _settings(**kw) -> TrainSettings:
    base = dict(epochs=6, batch_size=8, lr=1e-3, weight_decay=0.0, restart_period=6, restart_mult=1, amp=False,
                channels_last=False, crop_size=64, val_every=1, checkpoint_seconds=0.0, seed=0, warmup_epochs=1,
                collapse_patience=2)
    base.update(kw)
    return TrainSettings(**base)


def test_collapse_guard_stops_and_names_the_run(mbm_small, tmp_path, caplog):
    train, val = mbm_small
    task = Task(model=_Dead(), loss=count_l1, stride=8, label="MBM / dead / seed 0")
    result = fit(task, train, val, _settings(), CPU, tmp_path / "c.ckpt", tmp_path / "c.csv")
    assert result.collapsed == {"epoch": 2, "ratio": 0.0}
    assert len(result.history) == 2  # stopped, not run to epoch 6
    assert "MBM / dead / seed 0: collapsed at epoch 2" in caplog.text


def test_mean_count_floor_predicts_the_training_mean(mbm_small, tmp_path):
    train, val = mbm_small
    spec = get_method("mean_count")
    task = Task(model=build_model(spec), loss=None, stride=spec.stride, fitted=True, floor=True)
    result = fit(task, train, val, _settings(), CPU, tmp_path / "m.ckpt", tmp_path / "m.csv")
    model = build_model(spec)
    model.load_state_dict(result.state_dict)
    with torch.no_grad():
        per_patch = model(torch.zeros(1, 3, 256, 256)).sum().item()
    assert per_patch == pytest.approx(train.patch_counts().mean(), rel=1e-5)
    assert result.best_epoch == 0 and len(result.history) == 1 and result.epochs == 0
    # a fit has no loss and no learning rate to log, and the floor is never judged
    assert result.history[0]["train_loss"] == "" and result.history[0]["lr"] == ""
    assert result.status == "fitted" and result.fitted["mean_count_per_patch"] == pytest.approx(
        train.patch_counts().mean(), abs=1e-4)


def test_dcl_first_steps_on_mbm_do_not_collapse(mbm_prepared):
    """The full protocol collapsed to zero within 4 steps (DCL on MBM, softplus head, Adam 1e-4);
    here the same trainer on 96x96 crops for 12 steps must keep the predicted count in range."""
    from cellbench.data.splits import make_split
    config = load_config()
    config["train"].update(device="cpu", pretrained="none", crop_size=96, amp=False, channels_last=False)
    data = mbm_prepared
    split = make_split(data.image_ids.tolist(), data.image_groups.tolist(), {"train": 0.5, "test": 0.45, "val": 0.05},
                       0, False)
    train, val = data.subset(split["train"]), data.subset(split["val"])
    rows = first_steps(config, "MBM", "dcl", train, val, steps=12, seed=0)
    ratios = [r["ratio"] for r in rows]
    assert 0.5 < ratios[0] < 2.0, ratios           # starts at the data's scale
    assert all(HEALTHY[0] <= r <= HEALTHY[1] for r in ratios[3:]), ratios


class _Constant(nn.Module):
    """Learns one number for every output position, whatever the image: it can reach the floor
    and no further, so it never learns to count (the case that once went unnoticed)."""

    def __init__(self):
        super().__init__()
        self.level = nn.Conv2d(1, 1, kernel_size=1)

    def forward(self, x):
        return self.level(x.new_zeros(x.shape[0], 1, x.shape[-2] // 8, x.shape[-1] // 8))


def test_a_run_that_stays_at_the_floor_is_marked_did_not_learn(mbm_small, tmp_path, caplog):
    train, val = mbm_small
    task = Task(model=_Constant(), loss=count_l1, stride=8, output={"layer": "level", "activation": "identity"},
                label="MBM / constant / seed 0")
    result = fit(task, train, val, _settings(epochs=3, restart_period=3), CPU, tmp_path / "k.ckpt", tmp_path / "k.csv")
    assert result.floor_val_mae == pytest.approx(best_constant_mae(val.image_counts))
    assert result.did_not_learn and result.status == "did not learn" and not result.collapsed
    assert result.val_spread == 0.0   # one number for every image
    assert "MBM / constant / seed 0: did not learn" in caplog.text and "hardly vary" in caplog.text


def test_a_constant_that_beats_the_training_mean_is_still_marked(mbm_small, tmp_path):
    """The six ADI runs of the old recipe: a constant chosen on validation beat the floor's training
    mean by 13% (ratio 0.87) and passed. Judged against the best constant, and by its spread, it fails
    however lenient the ratio."""
    train, val = mbm_small
    task = Task(model=_Constant(), loss=count_l1, stride=8, output={"layer": "level", "activation": "identity"})
    result = fit(task, train, val, _settings(epochs=1, restart_period=1, did_not_learn_ratio=1.5), CPU,
                 tmp_path / "k.ckpt", tmp_path / "k.csv")
    assert result.did_not_learn and any("hardly vary" in r for r in result.did_not_learn_reasons)
    assert not any("best constant" in r for r in result.did_not_learn_reasons)   # the ratio alone would pass it


def test_the_floor_is_the_best_constant_on_the_validation_images():
    true = [10.0, 20.0, 30.0, 100.0]
    # the median (any value between 20 and 30) gives the least MAE a constant can reach: 25
    assert best_constant_mae(true) == pytest.approx((15 + 5 + 5 + 75) / 4)
    assert all(best_constant_mae(true) <= sum(abs(t - c) for t in true) / 4 for c in (10, 20, 25, 30, 40, 40.0))


@pytest.mark.parametrize("pred, reason", [
    ([55.0, 55.1, 54.9, 55.0], "hardly vary"),              # one number for every image
    ([80.0, 20.0, 70.0, 40.0], "do not follow"),             # varies, but not with the truth
    ([15.0, 19.0, 31.0, 90.0], None),                        # counts: no reason
])
def test_did_not_learn_checks_name_their_reason(pred, reason):
    true = [10.0, 20.0, 30.0, 100.0]
    mae = sum(abs(p - t) for p, t in zip(pred, true)) / 4
    reasons = did_not_learn_reasons(pred, true, mae, LearningChecks())
    if reason is None:
        assert reasons == []
    else:
        assert any(reason in r for r in reasons), reasons


def test_spread_and_correlation_are_not_judged_on_one_validation_image():
    assert did_not_learn_reasons([5.0], [30.0], 25.0, LearningChecks(ratio=10.0)) == []
