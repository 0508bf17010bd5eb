"""VGG trunks from torchvision, with ImageNet weights when they can be had.

``pretrained`` is one of: ``none`` (random initialisation), ``imagenet`` (torchvision weights
API; downloads when not cached and fails clearly offline), ``auto`` (ImageNet weights from the
local torch cache, else downloaded, else random initialisation with an error in the log and the
metadata saying so), or a path to a state dict of the torchvision
model. The chosen initialisation is returned as text and recorded in the run's metadata.

``width`` is the channel-width multiplier of ``train.width`` (1 = the published networks): every
trunk and every layer a method adds scale their channels with ``scaled``. ImageNet weights exist
at width 1 only.

**Trained from scratch, a network has batch normalisation.** A trunk that starts from random
initialisation is built from torchvision's ``_bn`` layer configuration (batch norm after every
convolution), and a method's own layers follow the trunk (``conv_block`` with ``norm=
from_scratch(description)``). Without it, six networks of the CPU track predicted one constant on
every ADI image (their features barely differ between near-white images) and the learning rate
had to stay at 1e-4; the from-scratch cell counters of the literature all normalise (Count-ception
after every convolution, FCRN-A and U-Net as Xie et al. did "to make the training easier"). A
trunk with ImageNet weights keeps the published, BN-free network (the paper's protocol).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.models import vgg

from . import project_root
from .errors import ConfigError

log = logging.getLogger(__name__)

# torchvision's layer configurations ("D" = VGG-16, "E" = VGG-19), batch norm, and ImageNet weights.
_ARCHS = {
    "vgg16": ("D", False, models.VGG16_Weights.IMAGENET1K_V1),
    "vgg16_bn": ("D", True, models.VGG16_BN_Weights.IMAGENET1K_V1),
    "vgg19": ("E", False, models.VGG19_Weights.IMAGENET1K_V1),
    "vgg19_bn": ("E", True, models.VGG19_BN_Weights.IMAGENET1K_V1),
}
#: The trunk a BN-free architecture becomes when it starts from random initialisation.
_FROM_SCRATCH = {"vgg16": "vgg16_bn", "vgg19": "vgg19_bn"}
RANDOM = "random initialisation"


def _cached_weights_file(weights: models.WeightsEnum) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


#: Seconds to wait for the download server before falling back (offline machines often hang, not refuse).
DOWNLOAD_TIMEOUT = 30.0


def _download(weights: models.WeightsEnum) -> dict:
    import socket
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        return weights.get_state_dict(progress=False)
    finally:
        socket.setdefaulttimeout(previous)


def scaled(channels: int, width: float) -> int:
    """``channels`` at the width multiplier ``width`` (at least one channel)."""
    return max(1, int(round(channels * width)))


def vgg_channels(width: float = 1.0) -> int:
    """Channels of a VGG trunk's last convolutions (512 at width 1)."""
    return scaled(512, width)


def _features(cfg: str, state: dict | None, batch_norm: bool = False, width: float = 1.0) -> nn.Sequential:
    """Only the convolutional part: building the whole VGG would initialise a 120M-parameter
    classifier that is thrown away (seconds per model on a CPU)."""
    layers = [v if v == "M" else scaled(v, width) for v in vgg.cfgs[cfg]]
    features = vgg.make_layers(layers, batch_norm=batch_norm)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):  # torchvision's VGG initialisation
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    if state is not None:
        features.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
    return features


def from_scratch(description: str) -> bool:
    """Whether a network whose trunk is described by ``description`` (``vgg_features``'s second
    value, or a method's own ``init_description``) starts from random initialisation: then its own
    layers get normalisation layers too (``conv_block``), and its inputs are normalised with the
    training split's statistics instead of ImageNet's (``cellbench.inputs``)."""
    return description.startswith(RANDOM)


def has_imagenet_weights(description: str) -> bool:
    """Whether a trunk carries ImageNet weights: then its inputs are normalised with ImageNet's
    mean and std, the statistics its weights were learned with (``cellbench.inputs``)."""
    return description.startswith("ImageNet")


def vgg_features(arch: str, pretrained: str = "none", width: float = 1.0) -> tuple[nn.Sequential, str]:
    """The ``features`` part of a torchvision VGG (``vgg16``, ``vgg16_bn``, ``vgg19``, ``vgg19_bn``)
    and a description of its initialisation.

    The trunk is an ``nn.Sequential`` of torchvision's layers: 13 (VGG-16) or 16 (VGG-19)
    3x3 convolutions with ReLU (and batch norm for ``_bn``) and five 2x2 max-pools, so its output
    has stride 32 and ``vgg_channels(width)`` channels; ``before_pool(features, k)`` keeps what comes
    before the k-th max-pool (5: stride 16, 4: stride 8 after conv4_3). A trunk that starts from
    random initialisation (``pretrained: none``, a width other than 1, or ``auto`` without the
    weights) is built with batch norm (``vgg19`` as ``vgg19_bn``): see the module's docstring. At
    ``width`` other than 1 every convolution has ``scaled(c, width)`` channels and the trunk starts
    from random initialisation (ImageNet weights exist at width 1 only)."""
    cfg, bn, weights = _ARCHS[arch]
    scratch_bn = bn or arch in _FROM_SCRATCH

    def random_trunk(reason: str = "") -> tuple[nn.Sequential, str]:
        norm = ", batch norm" if scratch_bn and not bn else ""
        return _features(cfg, None, scratch_bn, width), f"{RANDOM}{reason}{norm}"

    if width != 1.0:
        if pretrained not in ("none", "auto"):
            raise ConfigError(f"train.pretrained: {pretrained!r} needs train.width: 1 (ImageNet weights exist at "
                              f"width 1 only; train.width is {width:g}); use pretrained: none or auto")
        return random_trunk(f" (width {width:g})")
    if pretrained == "none":
        return random_trunk()
    if pretrained == "auto":
        if _cached_weights_file(weights).is_file():
            return _features(cfg, weights.get_state_dict(progress=False), bn), f"ImageNet ({weights}, torchvision cache)"
        try:  # the paper used ImageNet weights: fetch them where there is a network
            state = _download(weights)
        except Exception as exc:  # no network, a proxy, a hash mismatch: many types
            log.error("%s: ImageNet weights are not in the torch cache (%s) and could not be downloaded (%s): "
                      "this run starts from RANDOM initialisation, unlike the paper (recorded in metadata.json). "
                      "Put %s in the cache, or set train.pretrained: none to choose random initialisation",
                      arch, _cached_weights_file(weights), exc, weights.url)
            return random_trunk(f" (ImageNet weights could not be downloaded: {exc})")
        return _features(cfg, state, bn), f"ImageNet ({weights}, downloaded)"
    if pretrained == "imagenet":
        try:
            return _features(cfg, weights.get_state_dict(progress=False), bn), f"ImageNet ({weights})"
        except Exception as exc:  # network and hash errors come in many types
            raise ConfigError(f"train.pretrained: imagenet: cannot load {weights} ({exc}); with no network, "
                              f"download {weights.url} elsewhere and give its path, or use 'none'") from exc
    path = Path(pretrained).expanduser()
    path = path if path.is_absolute() else project_root() / path
    if not path.is_file():
        raise ConfigError(f"train.pretrained: {pretrained!r} is neither none/auto/imagenet nor an existing file")
    try:
        features = _features(cfg, torch.load(path, map_location="cpu", weights_only=True), bn)
    except Exception as exc:
        raise ConfigError(f"train.pretrained: {path} is not a state dict of torchvision {arch} ({exc})") from exc
    return features, f"ImageNet (local file {path})"


def before_pool(features: nn.Sequential, k: int) -> nn.Sequential:
    """The layers of a VGG trunk before its ``k``-th max-pool (1-based), with or without batch norm:
    ``before_pool(f, 4)`` ends after conv4_3's ReLU (stride 8, CSRNet's and SFCN's front end),
    ``before_pool(f, 5)`` after the last convolution (stride 16)."""
    pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
    if not 1 <= k <= len(pools):
        raise ValueError(f"the trunk has {len(pools)} max-pools; asked for the layers before pool {k}")
    return features[:pools[k - 1]]


def conv_block(cin: int, cout: int, kernel: int = 3, *, norm: bool, dilation: int = 1,
               activation: bool = True) -> nn.Sequential:
    """A method's own 'same' convolution, with batch norm when ``norm`` (then without a bias, which
    the norm makes redundant) and ReLU: the one way a method adds layers that follow its trunk
    (``norm=from_scratch(description)``)."""
    padding = dilation * (kernel // 2)
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    if activation:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def orthogonal_init(model: nn.Module) -> None:
    """Orthogonal weights and zero biases for every convolution of ``model`` (the initialisation
    of the Keras cell counters, FCRN-A and the counting U-Net, trained from scratch)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.orthogonal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def init_new_layers(layers: list[nn.Module], trunk_description: str) -> None:
    """Initialise the layers a method adds after a VGG trunk.

    With ImageNet weights in the trunk: N(0, 0.01) weights and zero biases, the original code of
    CSRNet and SFCN. With a random trunk that initialisation starves the signal (about 0.4 times
    smaller per layer: after six back-end layers the features are ~1e-3 of the input's and the
    gradients fall below Adam's epsilon, so the model never leaves its starting output); there the
    layers take the trunk's own initialisation instead (He-normal, as torchvision's VGG)."""
    random_trunk = from_scratch(trunk_description)
    for layer in layers:
        for module in layer.modules():
            if isinstance(module, nn.Conv2d):
                if random_trunk:
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                else:
                    nn.init.normal_(module.weight, std=0.01)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
