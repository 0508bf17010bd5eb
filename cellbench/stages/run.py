"""One run in one process: train the counter, then the localizer (for a method that declares one),
evaluate and localize, for one dataset, method and seed.

The workflow's ``run`` rule calls this: a run holds the device once, and pays for starting Python,
importing torch and initialising the device once instead of three or four times. Each step is
also a command of its own (``train``, ``localizer``, ``evaluate``, ``localize``) for debugging.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..methods import get_method
from ..ownership import own_run_dir
from .evaluate import evaluate_stage
from .localize import localize_stage
from .train import localizer_stage, train_stage

log = logging.getLogger(__name__)


def run_stage(config: dict, dataset: str, method: str, seed: int, prepared: Path, split_file: Path,
              run_dir: Path, threads: int | None = None) -> None:
    """Every step of a run, in order; the files of each in ``run_dir`` (see cellbench.runs)."""
    spec = get_method(method)
    steps = [("train", train_stage)] + ([("localizer", localizer_stage)] if spec.localizer else [])
    steps += [("evaluate", evaluate_stage), ("localize", localize_stage)]
    label = f"{dataset} / {method} / seed {seed}"
    with own_run_dir(run_dir, label):   # one writer per run folder; stop if the workflow is gone
        for name, step in steps:
            tic = time.perf_counter()
            step(config, dataset, method, seed, prepared, split_file, run_dir, threads=threads)
            log.info("%s: %s done in %.1f s", label, name, time.perf_counter() - tic)
