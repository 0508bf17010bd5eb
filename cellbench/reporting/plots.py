"""Figures (PNG and PDF, sized and labelled for print)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_path  # noqa: E402

plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
                     "figure.dpi": 150, "savefig.bbox": "tight"})


def save(fig, stem: Path) -> list[Path]:
    paths = []
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix[1:])
        paths.append(path)
    plt.close(fig)
    return paths


def mae_by_method(summary: pd.DataFrame, datasets: list[str], methods: list[str], stem: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(datasets) + 1), 3.0))
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(datasets))
    for i, method in enumerate(methods):
        rows = [summary[(summary["dataset"] == d) & (summary["method"] == method)] for d in datasets]
        means = [r["mae_mean"].iloc[0] if len(r) else np.nan for r in rows]
        stds = [r["mae_std"].iloc[0] if len(r) else np.nan for r in rows]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, means, width, yerr=np.nan_to_num(stds), capsize=2,
               label=method)
    ax.set_xticks(x, datasets)
    ax.set_ylabel("test MAE (mean ± std over seeds)")
    ax.legend(ncol=min(len(methods), 4), frameon=False)
    ax.set_title("Counting error per dataset and method")
    return save(fig, stem)


def predicted_vs_true(frames: dict[str, pd.DataFrame], dataset: str, stem: Path) -> list[Path]:
    n = max(len(frames), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.6), squeeze=False)
    for ax, (method, frame) in zip(axes[0], frames.items()):
        ax.scatter(frame["true_count"], frame["pred_count"], s=8, alpha=0.7)
        lo = min(frame["true_count"].min(), frame["pred_count"].min())
        hi = max(frame["true_count"].max(), frame["pred_count"].max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        mae = (frame["pred_count"] - frame["true_count"]).abs().mean()
        ax.set_title(f"{method} (MAE {mae:.2f})")
        ax.set_xlabel("true count")
        ax.set_ylabel("predicted count")
    fig.suptitle(f"{dataset}: predicted against true count per test image (all seeds)")
    return save(fig, stem)


def learning_curves(logs: dict[str, list[pd.DataFrame]], dataset: str, stem: Path) -> list[Path]:
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(7.0, 2.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (method, frames) in enumerate(logs.items()):
        for j, frame in enumerate(frames):
            label = method if j == 0 else None
            ax_loss.plot(frame["epoch"], frame["train_loss"], color=colors[i % len(colors)], lw=0.8, label=label)
            val = frame.dropna(subset=["val_mae"])
            ax_val.plot(val["epoch"], val["val_mae"], color=colors[i % len(colors)], lw=0.8, label=label)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (method's own)")
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("validation MAE")
    ax_val.legend(frameon=False)
    fig.suptitle(f"{dataset}: learning curves (one line per seed)")
    return save(fig, stem)
