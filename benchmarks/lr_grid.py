"""The CPU track's learning rates, chosen on the validation split (never on test).

    python benchmarks/lr_grid.py --datasets VGG MBM ADI --lrs 1e-4 3e-4 1e-3 [--methods ...]
    python benchmarks/lr_grid.py --localizer --lrs 1e-4 3e-4 1e-3     # DCL's localizer, counter fixed

Each point trains one method's counter with the shared trainer at the CPU track's settings
(config/cpu.yaml and the method's `tracks: {cpu: ...}` entry, the learning rate replaced by the
grid's), seed 0's split, and records its best validation MAE, that MAE over the floor's (the
best constant's: the median validation count for every validation image), the epoch it was
reached at, and whether the run's guards marked it 'did not learn' (and why). No test image is
read. Finished points are skipped, so the grid resumes where it stopped.

Writes benchmarks/results/lr_grid_cpu/grid.csv (one row per dataset, method and learning rate),
every point's learning curve (<dataset>_<method>_lr<lr>.csv) and summary.md: per method, the
mean over datasets of (best val MAE / floor val MAE) per learning rate, and the learning rate with
the lowest mean. The chosen rates are copied by hand into each method.yaml.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cellbench.config import load_config  # noqa: E402
from cellbench.methods import build_localizer, build_model, get_method, selected_methods, training_sizes  # noqa: E402
from cellbench.stages.common import load_splits, setup, train_settings  # noqa: E402
from cellbench.data.registry import dataset_cells  # noqa: E402
from cellbench.inputs import stats_for  # noqa: E402
from cellbench.stages.train import counter_task  # noqa: E402
from cellbench.training.trainer import fit  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "lr_grid_cpu"
COLUMNS = ["dataset", "method", "stage", "lr", "best_val_mae", "floor_val_mae", "ratio_to_floor", "best_epoch",
           "epochs", "crop_size", "val_spread", "val_correlation", "status", "seconds"]


def done_points(path: Path) -> set[tuple[str, str, str, float]]:
    if not path.is_file():
        return set()
    frame = pd.read_csv(path)
    return {(r.dataset, r.method, r.stage, float(r.lr)) for r in frame.itertuples()}


def append(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def counter_point(config: dict, dataset: str, method: str, lr: float, seed: int = 0):
    """Fit the counter of ``method`` at ``lr``; the trainer's result and its settings."""
    setup(config, seed, config["train"]["threads"])
    spec = get_method(method)
    prepared = ROOT / f"results/prepared/{dataset}/patches.npz"
    split = ROOT / f"results/splits/{dataset}/seed{seed}.json"
    train, val = load_splits(config, prepared, split, "train", "val")
    model = build_model(spec, "none", training_sizes(config, spec), config["train"]["width"])
    task = counter_task(config, dataset, spec, model, seed, stats_for(model.init_description, train))
    settings = dataclasses.replace(train_settings(config, seed, spec=spec), lr=lr, checkpoint_seconds=1e9)
    log = OUT / f"{dataset}_{method}_lr{lr:g}.csv"
    return fit(task, train, val, settings, settings_device(config), OUT / "scratch.ckpt", log), settings, (train, val), task


def settings_device(config: dict):
    import torch
    return torch.device("cpu")


def localizer_point(config: dict, dataset: str, method: str, lr: float, seed: int = 0):
    """Fit the counter at the method's own rate, then its localizer at ``lr`` (counter frozen)."""
    from cellbench.localizer import CounterConditionedLocalizer
    from cellbench.training.losses import LOSSES
    from cellbench.training.trainer import Task
    spec = get_method(method)
    result, settings, (train, val), task = counter_point(config, dataset, method, settings_lr(config, spec), seed)
    counter = task.model
    counter.load_state_dict(result.state_dict)
    target = dataset_cells(dataset)
    localizer = build_localizer(spec, training_sizes(config, spec), config["train"]["width"])
    model = CounterConditionedLocalizer(counter, localizer, spec.stride, target.density_scale)
    output = spec.localizer.get("output")
    loc_task = Task(model=model, loss=LOSSES["density_mse"], stride=1, count_scale=target.density_scale,
                    sigma=target.sigma, density_scale=target.density_scale,
                    output=dict(output, layer=f"localizer.{output['layer']}") if output else None,
                    input_stats=task.input_stats, label=f"{dataset} / {method} localizer / seed {seed}")
    loc_settings = dataclasses.replace(train_settings(config, seed, "localizer", spec), lr=lr, checkpoint_seconds=1e9)
    log = OUT / f"{dataset}_{method}_localizer_lr{lr:g}.csv"
    return fit(loc_task, train, val, loc_settings, settings_device(config), OUT / "scratch.ckpt", log), loc_settings


def settings_lr(config: dict, spec) -> float:
    from cellbench.stages.common import learning_rate
    return learning_rate(config, spec)


def summary(grid: pd.DataFrame) -> str:
    lines = ["# Learning-rate grid of the CPU track (validation split of seed 0)", "",
             "Per method and learning rate: best validation MAE / the floor's validation MAE, per dataset and "
             "their mean (lower is better; 0.9 or more is 'did not learn'). Chosen: the lowest mean.", ""]
    for stage, part in grid.groupby("stage", sort=False):
        datasets = sorted(part["dataset"].unique())
        lines += [f"## {stage}", "", "| method | lr | " + " | ".join(datasets) + " | mean | chosen |",
                  "|---|---|" + "---|" * (len(datasets) + 2)]
        for method, rows in part.groupby("method", sort=True):
            means = rows.groupby("lr")["ratio_to_floor"].mean()
            complete = rows.groupby("lr")["dataset"].nunique() == len(datasets)
            best = means[complete].idxmin() if complete.any() else None
            for lr, group in rows.groupby("lr"):
                cells = []
                for d in datasets:
                    r = group[group["dataset"] == d]
                    cells.append(f"{r['ratio_to_floor'].iloc[0]:.3f} ({r['best_val_mae'].iloc[0]:.2f}, "
                                 f"ep {int(r['best_epoch'].iloc[0])}/{int(r['epochs'].iloc[0])})" if len(r) else "-")
                lines.append(f"| {method} | {lr:g} | " + " | ".join(cells) + f" | {means[lr]:.3f} | "
                             f"{'**yes**' if lr == best else ''} |")
        lines.append("")
    lines.append("Cells: ratio (best validation MAE, epoch it was reached / epochs).")
    return "\n".join(lines) + "\n"


def main() -> int:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["VGG", "MBM", "ADI"])
    parser.add_argument("--methods", nargs="*")
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-4, 3e-4, 1e-3])
    parser.add_argument("--localizer", action="store_true", help="the localizer's rate (methods with one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the grid's files (default: %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(ROOT / "config" / "cpu.yaml")
    config["train"]["threads"] = args.threads
    OUT = args.out
    OUT.mkdir(parents=True, exist_ok=True)
    grid_csv = OUT / "grid.csv"
    methods = args.methods or [m for m in selected_methods(config) if not get_method(m).fitted]
    if args.localizer:
        methods = [m for m in methods if get_method(m).localizer]
    stage = "localizer" if args.localizer else "counter"
    done = done_points(grid_csv)
    for method in methods:
        for dataset in args.datasets:
            for lr in args.lrs:
                if (dataset, method, stage, lr) in done:
                    continue
                tic = time.perf_counter()
                result, settings = (localizer_point(config, dataset, method, lr) if args.localizer
                                    else counter_point(config, dataset, method, lr)[:2])
                row = {"dataset": dataset, "method": method, "stage": stage, "lr": lr,
                       "best_val_mae": round(result.best_val_mae, 4), "floor_val_mae": round(result.floor_val_mae, 4),
                       "ratio_to_floor": round(result.best_val_mae / result.floor_val_mae, 4),
                       "best_epoch": result.best_epoch, "epochs": settings.epochs, "crop_size": settings.crop_size,
                       "val_spread": None if result.val_spread is None else round(result.val_spread, 3),
                       "val_correlation": None if result.val_correlation is None else round(result.val_correlation, 3),
                       "status": result.status, "seconds": round(time.perf_counter() - tic, 1)}
                append(grid_csv, row)
                print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
                (OUT / "summary.md").write_text(summary(pd.read_csv(grid_csv)))
    (OUT / "scratch.ckpt").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
