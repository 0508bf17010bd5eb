"""Before the full benchmark starts: refuse to train it on a CPU without a word.

``bash run.sh full`` calls ``python -m cellbench preflight``. With ``train.device: auto`` and no
GPU, the workflow would fall back to the CPU, where a VGG-19 training step takes about 10 s:
the check stops with the estimated time and says how to insist (``CELLBENCH_ALLOW_CPU=1`` or
``train.device: cpu`` set explicitly) or to run the smoke profile instead.
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import project_root
from .methods import get_method, selected_methods

ALLOW_CPU_ENV = "CELLBENCH_ALLOW_CPU"
#: A VGG-19 method's training step at batch 8 on a 2-core CPU (issue 15); lighter methods are faster.
CPU_SECONDS_PER_STEP = 10.0
#: Patches per dataset when its prepared file is not there yet (README, Datasets): one per image
#: for VGG and ADI, four per MBM image, about three per DCC image.
APPROX_PATCHES = {"VGG": 200, "MBM": 176, "ADI": 200, "DCC": 530}


def _patches(dataset: str) -> int:
    prepared = project_root() / "results" / "prepared" / dataset / "patches.npz"
    if prepared.is_file():
        with np.load(prepared, allow_pickle=False) as data:
            return len(data["image_ids"])
    return APPROX_PATCHES.get(dataset, 200)


def cpu_training_steps(config: dict) -> int:
    """Training steps of every selected run (counter and localizer), over all datasets and seeds."""
    t, seeds = config["train"], len(config["seeds"])
    steps = 0
    for dataset in config["datasets"]:
        per_epoch = math.ceil(_patches(dataset) * config["split"]["train"] / t["batch_size"])
        for name in selected_methods(config):
            spec = get_method(name)
            epochs = (t["epochs"] if spec.trainable else 0) + (config["localizer"]["epochs"] if spec.localizer else 0)
            steps += seeds * epochs * per_epoch
    return steps


def preflight(config: dict, cuda_available: bool | None = None) -> str | None:
    """None when the benchmark may start; else the message that stops it."""
    import torch

    from .training.trainer import duration_text

    if config["train"]["device"] != "auto" or os.environ.get(ALLOW_CPU_ENV) == "1":
        return None  # a device named explicitly, or the CPU insisted on
    if torch.cuda.is_available() if cuda_available is None else cuda_available:
        return None
    steps = cpu_training_steps(config)
    seconds = steps * CPU_SECONDS_PER_STEP * config["train"]["batch_size"] / 8
    return (f"no GPU here (torch.cuda.is_available() is False) and train.device is auto, so the full benchmark "
            f"would train on the CPU: {len(selected_methods(config))} methods x {len(config['datasets'])} datasets "
            f"x {len(config['seeds'])} seeds, about {steps:,} training steps; at about "
            f"{CPU_SECONDS_PER_STEP:g} s per step (a VGG-19 method at batch 8 on a 2-core CPU) that is about "
            f"{duration_text(seconds)}. Nothing was started.\n"
            f"  to see every stage work in minutes on this machine:  bash run.sh smoke\n"
            f"  to run the full benchmark on the CPU all the same:     {ALLOW_CPU_ENV}=1 bash run.sh full\n"
            f"  (or set train.device: cpu in config/config.yaml)")
