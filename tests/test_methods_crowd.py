"""SFCN, DM-Count and SASNet: output shapes, a few steps lower the loss, DM-Count's OT loss on
cases with a known answer."""

from __future__ import annotations

import copy
import functools
import sys

import pytest
import torch

from cellbench.methods import build_model, get_method, resolve_loss
from cellbench.training.batches import Batch
from cellbench.training.output_init import init_output
from cellbench.training.batches import points_from_dots as dot_points
from cellbench.training.targets import sum_pool

STRIDES = {"sfcn": 8, "dm_count": 8, "sasnet": 1}
SIZES = [(64, 64), (96, 96), (128, 128), (256, 256), (128, 192)]


@functools.cache
def _model(name: str) -> torch.nn.Module:
    """Built once per test session (a VGG trunk takes seconds to initialise on the CPU); copy to train."""
    return build_model(get_method(name))


@pytest.mark.parametrize("name", sorted(STRIDES))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_output_shape_at_every_training_size(name, size):
    assert get_method(name).stride == STRIDES[name]
    model, s, (h, w) = _model(name).eval(), STRIDES[name], size
    with torch.no_grad():
        assert model(torch.randn(1, 3, h, w)).shape == (1, 1, h // s, w // s)


def _batch(stride: int, density_scale: float, target: str, size: int = 64, batch: int = 2) -> Batch:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=g)
    dots = torch.zeros(batch, 1, size, size)
    for b, n in enumerate((5, 9)[:batch]):
        rows = torch.randint(0, size, (n,), generator=g)
        cols = torch.randint(0, size, (n,), generator=g)
        dots[b, 0].index_put_((rows, cols), torch.ones(n), accumulate=True)
    density = sum_pool(dots, stride) * density_scale if target == "density" else None
    return Batch(images=images, counts=dots.sum(dim=(1, 2, 3)), density=density, dots=dots,
                 density_scale=density_scale)


@pytest.mark.parametrize("name", sorted(STRIDES))
def test_a_few_steps_lower_the_loss(name):
    torch.manual_seed(0)
    spec = get_method(name)
    model = copy.deepcopy(_model(name)).train()  # train mode throughout: batch norm sees the same batch
    loss_fn = resolve_loss(spec)
    # SASNet decodes at full resolution: one image keeps the test within its time on 2 shared cores.
    batch = _batch(spec.stride, 100.0 if spec.target == "density" else 1.0, spec.target,
                   batch=1 if name == "sasnet" else 2)
    # as the trainer does: the output starts at the mean target per output position
    mean = batch.density.mean() if batch.density is not None else batch.counts.mean() / (64 // spec.stride) ** 2
    init_output(model, spec.output, mean.item(), name)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    losses = []
    for step in range(3):
        loss = loss_fn(model(batch.images), batch)
        assert torch.isfinite(loss)
        losses.append(loss.item())
        if step < 2:
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    assert losses[-1] < losses[0], losses


def test_output_keys_name_a_conv_with_a_bias():
    for name in ("sfcn", "dm_count", "sasnet"):
        output = get_method(name).output
        for layer_name in output["layer"] if isinstance(output["layer"], list) else [output["layer"]]:
            layer = _model(name).get_submodule(layer_name)
            assert isinstance(layer, torch.nn.Conv2d) and layer.bias is not None and output["activation"] == "relu"


# --- DM-Count's optimal-transport loss ------------------------------------------------------

def _dm_loss():
    return sys.modules[resolve_loss(get_method("dm_count")).__module__]


def test_cell_centres_are_the_centres_of_their_pixels():
    loss = _dm_loss()
    torch.testing.assert_close(loss.cell_centres(3, 8, "cpu"), torch.tensor([3.5, 11.5, 19.5]))


def test_ot_cost_of_one_dot_is_the_squared_distance_to_the_mass():
    """One dot: the plan is forced (all mass goes to the dot), so the cost is exact."""
    loss = _dm_loss()
    points, mask = torch.tensor([[[3.0, 3.0]]]), torch.tensor([[True]])
    costs = []
    for k in range(4):  # all mass in cell (0, k): k cells to the right of the dot's cell
        pred = torch.zeros(1, 1, 4, 4)
        pred[0, 0, 0, k] = 1
        cost = loss.transport_cost(pred, points, mask, stride=8)
        costs.append(cost.item())
        assert cost.item() == pytest.approx((8 * k + 0.5) ** 2 + 0.25, rel=1e-5)
    assert costs[0] < 1 and costs == sorted(costs)


def test_ot_cost_of_the_normalised_dot_map_is_near_zero_and_grows_with_a_shift():
    loss = _dm_loss()
    dots = torch.zeros(2, 1, 64, 64)
    for y, x in [(3, 4), (20, 43), (51, 11), (60, 60)]:
        dots[0, 0, y, x] += 1
    dots[1, 0, 35, 27] = 2  # two dots in one pixel
    dots[1, 0, 12, 52] = 1
    points, mask = dot_points(dots)
    exact = sum_pool(dots, 8)
    exact = exact / exact.sum(dim=(1, 2, 3), keepdim=True)
    cost = loss.transport_cost(exact, points, mask, stride=8)
    assert (cost < 25).all()  # at most the distance of a dot to its cell centre (3.5^2 * 2 = 24.5 px^2)
    previous = cost
    for shift in (1, 2, 3, 4):  # the dots move down by whole cells; the prediction stays
        moved_points = points + torch.tensor([0.0, 8.0 * shift])
        moved = loss.transport_cost(exact, moved_points, mask, stride=8)
        # for a translation by t, W2^2 = (centred part) + |t - d|^2, d the mean offset (|d| <= 3.5 px per axis)
        assert (moved > previous).all() and (moved >= (8 * shift - 3.5) ** 2).all(), (shift, moved, previous)
        previous = moved


def test_ot_gradient_moves_mass_towards_the_dots():
    loss = _dm_loss()
    points, mask = torch.tensor([[[12.0, 3.0], [40.0, 59.0]]]), torch.tensor([[True, True]])
    pred = torch.full((1, 1, 8, 8), 1.0, requires_grad=True)
    normed = loss.normalised(pred)
    ot, cost = loss.ot_loss(normed, points, mask, stride=8), loss.transport_cost(normed, points, mask, stride=8)
    assert (ot == 0).all()  # the original's OT term: no value, only its gradient
    ot.sum().backward()
    with torch.no_grad():
        step = (pred - 0.5 * pred.grad / pred.grad.abs().max()).clamp_min(0)
        after = loss.transport_cost(loss.normalised(step), points, mask, stride=8)
    assert after < cost
    grad = pred.grad[0, 0]
    assert grad[0, 1] < grad[4, 4] and grad[7, 5] < grad[4, 4]  # the dots' cells gain mass first


def test_ot_loss_of_images_without_dots_is_zero_and_finite():
    loss = _dm_loss()
    points = torch.tensor([[[5.0, 5.0]], [[0.0, 0.0]]])
    mask = torch.tensor([[True], [False]])
    pred = torch.rand(2, 1, 8, 8, requires_grad=True)
    ot = loss.ot_loss(loss.normalised(pred), points, mask, stride=8)
    cost = loss.transport_cost(loss.normalised(pred), points, mask, stride=8)
    ot.sum().backward()
    assert ot[1] == 0 and cost[1] == 0 and torch.isfinite(pred.grad).all()
    assert pred.grad[1].abs().max() == 0
    # a batch with no dots at all, and a prediction of zeros (a dead ReLU)
    empty = loss.ot_loss(torch.zeros(2, 1, 8, 8), torch.zeros(2, 0, 2), torch.zeros(2, 0, dtype=torch.bool), 8)
    assert (empty == 0).all()
    zero_pred = loss.ot_loss(torch.zeros(2, 1, 8, 8), points, mask, stride=8)
    assert torch.isfinite(zero_pred).all()


def test_dm_count_loss_is_the_count_error_for_a_perfect_distribution():
    """Prediction = pooled dots (count right, distribution right): nothing is left (the OT term
    carries a gradient only, as in the original)."""
    loss = _dm_loss()
    batch = _batch(8, 1.0, "points")
    pred = sum_pool(batch.dots, 8)
    value = loss.dm_count_loss(pred, batch)
    assert value.item() == pytest.approx(0.0, abs=1e-3)
    assert (loss.dm_count_loss(pred * 2, batch) > value + 5)
