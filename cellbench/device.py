"""Device choice and reproducibility switches."""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch

from .errors import ConfigError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} asked for but CUDA is not available here; use auto or cpu")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool, training: bool = True) -> None:
    """Seeds, and cuDNN's algorithm choice: autotuned (``cudnn.benchmark``) for training, whose
    thousands of steps of one shape repay the search, never for inference, which runs a few batches.

    ``deterministic``: deterministic algorithms where PyTorch has them. Some CUDA backward passes
    have none (bilinear upsampling, grid_sample, adaptive pooling: DCL and SASNet use them); there
    PyTorch warns instead of stopping (``warn_only``), and the run is deterministic except for those
    ops. The CPU is deterministic either way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        if torch.cuda.is_available():
            log.info("train.deterministic: deterministic algorithms where CUDA has them; ops without one "
                     "(bilinear upsampling, grid_sample and adaptive pooling backward) warn and stay "
                     "non-deterministic")
    else:
        torch.backends.cudnn.benchmark = training
