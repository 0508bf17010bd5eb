"""VGG trunks from torchvision, with ImageNet weights when they can be had.

``pretrained`` is one of: ``none`` (random initialisation), ``imagenet`` (torchvision weights
API; downloads when not cached and fails clearly offline), ``auto`` (ImageNet weights when
already in the local torch cache, else random), or a path to a state dict of the torchvision
model. The chosen initialisation is returned as text and recorded in the run's metadata.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from . import project_root
from .errors import ConfigError

log = logging.getLogger(__name__)

_ARCHS = {
    "vgg16": (models.vgg16, models.VGG16_Weights.IMAGENET1K_V1),
    "vgg19": (models.vgg19, models.VGG19_Weights.IMAGENET1K_V1),
}


def _cached_weights_file(weights: models.WeightsEnum) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def vgg_features(arch: str, pretrained: str = "none") -> tuple[nn.Sequential, str]:
    """The ``features`` part of a torchvision VGG and a description of its initialisation."""
    build, weights = _ARCHS[arch]
    if pretrained == "none":
        return build(weights=None).features, "random initialisation"
    if pretrained == "auto":
        if _cached_weights_file(weights).is_file():
            return build(weights=weights).features, f"ImageNet ({weights}, torchvision cache)"
        log.warning("%s: ImageNet weights not in the local torch cache (%s); using random initialisation",
                    arch, _cached_weights_file(weights))
        return build(weights=None).features, "random initialisation (ImageNet weights not available)"
    if pretrained == "imagenet":
        try:
            return build(weights=weights).features, f"ImageNet ({weights})"
        except Exception as exc:  # network and hash errors come in many types
            raise ConfigError(f"train.pretrained: imagenet: cannot load {weights} ({exc}); with no network, "
                              f"download {weights.url} elsewhere and give its path, or use 'none'") from exc
    path = Path(pretrained).expanduser()
    path = path if path.is_absolute() else project_root() / path
    if not path.is_file():
        raise ConfigError(f"train.pretrained: {pretrained!r} is neither none/auto/imagenet nor an existing file")
    model = build(weights=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:
        raise ConfigError(f"train.pretrained: {path} is not a state dict of torchvision {arch} ({exc})") from exc
    return model.features, f"ImageNet (local file {path})"
