"""The first steps of training, checked on the CPU: does any method collapse or blow up?

Trains every selected method on every selected dataset for the first K steps at the full
protocol's settings (whole 256x256 patches, batch 8, Adam, the configured learning rate and
warm-up, random initialisation) with the shared trainer, and writes per step the loss and the
ratio of predicted to true count of the step's batch (the output before that step's update):

    python benchmarks/first_steps.py --steps 20 --out benchmarks/results/first_steps
    python benchmarks/first_steps.py --datasets MBM --methods dcl --set warmup_epochs=0

Outputs in --out: first_steps.csv (one row per dataset, method, setting and step; appended as
each run ends, so an interrupted check keeps what it measured), summary.md (ratio at step 1,
lowest and highest ratio from step --from on, verdict) and first_steps.png.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cellbench.config import data_mirror, load_config
from cellbench.data.prepare import PreparedDataset, prepare
from cellbench.data.registry import load_dataset
from cellbench.data.splits import make_split
from cellbench.device import seed_everything
from cellbench.methods import build_model, get_method, selected_methods
from cellbench.stages.common import train_settings
from cellbench.stages.train import counter_task
from cellbench.training.batches import make_batch, plan_epoch
from cellbench.training.trainer import Trainer

log = logging.getLogger("first_steps")
HEALTHY = (0.2, 5.0)   # predicted/true count ratio accepted from step --from on


def prepared(dataset: str, config: dict, cache: Path) -> PreparedDataset:
    """The dataset's patches: the workflow's if it prepared them, else prepared here once."""
    for path in (Path("results/prepared") / dataset / "patches.npz", cache / f"{dataset}.npz"):
        if path.is_file():
            return PreparedDataset.load(path)
    spec = load_dataset(dataset)
    mirror = data_mirror(config)
    if mirror is None or not (mirror / spec.folder).is_dir():
        sys.exit(f"first_steps: {dataset} is not in the data mirror ({mirror}); run the workflow's prepare first")
    data = prepare(spec.read_samples(mirror), spec.preprocess)
    data.save(cache / f"{dataset}.npz")
    return data


def train_split(data: PreparedDataset, config: dict, seed: int) -> tuple[PreparedDataset, PreparedDataset]:
    ratios = {k: config["split"][k] for k in ("train", "test", "val")}
    split = make_split(data.image_ids.tolist(), data.image_groups.tolist(), ratios, seed, config["split"]["grouped"])
    return data.subset(split["train"]), data.subset(split["val"])


def first_steps(config: dict, dataset: str, method: str, data: PreparedDataset, steps: int, seed: int,
                setting: str) -> list[dict]:
    """Per step: loss, mean predicted and true count of the batch, their ratio, learning rate."""
    seed_everything(seed, False)
    spec = get_method(method)
    train, val = train_split(data, config, seed)
    settings = train_settings(config, seed)
    task = counter_task(config, dataset, spec, build_model(spec, "none"), seed)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(task, train, val, settings, torch.device("cpu"), Path(tmp) / "c.ckpt", Path(tmp) / "c.csv")
    trainer.initialise_output()
    rows, step, tic = [], 0, time.perf_counter()
    while step < steps:
        plan = plan_epoch(trainer.train_data, settings.batch_size, trainer.generator, settings.crop_size)
        for i in range(trainer.steps_per_epoch):
            if step == steps:
                break
            batch = make_batch(trainer.train_data, plan, i, task.stride, settings.channels_last)
            lr = trainer.optimizer.param_groups[0]["lr"] if trainer.optimizer else 0.0
            if task.trainable:
                loss, pred = trainer.train_step(batch)
            else:
                with torch.no_grad():
                    pred = trainer.model(batch.images)
                loss = task.loss(pred, batch)
            predicted = float(pred.float().sum()) / task.count_scale / len(batch.counts)
            true = float(batch.counts.sum()) / len(batch.counts)
            step += 1
            rows.append({"dataset": dataset, "method": method, "setting": setting, "step": step,
                         "loss": float(loss), "pred_count": predicted, "true_count": true,
                         "ratio": predicted / true if true > 0 else math.nan, "lr": lr,
                         "seconds": time.perf_counter() - tic})
            log.info("%s %s %s step %d/%d: loss %.4g, predicted %.1f, true %.1f per patch", dataset, method, setting,
                     step, steps, float(loss), predicted, true)
    return rows


def summary(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    def one(group: pd.DataFrame) -> pd.Series:
        later = group[group["step"] >= start]["ratio"]
        healthy = bool(later.between(*HEALTHY).all()) if len(later) else False
        return pd.Series({"steps": int(group["step"].max()), "ratio_step1": group["ratio"].iloc[0],
                          f"min_ratio_from_{start}": later.min(), f"max_ratio_from_{start}": later.max(),
                          "seconds_per_step": group["seconds"].iloc[-1] / len(group),
                          "verdict": "healthy" if healthy else "COLLAPSED or unstable"})
    return frame.groupby(["dataset", "method", "setting"], sort=False).apply(one, include_groups=False).reset_index()


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    datasets = list(dict.fromkeys(frame["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.8), squeeze=False, sharey=True)
    for ax, dataset in zip(axes[0], datasets):
        for (method, setting), group in frame[frame["dataset"] == dataset].groupby(["method", "setting"], sort=False):
            label = method if setting == "default" else f"{method} ({setting})"
            ax.plot(group["step"], group["ratio"], marker=".", label=label)
        ax.axhspan(*HEALTHY, color="green", alpha=0.08)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"{dataset}: first training steps")
        ax.set_xlabel("step (batch of 8 patches, 256x256)")
    axes[0, 0].set_ylabel("predicted / true count of the batch")
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["VGG", "MBM", "ADI"])
    parser.add_argument("--methods", nargs="+", default=None, help="default: every method")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--from", dest="start", type=int, default=10, help="first step the verdict looks at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a train.* setting to change, e.g. warmup_epochs=0 (names the setting in the output)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/first_steps"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    config = load_config()
    config["train"].update(device="cpu", pretrained="none", crop_size=None, amp=False, channels_last=False)
    for item in args.set:
        key, _, value = item.partition("=")
        config["train"][key] = float(value)
    setting = ",".join(args.set) or "default"
    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / "first_steps.csv"
    methods = args.methods or selected_methods(config)
    for dataset in args.datasets:
        data = prepared(dataset, config, args.out)
        for method in methods:
            rows = pd.DataFrame(first_steps(config, dataset, method, data, args.steps, args.seed, setting))
            rows.to_csv(csv, mode="a", header=not csv.is_file(), index=False, float_format="%.5g")
    frame = pd.read_csv(csv)
    table = summary(frame, args.start)
    (args.out / "summary.md").write_text(table.to_markdown(index=False, floatfmt=".3g") + "\n")
    plot(frame, args.out / "first_steps.png")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
