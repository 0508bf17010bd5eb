"""Images as network inputs: uint8 patches to normalised float tensors.

A network is fed ``(x / 255 - mean) / std`` per channel, with the statistics of its run
(``InputStats``): ImageNet's for a trunk that carries ImageNet weights (the statistics those
weights were learned with), else the training split's own, measured once per run and saved with
its weights (``runs.SavedCounter``), so that evaluate, localize and predict feed the network what
it was trained on. Fixed ImageNet statistics put ADI's near-white images all at about +2 with a
spread of 0.2-0.3 standard deviations, where a randomly initialised network sees no difference
between them (benchmarks/README.md, "The CPU track").

A channel's standard deviation is floored at ``STD_FLOOR`` (of the 0-1 range): VGG's red and green
channels are nearly empty (std 1/255), and dividing by that would blow their sensor noise up to
the scale of the signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data.prepare import PreparedDataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The least standard deviation a channel is divided by, in the 0-1 range (about 5 grey levels).
STD_FLOOR = 0.02


@dataclass(frozen=True)
class InputStats:
    """Per-channel mean and standard deviation (0-1 range) that inputs are normalised with."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = "imagenet"   # imagenet, or "training split" (measured on the run's training images)

    @classmethod
    def imagenet(cls) -> "InputStats":
        return cls(IMAGENET_MEAN, IMAGENET_STD, "imagenet")

    @classmethod
    def of_images(cls, images_uint8: np.ndarray, source: str = "training split") -> "InputStats":
        """The statistics of (N, H, W, C) uint8 images, each channel's std floored at ``STD_FLOOR``."""
        pixels = np.asarray(images_uint8).reshape(-1, images_uint8.shape[-1]).astype(np.float64) / 255.0
        mean, std = pixels.mean(axis=0), pixels.std(axis=0)
        return cls(tuple(round(float(m), 6) for m in mean),
                   tuple(round(float(max(s, STD_FLOOR)), 6) for s in std), source)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "source": self.source}

    @classmethod
    def from_dict(cls, data: dict | None) -> "InputStats":
        """A saved run's statistics; a run saved before they were recorded used ImageNet's."""
        if not data:
            return cls.imagenet()
        return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]),
                   str(data.get("source", "training split")))


def stats_for(init_description: str, train: PreparedDataset) -> InputStats:
    """The statistics a run normalises with: ImageNet's for a trunk with ImageNet weights, else its
    training split's (``train``'s patches)."""
    from .backbones import has_imagenet_weights
    return InputStats.imagenet() if has_imagenet_weights(init_description) else InputStats.of_images(train.images)


_CONSTANTS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _mean_std(stats: InputStats, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and std on ``device``, made once: building them from a list on every batch is a
    blocking host-to-device copy, a synchronisation per step."""
    key = (stats.mean, stats.std, device)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = (torch.tensor(stats.mean, device=device).view(1, -1, 1, 1),
                           torch.tensor(stats.std, device=device).view(1, -1, 1, 1))
    return _CONSTANTS[key]


def normalise(images_uint8: torch.Tensor, stats: InputStats | None = None, channels_last: bool = False) -> torch.Tensor:
    """(B, C, H, W) uint8 to the float input of a network normalised with ``stats`` (ImageNet's when None)."""
    mean, std = _mean_std(stats or InputStats.imagenet(), images_uint8.device)
    x = (images_uint8.float() / 255.0 - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def images_tensor(data: PreparedDataset) -> torch.Tensor:
    """(P, 3, H, W) uint8 on the CPU."""
    return torch.from_numpy(np.ascontiguousarray(data.images)).permute(0, 3, 1, 2).contiguous()
