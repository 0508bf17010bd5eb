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
import sys
from pathlib import Path

import pandas as pd
import torch

from cellbench.config import data_mirror, load_config
from cellbench.data.prepare import PreparedDataset, prepare
from cellbench.data.registry import load_dataset
from cellbench.data.splits import make_split
from cellbench.methods import selected_methods
from cellbench.stages.first_steps import HEALTHY, first_steps, summary


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


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, NullFormatter
    datasets = list(dict.fromkeys(frame["dataset"]))
    runs = list(dict.fromkeys(zip(frame["method"], frame["setting"])))
    palette = plt.get_cmap("tab20").colors
    colour = {run: palette[i % len(palette)] for i, run in enumerate(runs)}
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets) + 2.6, 3.8), squeeze=False, sharey=True)
    for ax, dataset in zip(axes[0], datasets):
        for (method, setting), group in frame[frame["dataset"] == dataset].groupby(["method", "setting"], sort=False):
            ax.plot(group["step"], group["ratio"], marker=".", color=colour[(method, setting)], lw=1.2)
        ax.axhspan(*HEALTHY, color="green", alpha=0.08)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.set_yticks([0.2, 0.5, 1, 2, 5], labels=["0.2", "0.5", "1", "2", "5"])
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(dataset)
        ax.set_xlabel("training step (batch of 8)")
    axes[0, 0].set_ylabel("predicted / true count of the batch")
    handles = [plt.Line2D([], [], color=colour[r], marker=".", label=r[0] if r[1] == "default" else f"{r[0]} ({r[1]})")
               for r in runs]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.suptitle(f"First training steps (shaded: the healthy range {HEALTHY[0]} to {HEALTHY[1]})")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")


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
    parser.add_argument("--report-only", action="store_true",
                        help="only rebuild summary.md and the plot from --out/first_steps.csv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    config = load_config()
    config["train"].update(device="cpu", pretrained="none", crop_size=None, amp=False, channels_last=False)
    for item in args.set:
        key, _, value = item.partition("=")
        number = float(value)
        config["train"][key] = int(number) if number.is_integer() else number
    setting = ",".join(args.set) or "default"
    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / "first_steps.csv"
    methods = [] if args.report_only else args.methods or selected_methods(config)
    for dataset in args.datasets if methods else []:
        data = prepared(dataset, config, args.out)
        for method in methods:
            train, val = train_split(data, config, args.seed)
            rows = pd.DataFrame(first_steps(config, dataset, method, train, val, args.steps, args.seed, setting))
            rows.to_csv(csv, mode="a", header=not csv.is_file(), index=False, float_format="%.5g")
    frame = pd.read_csv(csv)
    table = summary(frame, args.start)
    (args.out / "summary.md").write_text(table.to_markdown(index=False, floatfmt=".3g") + "\n")
    plot(frame, args.out / "first_steps.png")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
