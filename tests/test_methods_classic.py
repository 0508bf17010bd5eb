"""The classic cell counters (FCRN-A, U-Net, Count-ception): discovered, output shapes at every
size training uses, the output layer the trainer initialises, Count-ception's redundant target,
and a few optimiser steps on a fixed batch lower each loss."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from cellbench.cli import main
from cellbench.methods import build_model, get_method, resolve_loss
from cellbench.training.targets import sum_pool
from cellbench.training.batches import Batch

from conftest import adam_losses

CLASSIC = {"fcrn": 1, "unet": 1, "countception": 1}  # name -> output stride
STEPS = {"fcrn": 4, "unet": 4, "countception": 3}  # Count-ception: about 4 s of CPU a step here
SIZES = [(64, 64), (96, 96), (128, 128), (256, 256), (128, 192)]


def _countception():
    resolve_loss(get_method("countception"))  # loads the method's model.py (its loss lives there)
    return sys.modules["cellbench_plugins.methods.countception.model"]


def test_the_classic_methods_are_listed(capsys):
    assert main(["methods"]) == 0  # python -m cellbench methods
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert set(CLASSIC) <= listed
    assert get_method("fcrn").paper_name == "FCRN"  # the row of the DCL paper's Table 2


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_output_shape_at_every_training_size(name):
    spec = get_method(name)
    assert spec.stride == CLASSIC[name]
    model = build_model(spec).eval()
    for h, w in SIZES:
        with torch.no_grad():
            out = model(torch.randn(1, 3, h, w))
        assert out.shape == (1, 1, h // spec.stride, w // spec.stride), (h, w)


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_output_layer_alone_sets_the_map(name):
    """method.yaml's output layer has a bias, and only its activation lies between it and the map:
    with zero weights, the map is activation(bias) everywhere (what the trainer's bias init needs)."""
    import yaml
    output = yaml.safe_load((get_method(name).definition).read_text())["output"]
    model = build_model(get_method(name)).eval()
    layer = model.get_submodule(output["layer"])
    assert isinstance(layer, torch.nn.Conv2d) and layer.bias is not None
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(0.37)
        out = model(torch.randn(1, 3, 64, 96))
    torch.testing.assert_close(out, torch.full_like(out, 0.37))


def _dots(b, h, w, n, seed):
    g = torch.Generator().manual_seed(seed)
    dots = torch.zeros(b, 1, h, w)
    idx = torch.randint(0, h * w, (b, n), generator=g)
    dots.view(b, -1).scatter_add_(1, idx, torch.ones(b, n))
    return dots


@pytest.mark.parametrize("stride", [1, 2, 8])
@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_redundant_target_sums_to_the_count_and_is_the_original_inside(stride, size):
    cc = _countception()
    h, w = size
    dots = _dots(2, h, w, 40, seed=stride)
    dots[0, 0, 0, 0] += 1
    dots[1, 0, -1, -1] += 2  # corners: held by the fewest windows
    target = cc.redundant_target(dots, stride)
    assert target.shape == (2, 1, h // stride, w // stride)
    torch.testing.assert_close(target.sum(dim=(1, 2, 3)), dots.sum(dim=(1, 2, 3)))
    # Away from the border every dot is held by all windows: the original's count per window
    # divided by the redundancy (32 / stride)^2.
    lo = (cc.PATCH - stride + 1) // 2
    hi = cc.PATCH - stride - lo
    counts = F.avg_pool2d(F.pad(dots, (lo, hi, lo, hi)), cc.PATCH, stride=stride) * cc.PATCH ** 2
    k = cc.PATCH // stride
    torch.testing.assert_close(target[..., k:-k, k:-k] * k * k, counts[..., k:-k, k:-k])


def test_redundant_loss_is_zero_at_the_target_and_counts_per_window():
    cc = _countception()
    dots = _dots(2, 64, 64, 30, seed=0)
    batch = Batch(images=torch.zeros(2, 3, 64, 64), counts=dots.sum(dim=(1, 2, 3)), density=None, dots=dots)
    target = cc.redundant_target(dots, 1)
    assert cc.redundant_count_l1(target, batch).item() == pytest.approx(0.0, abs=1e-6)
    # one extra count in every window of the original: loss 1
    assert cc.redundant_count_l1(target + 1 / 1024, batch).item() == pytest.approx(1.0, rel=1e-4)


def _batch(spec, size, seed=0):
    """Two synthetic images: bright blobs on noise at the dots, with the method's targets."""
    h = w = size
    dots = _dots(2, h, w, 12, seed)
    blobs = F.conv2d(dots, torch.ones(1, 1, 5, 5), padding=2).clamp(max=1)
    images = (blobs.expand(2, 3, h, w) * 2 + 0.3 * torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed)))
    scale = 100.0
    density = None
    if spec.target == "density":
        gauss = torch.exp(-torch.arange(-4, 5.0) ** 2 / (2 * 2.0 ** 2))
        kernel = (gauss[:, None] * gauss[None, :] / gauss.sum() ** 2)[None, None]
        density = sum_pool(F.conv2d(dots, kernel, padding=4) * scale, spec.stride)
    return Batch(images=images, counts=dots.sum(dim=(1, 2, 3)), density=density, dots=dots,
                 **({"density_scale": scale} if "density_scale" in Batch.__dataclass_fields__ else {}))


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_a_few_steps_on_a_fixed_batch_lower_the_loss(name):
    torch.manual_seed(0)
    spec = get_method(name)
    model, loss_fn = build_model(spec), resolve_loss(spec)
    batch = _batch(spec, 64)
    layer = model.get_submodule("output")  # what the trainer does: the bias at the mean target
    mean = (batch.density.mean() if batch.density is not None else batch.counts.mean() / 64 ** 2 * spec.stride ** 2)
    with torch.no_grad():
        layer.bias.fill_(float(mean))
    losses = adam_losses(model, loss_fn, batch, STEPS[name], lr=1e-3)
    assert losses[-1] < 0.8 * losses[0], losses
