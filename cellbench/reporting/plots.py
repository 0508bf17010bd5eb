"""Figures (PNG and PDF, sized and labelled for print)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker as mticker  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..io import atomic_path  # noqa: E402

plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
                     "figure.dpi": 150, "savefig.bbox": "tight"})


def save(fig, stem: Path, track: str | None = None) -> list[Path]:
    """PNG and PDF of ``fig``; ``track``: the line saying which experiment made it (cellbench.reporting.track),
    printed under the figure so that a figure of a reduced track is never read as the paper's protocol."""
    if track:
        fig.text(0.0, 0.0, track, fontsize=7, ha="left", va="top", style="italic", transform=fig.transFigure)
    paths = []
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix[1:])
        paths.append(path)
    plt.close(fig)
    return paths


def mae_by_method(summary: pd.DataFrame, datasets: list[str], methods: list[str], stem: Path, track: str | None = None) -> list[Path]:
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(datasets) + 1), 3.0))
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(datasets))
    colors = method_colors(methods)
    marked = []
    for i, method in enumerate(methods):
        rows = [summary[(summary["dataset"] == d) & (summary["method"] == method)] for d in datasets]
        means = [r["mae_mean"].iloc[0] if len(r) else np.nan for r in rows]
        stds = [r["mae_std"].iloc[0] if len(r) else np.nan for r in rows]
        failed = [bool(len(r)) and int(r.get("n_collapsed", pd.Series([0])).iloc[0]) +
                  int(r.get("n_did_not_learn", pd.Series([0])).iloc[0]) > 0 for r in rows]
        bars = ax.bar(x + (i - (len(methods) - 1) / 2) * width, means, width, yerr=np.nan_to_num(stds), capsize=2,
                      label=method, color=colors[method])
        marked += [bar for bar, bad in zip(bars, failed) if bad]
    if any_failed := any(int(v) > 0 for c in ("n_collapsed", "n_did_not_learn") if c in summary for v in summary[c]):
        ax.text(0.0, 1.02, "hatched, pale: a seed collapsed or did not learn (the tables show no number)",
                transform=ax.transAxes, fontsize=7, va="bottom")
    ax.set_xticks(x, datasets)
    ax.set_ylabel("test MAE (mean ± std over seeds)")
    # beside the axes: above the bars it hid the tallest of them
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for bar in marked:   # after the legend (which copies the first bar's look); the tables print no number here
        bar.set_hatch("xxx")
        bar.set_alpha(0.35)
    ax.set_title("Counting error per dataset and method", pad=14 if any_failed else 6)
    return save(fig, stem, track)


def method_colors(methods: list[str]) -> dict[str, tuple]:
    """One colour per method, the same in every figure of a run (tab10, tab20 beyond ten methods)."""
    cmap = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    """(rows, columns) for n panels, at most max_cols wide, rows filled as evenly as possible."""
    rows = -(-max(n, 1) // max_cols)
    return rows, -(-max(n, 1) // rows)


def predicted_vs_true(frames: dict[str, pd.DataFrame], dataset: str, stem: Path, track: str | None = None) -> list[Path]:
    """One panel per method on shared axes, the identity line in each. A method whose predictions
    run far beyond the true counts (a collapsed run) would squeeze the others: the axes end at
    twice the largest true count, and a point beyond is drawn on the edge as a red triangle."""
    n = max(len(frames), 1)
    rows, cols = _grid(n, 4)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols + 0.4, 2.3 * rows + 0.5), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    true_max = max((f["true_count"].max() for f in frames.values()), default=1.0)
    pred_max = max((f["pred_count"].max() for f in frames.values()), default=1.0)
    pred_min = min((f["pred_count"].min() for f in frames.values()), default=0.0)
    hi = 1.05 * max(true_max, min(pred_max, 2 * true_max), 1.0)
    lo = min(0.0, max(pred_min, -0.5 * hi)) - 0.02 * hi
    for ax, (method, frame) in zip(axes.flat, frames.items()):
        true, pred = frame["true_count"].to_numpy(), frame["pred_count"].to_numpy()
        inside = (pred <= hi) & (pred >= lo)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, zorder=1)
        ax.scatter(true[inside], pred[inside], s=8, alpha=0.7, zorder=2)
        off = int((~inside).sum())
        if off:
            ax.scatter(true[~inside], np.clip(pred[~inside], lo, hi), s=14, marker="^", c="tab:red", zorder=3,
                       clip_on=False)
        mae = np.abs(pred - true).mean()
        ax.set_title(f"{method}\nMAE {mae:.2f}" + (f", {off} off scale" if off else ""))
    for ax in axes.flat[len(frames):]:
        ax.set_visible(False)
    for ax in axes.flat:
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
    fig.supxlabel("true count")
    fig.supylabel("predicted count")
    fig.suptitle(f"{dataset}: predicted against true count per test image (all seeds; dashed: y = x)")
    return save(fig, stem, track)


def learning_curves(logs: dict[str, list[pd.DataFrame]], dataset: str, stem: Path, track: str | None = None) -> list[Path]:
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(7.5, 2.9), layout="constrained")
    colors = method_colors(list(logs))
    for method, frames in logs.items():
        for j, frame in enumerate(frames):
            label = method if j == 0 else None
            ax_loss.plot(frame["epoch"], frame["train_loss"], color=colors[method], lw=0.8, label=label,
                         marker="." if len(frame) < 10 else None)
            val = frame.dropna(subset=["val_mae"])
            ax_val.plot(val["epoch"], val["val_mae"], color=colors[method], lw=0.8,
                        marker="." if len(val) < 10 else None)
    losses = [f["train_loss"] for frames in logs.values() for f in frames]
    if losses and all((loss.dropna() > 0).all() for loss in losses):
        ax_loss.set_yscale("log")  # the methods' own losses differ by orders of magnitude
    for ax, label in ((ax_loss, "training loss (method's own)"), (ax_val, "validation MAE")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if logs:
        fig.legend(loc="outside right upper", frameon=False, ncol=1 + len(logs) // 12)
    fig.suptitle(f"{dataset}: learning curves (one line per seed)")
    return save(fig, stem, track)


def f1_by_radius(localization: pd.DataFrame, dataset: str, stem: Path, track: str | None = None) -> list[Path]:
    """Test-set F1 against the matching radius, one line per method and source map (mean ± std
    over seeds), one panel per rule; ``localization``: the dataset's rows of
    ``collect.localization_per_seed``."""
    rules = [("threshold", "threshold rule (chosen on validation)"), ("count", "count-guided rule")]
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.0), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lines = localization[["method", "source"]].drop_duplicates().itertuples(index=False)
    for i, (method, source) in enumerate(lines):
        for ax, (rule, title) in zip(axes[0], rules):
            rows = localization[(localization["method"] == method) & (localization["source"] == source)
                                & (localization["rule"] == rule)]
            stats = rows.groupby("radius")["f1"].agg(["mean", "std"]).reset_index()
            label = method if source == "counter" else f"{method} ({source})"
            ax.errorbar(stats["radius"], stats["mean"], yerr=stats["std"].fillna(0.0), marker="o", ms=3, lw=1,
                        capsize=2, color=colors[i % len(colors)], ls="-" if source == "counter" else "--",
                        label=label)
            ax.set_title(title)
            ax.set_xlabel("matching radius (original-image pixels)")
    primary = localization.loc[localization["primary"].astype(bool), "radius"]
    for ax in axes[0]:
        if len(primary):
            ax.axvline(primary.iloc[0], color="0.6", lw=0.8, ls=":")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3, lw=0.5)
    axes[0, 0].set_ylabel("test F1 (mean ± std over seeds)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 4) or 1,
               frameon=False)
    fig.suptitle(f"{dataset}: localization F1 against matching radius (dotted: primary radius)", y=1.03)
    return save(fig, stem, track)


def points_over_dots(rows: list[tuple[str, np.ndarray, list[tuple[str, dict]]]], dataset: str, note: str,
                     stem: Path, track: str | None = None) -> list[Path]:
    """Predicted points over the true dots. ``rows``: per test patch (title, image, panels), each
    panel (title, {"tp": matched predictions, "fp": unmatched predictions, "fn": missed true dots,
    "true": all true dots}) in the shown image's pixels."""
    cols = 1 + max((len(panels) for _, _, panels in rows), default=0)
    fig, axes = plt.subplots(len(rows) or 1, cols, figsize=(1.9 * cols, 2.05 * max(len(rows), 1)), squeeze=False)
    for r, (title, image, panels) in enumerate(rows):
        true = panels[0][1]["true"] if panels else np.zeros((0, 2))
        axes[r, 0].imshow(image)
        axes[r, 0].scatter(true[:, 0], true[:, 1], s=6, facecolors="none", edgecolors="yellow", linewidths=0.6)
        axes[r, 0].set_title(f"{title}\ntrue dots: {len(true)}")
        for c, (label, pts) in enumerate(panels, start=1):
            ax = axes[r, c]
            ax.imshow(image)
            ax.scatter(pts["fn"][:, 0], pts["fn"][:, 1], s=9, facecolors="none", edgecolors="yellow", linewidths=0.7)
            ax.scatter(pts["tp"][:, 0], pts["tp"][:, 1], s=5, c="lime", linewidths=0)
            ax.scatter(pts["fp"][:, 0], pts["fp"][:, 1], s=10, c="red", marker="x", linewidths=0.7)
            ax.set_title(label)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(-0.5, (rows[0][1].shape[1] if rows else 1) - 0.5)
        ax.set_ylim((rows[0][1].shape[0] if rows else 1) - 0.5, -0.5)
    fig.suptitle(f"{dataset}: predicted points on test patches ({note})\n"
                 "green dot: matched prediction, red x: false prediction, yellow circle: missed true dot",
                 y=1.0 + 0.4 / fig.get_figheight())
    return save(fig, stem, track)


def data_efficiency(summary: pd.DataFrame, classic: pd.DataFrame, datasets: list[str], methods: list[str],
                    floors: list[str], stem: Path, track: str | None = None) -> list[Path]:
    """Test MAE against training images, both axes logarithmic (the MAEs of methods that learned and
    of the floor differ tenfold), one panel per dataset, a line per method with its spread over
    repeats (error bars: std); the floor dashed; open circles where a run failed; the classic
    published numbers (other protocols) in black. ``methods``: every selected method, in order (a
    method keeps its colour of the other figures)."""
    cols = len(datasets)
    fig, axes = plt.subplots(1, cols, figsize=(4.2 * cols + 1.8, 4.4), squeeze=False)
    colors = method_colors(methods)
    methods = [m for m in methods if m in set(summary["method"])]
    any_failed = False
    for ax, dataset in zip(axes[0], datasets):
        part = summary[summary["dataset"] == dataset]
        for method in methods:
            line = part[(part["method"] == method) & (part["n_runs"] > 0)].sort_values("train_images")
            if not len(line):
                continue
            floor = method in floors
            ax.errorbar(line["train_images"], line["mae_mean"], yerr=np.nan_to_num(line["mae_std"].to_numpy(float)),
                        color="0.45" if floor else colors[method], ls="--" if floor else "-", marker="o", ms=3,
                        lw=1.0, capsize=2, label=f"{method} (floor)" if floor else method)
            bad = line[line["n_failed"] > 0]
            if len(bad):
                any_failed = True
                ax.plot(bad["train_images"], bad["mae_mean"], ls="none", marker="o", ms=7, mfc="none",
                        mec=colors[method], mew=1.0)
        published = classic[classic["dataset"] == dataset]
        groups = list(published.groupby("method", sort=False))
        for k, ((name, group), marker) in enumerate(zip(groups, "*PXDs^v")):
            nudge = 2 ** (0.07 * (k - (len(groups) - 1) / 2))   # side by side at the same size
            ax.errorbar(group["train_images"] * nudge, group["mae"], yerr=np.nan_to_num(group["mae_std"].to_numpy(float)),
                        ls="none", marker=marker, ms=5, color="black", capsize=2, elinewidth=0.8,
                        label=f"published: {name}")
        sizes = sorted(part["train_images"].unique())
        whole = set(part[part["whole_split"]]["train_images"])
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [f"{int(s)}\n(all)" if s in whole else str(int(s)) for s in sizes])
        ax.set_yscale("log")
        shown = [v for line in ax.get_lines() for v in np.asarray(line.get_ydata(), float) if np.isfinite(v) and v > 0]
        if shown:   # a margin that keeps a labelled tick below the lowest point
            ax.set_ylim(min(shown) / 1.25, max(shown) * 1.25)
        ax.yaxis.set_major_locator(mticker.FixedLocator([1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200]))
        ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.minorticks_off()
        ax.grid(axis="y", lw=0.4, color="0.85")
        ax.set_xlabel("training images ((all): the whole split, one run)")
        ax.set_title(dataset)
    axes[0][0].set_ylabel("test MAE, log scale (mean ± std over repeats)")
    handles = {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    axes[0][-1].legend(handles.values(), handles.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.text(1.0, 0.01, "published: other protocols (full-width networks, other test images); see the table's notes",
             fontsize=7, ha="right", va="bottom", transform=fig.transFigure)
    fig.subplots_adjust(bottom=0.2, wspace=0.25)   # room under the axes for the track's caption
    if any_failed:
        axes[0][0].text(0.0, 1.08, "circled: a run at that size collapsed or did not learn", transform=axes[0][0].transAxes,
                        fontsize=7, va="bottom")
    return save(fig, stem, track)
