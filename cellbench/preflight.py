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
            return len(data["patch_image"])   # patches: MBM has four per image
    return APPROX_PATCHES.get(dataset, 200)


def cpu_training_steps(config: dict) -> int:
    """Training steps of every selected run (counter and localizer), over all datasets and seeds."""
    from .config import seeds_of

    t = config["train"]
    steps = 0
    for dataset in config["datasets"]:
        seeds = len(seeds_of(config, dataset))
        per_epoch = math.ceil(_patches(dataset) * config["split"]["train"] / t["batch_size"])
        for name in selected_methods(config):
            spec = get_method(name)
            epochs = (t["epochs"] if not spec.fitted else 0) + (config["localizer"]["epochs"] if spec.localizer else 0)
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


# --- The reference kit (benchmarks/reference_run.sh): check everything a part needs before the GPU
# time starts, and estimate what the part costs. How the figures below were made:
# benchmarks/README.md, "The ten-minute plan".

#: Effective training throughput assumed for an H100/H200 without a measurement: VGG-19's convolutions
#: under bf16 autocast run at 100-200 TFLOP/s on these GPUs; the lower end is taken.
ASSUMED_GPU_FLOPS = 100e12
#: A step of a small network is bound by kernel launches, not arithmetic (about 100 kernels forward
#: and backward at 5-10 us each, plus Adam's fused step).
MIN_GPU_STEP_SECONDS = 0.005
#: Per run: a new process imports torch, initialises CUDA, autotunes cuDNN, builds and saves the
#: model, evaluates and localizes the test split (6-10 s measured per process before runs were one
#: job; the evaluation and localization of 90 images add a few seconds).
RUN_OVERHEAD_SECONDS = 20.0
#: Validating 10 VGG-sized images and keeping the best weights, per epoch.
VALIDATION_SECONDS = 0.05
DEFAULT_PATCH = 256
FLOP_PROBE = 64


def kit_problems(config: dict) -> list[str]:
    """What would stop a reference part on a machine without internet: a dataset with neither a
    prepared file nor a local copy, a selected method that does not build at the config's width, a
    module the workflow imports that is not installed. Empty when the part can start."""
    import importlib.util

    from .config import data_mirror
    from .data.registry import load_dataset
    from .methods import training_sizes, validate_method

    problems = []
    mirror = data_mirror(config)
    for dataset in config["datasets"]:
        if (project_root() / "results" / "prepared" / dataset / "patches.npz").is_file():
            continue
        folder = load_dataset(dataset).folder
        if mirror is None or not (mirror / folder).is_dir():
            where = f"{mirror / folder} does not exist" if mirror else "no data mirror is set"
            problems.append(f"dataset {dataset}: no local copy ({where}); this machine may have no internet: put "
                            f"the mirror's {folder}/ there or set CELLBENCH_DATA_MIRROR")
    for name in selected_methods(config):
        spec = get_method(name)
        try:
            validate_method(spec, training_sizes(config, spec), config["train"]["width"])
        except Exception as exc:  # any failure to build is a problem to report, not a crash
            problems.append(f"method {name}: does not build ({type(exc).__name__}: {exc})")
    for module in ("snakemake", "yaml", "jsonschema", "pandas", "scipy", "matplotlib", "torchvision"):
        if importlib.util.find_spec(module) is None:
            problems.append(f"python module {module!r} is not installed (carry its wheel: scripts/build-wheels.sh)")
    return problems


def step_flops(config: dict, name: str) -> tuple[float, float]:
    """FLOPs of one training step (forward and backward: 3 x the forward, at batch ``train.batch_size``)
    of a method's counter and of its localizer stage (0 without one), counted by torch's FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .methods import build_localizer, build_model
    from .stages.common import train_settings

    spec = get_method(name)
    if spec.fitted:
        return 0.0, 0.0
    size = train_settings(config, 0, spec=spec).crop_size or DEFAULT_PATCH
    batch, width = config["train"]["batch_size"], config["train"]["width"]

    def forward_flops(model: torch.nn.Module, channels: int) -> float:
        # Counted on a small input and scaled by the area: a convolution's cost is proportional to it,
        # and the count then takes a fraction of a second on the CPU for every method.
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model.eval()(torch.zeros(1, channels, FLOP_PROBE, FLOP_PROBE))
        return float(counter.get_total_flops()) * (size / FLOP_PROBE) ** 2

    counter = forward_flops(build_model(spec, "none", [FLOP_PROBE], width), 3)
    localizer = forward_flops(build_localizer(spec, [FLOP_PROBE], width), 4) if spec.localizer else 0.0
    # The localizer stage runs the frozen counter forward and trains the localizer.
    return 3 * batch * counter, batch * (counter + 3 * localizer)


def gpu_estimate(config: dict, measured: dict | None = None, jobs: int = 1) -> dict:
    """Seconds of GPU time the config's runs take: per run, (epochs x steps per epoch) x the step's
    FLOPs / throughput (at least MIN_GPU_STEP_SECONDS a step), validation every epoch, and the run's
    overhead. ``measured``: benchmarks/speed.py's JSON, whose dcl_no_gmp epoch sets the throughput
    (else ASSUMED_GPU_FLOPS). Returns the sum over runs (one job at a time) and that sum over
    ``jobs`` (runs sharing the GPU perfectly), the range the part's wall time should fall in."""
    from .config import seeds_of
    from .stages.common import train_settings

    t, loc = config["train"], config["localizer"]
    flops = ASSUMED_GPU_FLOPS
    if measured and measured.get("trainer_images_per_s"):
        # speed.py measures dcl_no_gmp at full width on whole patches
        reference = step_flops({**config, "train": {**t, "crop_size": None, "width": 1.0}}, "dcl_no_gmp")[0]
        flops = reference * measured["trainer_images_per_s"] / t["batch_size"]
    per_method, cache = {}, {}
    for dataset in config["datasets"]:
        steps = math.ceil(_patches(dataset) * config["split"]["train"] / t["batch_size"])
        for name in selected_methods(config):
            spec = get_method(name)
            if name not in cache:
                cache[name] = step_flops(config, name)
            counter, localizer = cache[name]
            epochs = train_settings(config, 0, spec=spec).epochs if not spec.fitted else 0
            seconds = RUN_OVERHEAD_SECONDS + epochs * (steps * max(counter / flops, MIN_GPU_STEP_SECONDS)
                                                        + VALIDATION_SECONDS)
            if spec.localizer:
                seconds += loc["epochs"] * (steps * max(localizer / flops, MIN_GPU_STEP_SECONDS) + VALIDATION_SECONDS)
            per_method[name] = per_method.get(name, 0.0) + seconds * len(seeds_of(config, dataset))
    total = sum(per_method.values())
    return {"seconds_one_job": total, "seconds_shared": total / max(jobs, 1), "per_method": per_method,
            "throughput_flops": flops, "measured": bool(measured)}
