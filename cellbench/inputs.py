"""Images as network inputs: uint8 patches to ImageNet-normalised float tensors."""

from __future__ import annotations

import numpy as np
import torch

from .data.prepare import PreparedDataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise(images_uint8: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=images_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images_uint8.device).view(1, 3, 1, 1)
    x = (images_uint8.float() / 255.0 - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def images_tensor(data: PreparedDataset) -> torch.Tensor:
    """(P, 3, H, W) uint8 on the CPU."""
    return torch.from_numpy(np.ascontiguousarray(data.images)).permute(0, 3, 1, 2).contiguous()
