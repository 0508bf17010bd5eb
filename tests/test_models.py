"""Every method's model: output shape and stride; GMP's aggregation; the method contract."""

from __future__ import annotations

import shutil

import pytest
import torch

from cellbench.methods import registry as methods_module
from cellbench.errors import MethodError
from cellbench.config import validate as validate_config
from cellbench.methods import (build_localizer, build_model, discover, get_method, paper_names, selected_methods,
                               validate_method)

STRIDES = {"dcl": 8, "dcl_no_gmp": 8, "csrnet": 8, "mcnn": 4}


def test_the_four_methods_are_discovered():
    specs = discover()
    assert set(STRIDES) <= set(specs)
    assert specs["dcl_no_gmp"].base == "dcl" and specs["dcl_no_gmp"].options["gmp"] is False
    assert specs["dcl_no_gmp"].localizer is None and specs["dcl"].localizer


@pytest.mark.parametrize("name", sorted(STRIDES))
@pytest.mark.parametrize("size", [(256, 256), (128, 192)])
def test_output_shape_and_stride(name, size):
    model = build_model(get_method(name))
    h, w = size
    with torch.no_grad():
        out = model(torch.randn(2, 3, h, w))
    s = STRIDES[name]
    assert out.shape == (2, 1, h // s, w // s)


def test_dcl_counter_is_non_negative_and_gmp_is_the_only_difference():
    with_gmp, without = build_model(get_method("dcl")), build_model(get_method("dcl_no_gmp"))
    assert (with_gmp(torch.randn(1, 3, 64, 64)) >= 0).all()
    extra = {k for k in with_gmp.state_dict()} - {k for k in without.state_dict()}
    assert extra == {"gmp.offset_u.weight", "gmp.offset_u.bias", "gmp.offset_v.weight", "gmp.offset_v.bias"}


def test_localizer_keeps_full_resolution():
    localizer = build_localizer(get_method("dcl"))
    assert localizer(torch.randn(1, 4, 96, 96)).shape == (1, 1, 96, 96)


def _gmp():
    from cellbench_plugins.methods.dcl.model import GlobalMessagePassing  # loaded by build_model above
    return GlobalMessagePassing


def test_gmp_with_zero_offsets_is_the_identity_aggregation():
    build_model(get_method("dcl"))
    GMP = _gmp()
    gmp = GMP(channels=16, num_points=5)
    for conv in (gmp.offset_u, gmp.offset_v):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.randn(2, 16, 7, 9)
    u, v = gmp.offsets(x)
    torch.testing.assert_close(gmp.aggregate(x, u, v), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(gmp(x), 2 * x, atol=1e-6, rtol=0)  # residual combine: x + a


def test_gmp_samples_at_the_offset_position():
    build_model(get_method("dcl"))
    GMP = _gmp()
    x = torch.randn(1, 3, 5, 6)
    u = torch.full((1, 1, 5, 6), 1.0)   # one cell to the right
    v = torch.full((1, 1, 5, 6), -2.0)  # two cells up
    a = GMP.aggregate(x, u, v)
    torch.testing.assert_close(a[..., 2:, :-1], x[..., :-2, 1:], atol=1e-6, rtol=0)
    assert a[..., :2, :].abs().max() == 0 and a[..., -1].abs().max() == 0  # outside the map: zeros
    half = GMP.aggregate(x, torch.full_like(u, 0.5), torch.zeros_like(v))  # bilinear between cells
    torch.testing.assert_close(half[..., :-1], (x[..., :-1] + x[..., 1:]) / 2, atol=1e-6, rtol=0)


def test_gmp_offsets_receive_gradients():
    model = build_model(get_method("dcl"))
    model(torch.randn(1, 3, 64, 64)).sum().backward()
    assert model.gmp.offset_u.weight.grad.abs().sum() > 0


@pytest.fixture
def scratch_methods(tmp_path, monkeypatch):
    """A methods/ folder of our own, with the real ones copied in."""
    root = tmp_path / "methods"
    shutil.copytree(methods_module.methods_dir(), root)
    monkeypatch.setattr(methods_module, "methods_dir", lambda: root)
    return root


def _add_method(root, name: str, definition: str, model: str | None = None):
    """methods/<name>/ with its method.yaml (and model.py) in a scratch methods folder."""
    d = root / name
    d.mkdir()
    (d / "method.yaml").write_text(definition)
    if model is not None:
        (d / "model.py").write_text(model)
    return d


def test_method_with_wrong_output_shape_is_refused(scratch_methods):
    d = scratch_methods / "broken"
    d.mkdir()
    (d / "method.yaml").write_text("model: model.py:Broken\noutput: null\nstride: 8\n")
    (d / "model.py").write_text("import torch\nclass Broken(torch.nn.Module):\n"
                                "    def forward(self, x):\n        return x[:, :2, ::4, ::4]\n")
    with pytest.raises(MethodError, match=r"broken/method\.yaml .*must return shape \(1, 1, 8, 8\).*got \(1, 2, 16, 16\)"):
        build_model(get_method("broken"))


def test_method_missing_its_model_is_refused(scratch_methods):
    d = scratch_methods / "nomodel"
    d.mkdir()
    (d / "method.yaml").write_text("model: model.py:Net\noutput: null\n")
    with pytest.raises(MethodError, match=r"nomodel/method\.yaml: 'model\.py:Net' must name an existing file"):
        build_model(get_method("nomodel"))
    (d / "method.yaml").write_text("stride: 8\n")
    with pytest.raises(MethodError, match=r"nomodel/method\.yaml: invalid[^\n]*\n  <top level>: 'model' is a required property"):
        get_method("nomodel")


def test_method_with_unknown_key_is_refused(scratch_methods):
    _add_method(scratch_methods, "typo", "model: model.py:Net\noutput: null\nstrde: 8\n")
    with pytest.raises(MethodError, match=r"typo/method\.yaml: invalid[\s\S]*Additional properties are not allowed \('strde' was unexpected\)"):
        get_method("typo")


def test_a_broken_method_folder_names_itself_and_stops_only_the_runs_that_select_it(scratch_methods):
    _add_method(scratch_methods, "badyaml", "model: [unclosed\n")
    _add_method(scratch_methods, "typo", "model: model.py:Net\nstrde: 8\n")
    _add_method(scratch_methods, "noimport", "model: model.py:Net\noutput: null\n", "import no_such_module\n")
    found = discover()  # the folders that do not load are left out; an import fails only when built
    assert "mcnn" in found and "noimport" in found and not {"badyaml", "typo"} & set(found)
    config = validate_config({"methods": ["mcnn"]})
    assert selected_methods(config) == ["mcnn"]               # the broken ones are not selected: no error
    with pytest.raises(MethodError, match=r"method 'badyaml' is broken: .*badyaml/method\.yaml: not valid YAML"
                                          r"[\s\S]*method 'typo' is broken: .*typo/method\.yaml[\s\S]*'strde' was "
                                          r"unexpected[\s\S]*leave them out of the run with "
                                          r"`exclude_methods: \[countception, badyaml, typo\]`"):
        selected_methods(validate_config({"methods": "all", "exclude_methods": ["countception"]}))
    # Left out by name (a broken method is a known name for exclude_methods), 'all' runs the rest.
    chosen = selected_methods(validate_config({"methods": "all", "exclude_methods": ["badyaml", "typo"]}))
    assert "mcnn" in chosen and "noimport" in chosen
    # The import error shows when the method is built (cellbench validate, or its training job).
    with pytest.raises(MethodError, match=r"noimport/model\.py: cannot be imported: ModuleNotFoundError"):
        validate_method(get_method("noimport"), [256])
    with pytest.raises(MethodError, match=r"method 'typo' is broken"):
        get_method("typo")


def test_an_unknown_paper_name_is_refused_naming_the_valid_rows(scratch_methods):
    d = _add_method(scratch_methods, "mine", "model: model.py:Net\noutput: null\npaper_name: FCRN-A\n")
    assert {"FCRN", "MCNN", "DCL (Ours)", "w/o GMP"} <= set(paper_names())
    with pytest.raises(MethodError, match=r"mine/method\.yaml: paper_name 'FCRN-A' is not a row of "
                                          r"paper_dcl_miccai2024\.csv; valid: .*'FCRN'.*'MCNN'"):
        get_method("mine")
    (d / "method.yaml").write_text("model: model.py:Net\noutput: null\npaper_name: FCRN\n")
    assert get_method("mine").paper_name == "FCRN"


def test_a_model_that_fails_at_one_training_size_is_refused_naming_the_size(scratch_methods):
    _add_method(scratch_methods, "picky", "model: model.py:Picky\noutput: null\nstride: 8\n",
                "import torch\nclass Picky(torch.nn.Module):\n"
                "    def forward(self, x):\n"
                "        out = torch.nn.functional.avg_pool2d(x[:, :1], 8)\n"
                "        return out[..., :-1, :] if x.shape[-1] == 96 else out\n")
    spec = get_method("picky")
    validate_method(spec, [256, 64])
    with pytest.raises(MethodError, match=r"picky/method\.yaml .*for a 96x96 input the model must return shape "
                                          r"\(1, 1, 12, 12\).*got \(1, 1, 11, 12\)"):
        validate_method(spec, [256, 96])


POINT_LOSS = '''import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, negative: bool = False):
        super().__init__()
        self.out = nn.Conv2d(3, 1, 1)
        self.negative = negative

    def forward(self, x):
        y = self.out(x)
        return y if self.negative else torch.relu(y)


def bayesian_loss(pred, batch, sigma: float = 8.0):
    return (pred.sum() - batch.counts.sum()).abs() / sigma
'''


def test_a_loss_and_a_target_that_disagree_cannot_train(scratch_methods):
    from cellbench.methods import method_target, resolve_loss, validate_method
    # the case: a point loss without `target` (once silently 'density', 100x off)
    _add_method(scratch_methods, "bl", "model: model.py:Net\nstride: 1\noutput: {layer: out, activation: relu}\n"
                "loss: model.py:bayesian_loss\n", POINT_LOSS)
    with pytest.raises(MethodError, match=r"bl/method\.yaml: no target, and its loss model\.py:bayesian_loss does not declare one"):
        validate_method(get_method("bl"), [64])
    # a built-in loss declares its target: leaving `target` out takes it, a different one is refused
    _add_method(scratch_methods, "counts", "model: model.py:Net\nstride: 1\noutput: {layer: out, activation: relu}\n"
                "loss: count_l1\n", POINT_LOSS)
    assert method_target(get_method("counts")) == "count"
    (scratch_methods / "counts" / "method.yaml").write_text(
        "model: model.py:Net\nstride: 1\noutput: {layer: out, activation: relu}\nloss: count_l1\ntarget: density\n")
    with pytest.raises(MethodError, match=r"target is 'density' but its loss count_l1 compares against target 'count'"):
        resolve_loss(get_method("counts"))
    for name in set(discover()) - {"bl", "counts"}:   # every shipped method agrees with its loss
        assert method_target(get_method(name)) in ("count", "density", "points")


def test_loss_options_reach_the_loss_and_a_wrong_one_is_named(scratch_methods):
    import torch
    from cellbench.methods import resolve_loss
    from cellbench.training.batches import Batch
    base = "model: model.py:Net\nstride: 1\noutput: {layer: out, activation: relu}\nloss: model.py:bayesian_loss\ntarget: points\n"
    _add_method(scratch_methods, "opts", base + "loss_options: {sigma: 2.0}\n", POINT_LOSS)
    loss = resolve_loss(get_method("opts"))
    batch = Batch(images=torch.zeros(1, 3, 4, 4), counts=torch.tensor([3.0]), density=None)
    assert float(loss(torch.ones(1, 1, 4, 4), batch)) == pytest.approx(abs(16 - 3) / 2.0)
    (scratch_methods / "opts" / "method.yaml").write_text(base + "loss_options: {sigmaa: 2.0}\n")
    with pytest.raises(MethodError, match=r"opts/method\.yaml: loss_options \{'sigmaa': 2\.0\} do not fit the loss.*\['sigma'\]"):
        resolve_loss(get_method("opts"))


def test_a_declared_activation_the_model_does_not_apply_is_refused(scratch_methods):
    _add_method(scratch_methods, "neg", "model: model.py:Net\noptions: {negative: true}\nstride: 1\n"
                "output: {layer: out, activation: relu}\ntarget: density\n", POINT_LOSS)
    with pytest.raises(MethodError, match=r"neg/method\.yaml .*output\.activation is 'relu' but the model's output has negative values"):
        build_model(get_method("neg"))
    (scratch_methods / "neg" / "method.yaml").write_text(
        "model: model.py:Net\noptions: {negative: false}\nstride: 1\noutput: {layer: out, activation: abs}\ntarget: density\n")
    build_model(get_method("neg"))   # abs is accepted, and a model applying relu keeps to it
