"""The channel-width knob (train.width): every method at width 1 with ImageNet weights in its trunk
is the published network, one trained from scratch has batch norm, and narrower networks are built,
train-sized, for every method."""

from __future__ import annotations

import pytest
import torch

from cellbench.backbones import scaled, vgg_features
from cellbench.errors import ConfigError, MethodError
from cellbench.methods import build_localizer, build_model, discover, get_method

# Parameter counts of every shipped network before the width knob existed (commit 9f629a9): width 1
# with ImageNet weights in the trunk (the paper's protocol) must build exactly these networks. MCNN
# has no pretrained trunk: it always starts from random initialisation, and so has batch norm since
# 2026-12-07: 133705 parameters without it, plus a scale and a shift per channel of its 12
# convolutions (270 channels) less their 270 biases, 133975. The classical counter has no parameters.
WIDTH_ONE_PARAMETERS = {
    "countception": 1682209, "csrnet": 16263489, "dcl": 20034131, "dcl_no_gmp": 20024897,
    "dm_count": 21499457, "fcrn": 1366785, "mcnn": 133975, "mean_count": 2, "sasnet": 38898698,
    "sfcn": 16337345, "unet": 556417, "classic_log": 0,
}
NO_CHANNELS = ("mean_count", "classic_log")   # a constant and a classical counter: nothing to narrow


@pytest.fixture
def imagenet_trunks(monkeypatch):
    """``pretrained: auto`` finds 'ImageNet weights' for every VGG trunk (random numbers of the right
    shapes: what matters here is which network is built around them)."""
    from cellbench import backbones
    monkeypatch.setenv("TORCH_HOME", "/nonexistent")   # nothing in the cache: auto 'downloads'
    shapes = {weights: (cfg, bn) for cfg, bn, weights in backbones._ARCHS.values()}

    def download(weights):
        cfg, bn = shapes[weights]
        return {f"features.{k}": v for k, v in backbones._features(cfg, None, bn).state_dict().items()}
    monkeypatch.setattr(backbones, "_download", download)
DCL_LOCALIZER_PARAMETERS = 1949985


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_shipped_method_is_counted():
    assert set(WIDTH_ONE_PARAMETERS) == set(discover())


@pytest.mark.parametrize("name", sorted(WIDTH_ONE_PARAMETERS))
def test_width_one_builds_todays_network_and_a_quarter_is_about_a_sixteenth(name, imagenet_trunks):
    spec = get_method(name)
    assert parameters(build_model(spec, "auto")) == WIDTH_ONE_PARAMETERS[name]
    narrow = parameters(build_model(spec, "none", sizes=(96, 256), width=0.25))
    if name not in NO_CHANNELS:
        # Convolution weights scale with the square of the width (the input and output layers, linearly).
        assert WIDTH_ONE_PARAMETERS[name] / 20 < narrow < WIDTH_ONE_PARAMETERS[name] / 10


def _normalised_convolutions(model: torch.nn.Module) -> tuple[int, int]:
    """(convolutions followed by batch norm, all convolutions but 1x1 heads to one channel)."""
    modules = list(model.modules())
    convs = [i for i, m in enumerate(modules) if isinstance(m, torch.nn.Conv2d) and m.out_channels > 1]
    normed = [i for i in convs if i + 1 < len(modules) and isinstance(modules[i + 1], torch.nn.BatchNorm2d)]
    return len(normed), len(convs)


@pytest.mark.parametrize("name", ["dcl", "dcl_no_gmp", "csrnet", "sfcn", "dm_count", "sasnet", "mcnn"])
def test_from_scratch_every_trunk_and_own_layer_has_batch_norm(name, imagenet_trunks):
    """Trained from random initialisation, the trunk is torchvision's _bn configuration and the
    method's own layers are normalised too (GMP's offsets, SFCN's recurrent encoder and SASNet's
    confidence heads aside); with ImageNet weights the published BN-free network is kept."""
    spec = get_method(name)
    scratch = build_model(spec, "none", width=0.25)
    normed, convs = _normalised_convolutions(scratch)
    exempt = {"dcl": 2, "sfcn": 2, "sasnet": 5}.get(name, 0)   # offsets, encoder, confidence heads
    assert normed == convs - exempt, (normed, convs)
    if name not in ("sasnet", "mcnn"):   # SASNet's trunk is VGG-16-BN in the paper too; MCNN has no trunk
        assert _normalised_convolutions(build_model(spec, "auto"))[0] == 0


def test_the_localizer_scales_too():
    spec = get_method("dcl")
    assert parameters(build_localizer(spec)) == DCL_LOCALIZER_PARAMETERS
    assert parameters(build_localizer(spec, width=0.5)) < DCL_LOCALIZER_PARAMETERS / 3


def test_vgg_trunk_channels_follow_the_width():
    features, description = vgg_features("vgg19", "none", 0.25)
    convs = [m for m in features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs][:4] == [16, 16, 32, 32] and convs[-1].out_channels == 128
    assert "width 0.25" in description
    assert scaled(3, 0.1) == 1  # never zero channels


def test_imagenet_weights_need_full_width():
    with pytest.raises(ConfigError, match=r"needs train.width: 1"):
        vgg_features("vgg16", "imagenet", 0.5)


def test_a_model_without_the_width_argument_is_refused_at_another_width(method_folder):
    method_folder("fixed", "model: model.py:Fixed\noutput: null\nstride: 1\n", "Fixed")
    spec = get_method("fixed")
    build_model(spec, "none")  # width 1: fine
    with pytest.raises(MethodError, match=r"fixed/method\.yaml: train.width is 0.5 but the model takes no "
                                          r"'width_multiplier' argument"):
        build_model(spec, "none", width=0.5)


def test_auto_downloads_the_weights_and_falls_back_loudly_without_a_network(tmp_path, monkeypatch, caplog):
    from cellbench import backbones
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))   # an empty cache
    fetched = []

    def offline(weights):
        fetched.append(weights.url)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(backbones, "_download", offline)
    features, description = backbones.vgg_features("vgg16", "auto")
    assert fetched and fetched[0].endswith(".pth")   # it tried
    assert description.startswith("random initialisation (ImageNet weights could not be downloaded")
    assert "RANDOM initialisation" in caplog.text and "Network is unreachable" in caplog.text

    reference = backbones._features("D", None)
    state = {f"features.{k}": torch.full_like(v, 0.5) for k, v in reference.state_dict().items()}
    monkeypatch.setattr(backbones, "_download", lambda weights: state)
    features, description = backbones.vgg_features("vgg16", "auto")
    assert description.endswith("downloaded)") and float(features[0].weight.flatten()[0]) == 0.5
