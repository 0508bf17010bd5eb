"""Images as network inputs: uint8 patches to ImageNet-normalised float tensors."""

from __future__ import annotations

import numpy as np
import torch

from .data.prepare import PreparedDataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


_CONSTANTS: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet mean and std on ``device``, made once: building them from a list on every
    batch is a blocking host-to-device copy, a synchronisation per step."""
    if device not in _CONSTANTS:
        _CONSTANTS[device] = (torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
                              torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1))
    return _CONSTANTS[device]


def normalise(images_uint8: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    mean, std = _mean_std(images_uint8.device)
    x = (images_uint8.float() / 255.0 - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def images_tensor(data: PreparedDataset) -> torch.Tensor:
    """(P, 3, H, W) uint8 on the CPU."""
    return torch.from_numpy(np.ascontiguousarray(data.images)).permute(0, 3, 1, 2).contiguous()
