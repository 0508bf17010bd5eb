"""Tables 1-3 as CSV (tidy), Markdown and LaTeX, with the paper's numbers beside ours.

"MSE" in the paper is the root mean squared error: columns are labelled "MSE (=RMSE)".
A run that is missing is written as "missing", never as a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..io import write_text

METRIC_LABELS = {"mae": "MAE", "rmse": "MSE (=RMSE)"}
MISSING = "missing"


@dataclass
class Grid:
    """A table of text cells; ``bold`` marks the best cell of a column."""
    title: str
    columns: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]]
    notes: list[str]


def _fmt(mean: float, std: float | None = None, n: int | None = None, digits: int = 2) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return MISSING
    text = f"{mean:.{digits}f}"
    if std is not None and not math.isnan(std):
        text += f" ± {std:.{digits}f}"
    if n is not None:
        text += f" (n={n})"
    return text


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def table2(summary: pd.DataFrame, paper: pd.DataFrame, datasets: list[str], methods: list[str],
           paper_names: dict[str, str | None]) -> tuple[pd.DataFrame, Grid]:
    """Our methods on every dataset (mean ± std over seeds), the paper's value and the difference."""
    tidy, cells, best = [], {}, {}
    # Table 2 rows first; a method only in Table 3 (the ablation) takes its numbers from there.
    p2 = paper.sort_values("table", kind="stable").drop_duplicates(["method", "dataset"])
    for dataset in datasets:
        for metric in METRIC_LABELS:
            means = {}
            for method in methods:
                row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
                mean = _num(row[f"{metric}_mean"].iloc[0]) if len(row) else float("nan")
                std = _num(row[f"{metric}_std"].iloc[0]) if len(row) else float("nan")
                n = int(row["n_seeds"].iloc[0]) if len(row) else 0
                ref = p2[(p2["method"] == paper_names.get(method)) & (p2["dataset"] == dataset)]
                paper_value = float(ref[metric].iloc[0]) if len(ref) else float("nan")
                tidy.append({"dataset": dataset, "method": method, "paper_name": paper_names.get(method),
                             "metric": METRIC_LABELS[metric], "mean": mean, "std": std, "n_seeds": n,
                             "paper": paper_value, "diff_vs_paper": mean - paper_value})
                cells[(method, dataset, metric)] = (mean, std, n, paper_value)
                if not math.isnan(mean):
                    means[method] = mean
            if means:
                best[(dataset, metric)] = min(means, key=means.get)
    frame = pd.DataFrame(tidy)
    frame["best"] = [best.get((r.dataset, next(k for k, v in METRIC_LABELS.items() if v == r.metric))) == r.method
                     for r in frame.itertuples()]
    columns = ["method", "row"] + [f"{d} {METRIC_LABELS[m]}" for d in datasets for m in METRIC_LABELS]
    rows, bold = [], set()
    for method in methods:
        ours, ref, diff = [method, "ours (mean ± std, n seeds)"], [method, f"paper ({paper_names.get(method) or '-'})"], [method, "ours - paper"]
        for dataset in datasets:
            for metric in METRIC_LABELS:
                mean, std, n, paper_value = cells[(method, dataset, metric)]
                if best.get((dataset, metric)) == method:
                    bold.add((len(rows), len(ours)))
                ours.append(_fmt(mean, std, n) if n else MISSING)
                ref.append(_fmt(paper_value, digits=1) if not math.isnan(paper_value) else "-")
                delta = mean - paper_value
                diff.append(f"{delta:+.2f}" if not math.isnan(delta) else "-")
        rows += [ours, ref, diff]
    notes = ["MSE (=RMSE): the paper's 'MSE' is the root of the mean squared error; ours is computed the same way.",
             "Bold: lowest mean among our methods in that column. 'missing': the run has no predictions.csv."]
    return frame, Grid("Table 2: counting error per dataset", columns, rows, bold, notes)


def table3(summary: pd.DataFrame, paper: pd.DataFrame, datasets: list[str], full: str = "dcl",
           ablated: str = "dcl_no_gmp") -> tuple[pd.DataFrame, Grid]:
    """With and without GMP, and the improvement in % ((without - with) / without)."""
    p3 = paper[paper["table"] == 3]
    tidy = []
    columns = ["model"] + [f"{d} {METRIC_LABELS[m]}" for d in datasets for m in METRIC_LABELS]
    rows = {k: [k] for k in ("w/o GMP (ours)", "full model (ours)", "improvement (ours)",
                             "w/o GMP (paper)", "full model (paper)", "improvement (paper)")}
    bold = set()
    for dataset in datasets:
        for metric in METRIC_LABELS:
            def value(method):
                row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
                if not len(row) or row["n_seeds"].iloc[0] == 0:
                    return float("nan"), float("nan"), 0
                return _num(row[f"{metric}_mean"].iloc[0]), _num(row[f"{metric}_std"].iloc[0]), int(row["n_seeds"].iloc[0])
            without, with_ = value(ablated), value(full)
            improvement = 100 * (without[0] - with_[0]) / without[0] if without[2] and with_[2] else float("nan")
            paper_without = p3[(p3["method"] == "w/o GMP") & (p3["dataset"] == dataset)][metric]
            paper_with = p3[(p3["method"] == "DCL (Ours)") & (p3["dataset"] == dataset)][metric]
            pw = float(paper_without.iloc[0]) if len(paper_without) else float("nan")
            pf = float(paper_with.iloc[0]) if len(paper_with) else float("nan")
            paper_improvement = 100 * (pw - pf) / pw if pw == pw and pf == pf else float("nan")
            tidy.append({"dataset": dataset, "metric": METRIC_LABELS[metric],
                         "without_gmp_mean": without[0], "without_gmp_std": without[1], "without_gmp_seeds": without[2],
                         "with_gmp_mean": with_[0], "with_gmp_std": with_[1], "with_gmp_seeds": with_[2],
                         "improvement_pct": improvement, "paper_without_gmp": pw, "paper_with_gmp": pf,
                         "paper_improvement_pct": paper_improvement})
            rows["w/o GMP (ours)"].append(_fmt(*without) if without[2] else MISSING)
            rows["full model (ours)"].append(_fmt(*with_) if with_[2] else MISSING)
            rows["improvement (ours)"].append(f"{improvement:.1f}%" if improvement == improvement else MISSING)
            rows["w/o GMP (paper)"].append(_fmt(pw, digits=1))
            rows["full model (paper)"].append(_fmt(pf, digits=1))
            rows["improvement (paper)"].append(f"{paper_improvement:.1f}%")
            if without[2] and with_[2]:
                bold.add((0 if without[0] < with_[0] else 1, len(rows["w/o GMP (ours)"]) - 1))
    notes = ["Improvement = (without GMP - with GMP) / without GMP. Bold: the better of our two rows.",
             "MSE (=RMSE): the paper's 'MSE' is the root of the mean squared error."]
    return pd.DataFrame(tidy), Grid("Table 3: global message passing (GMP) ablation", columns, list(rows.values()),
                                    bold, notes)


def table1(stats: list[dict]) -> tuple[pd.DataFrame, Grid]:
    frame = pd.DataFrame(stats)
    columns = ["dataset", "type", "images", "patches", "image size (ours)", "cells per image (ours)",
               "image size (paper)", "cells per image (paper)"]
    rows = [[s["dataset"], s["type"], str(s["images"]), str(s["patches"]), s["image_size"],
             f"{s['cells_mean']:.2f} ± {s['cells_std']:.2f}", str(s["paper_image_size"]),
             f"{s['paper_cells_mean']} ± {s['paper_cells_std']}"] for s in stats]
    notes = ["Standard deviations divide by n. Counts are from the dot annotations of the copy used.",
             "ADI: the copy used gives fewer cells than the paper's Table 1 (155 ± 36 against 165 ± 44); "
             "the paper's figure could not be reproduced from the public files."]
    return frame, Grid("Table 1: datasets", columns, rows, set(), notes)


def to_markdown(grid: Grid) -> str:
    def cell(r, c, text):
        return f"**{text}**" if (r, c) in grid.bold else text
    lines = [f"### {grid.title}", "", "| " + " | ".join(grid.columns) + " |",
             "|" + "---|" * len(grid.columns)]
    for r, row in enumerate(grid.rows):
        lines.append("| " + " | ".join(cell(r, c, t) for c, t in enumerate(row)) + " |")
    lines += [""] + [f"- {n}" for n in grid.notes]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(a, b)
    return text.replace("±", r"$\pm$")


def to_latex(grid: Grid) -> str:
    lines = [f"% {grid.title}", r"\begin{tabular}{" + "l" * 1 + "c" * (len(grid.columns) - 1) + "}", r"\hline",
             " & ".join(_tex_escape(c) for c in grid.columns) + r" \\", r"\hline"]
    for r, row in enumerate(grid.rows):
        cells = [(r"\textbf{%s}" % _tex_escape(t)) if (r, c) in grid.bold else _tex_escape(t) for c, t in enumerate(row)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"] + [f"% {n}" for n in grid.notes]
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, grid: Grid, stem: Path) -> list[Path]:
    paths = [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
    write_text(paths[0], frame.to_csv(index=False, float_format="%.4f"))
    write_text(paths[1], to_markdown(grid))
    write_text(paths[2], to_latex(grid))
    return paths
