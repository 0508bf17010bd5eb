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
#: Table 2's error per patch, beside the error per image, for a dataset whose images are several patches.
PATCH_LABELS = {"patch_mae": "MAE per patch", "patch_rmse": "MSE (=RMSE) per patch"}
NO_DEEP_LEARNING = "no deep learning"
MISSING = "missing"
BELOW_FLOOR = "†"


def _collapsed(n_collapsed: int, n: int) -> str:
    return f"collapsed ({n_collapsed} of {n} seeds)"


def _did_not_learn(k: int, n: int) -> str:
    return f"did not learn ({k} of {n} seeds)"


def _failures(summary: pd.DataFrame, dataset: str, method: str) -> tuple[int, int]:
    """(collapsed seeds, seeds that did not learn) of a method on a dataset."""
    row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
    if not len(row):
        return 0, 0
    return (int(row["n_collapsed"].iloc[0]) if "n_collapsed" in row else 0,
            int(row["n_did_not_learn"].iloc[0]) if "n_did_not_learn" in row else 0)


def failure_text(summary: pd.DataFrame, dataset: str, method: str, n: int) -> str | None:
    """What a cell shows instead of a number when a seed collapsed or did not learn; else None."""
    collapsed, not_learned = _failures(summary, dataset, method)
    if collapsed:
        return _collapsed(collapsed, n)
    if not_learned:
        return _did_not_learn(not_learned, n)
    return None


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


def _floor_means(summary: pd.DataFrame, floors: list[str], dataset: str, metric: str) -> float:
    """The lowest mean of the floor baselines (mean_count) on ``dataset``; NaN without one."""
    values = [_seed_summary(summary, dataset, f, metric)[0] for f in floors]
    values = [v for v in values if not math.isnan(v)]
    return min(values) if values else float("nan")


PAPER_NOT_SHOWN = "The paper's numbers are not shown: they come from another protocol."


def _with_track(title: str, notes: list[str], track: str | None, extra: str = "") -> tuple[str, list[str]]:
    """A table of a run that is not the paper's protocol names its track in the title and says, in
    the first note, what the track is (``track``, from cellbench.reporting.track)."""
    if track is None:
        return title, notes
    return f"{title} ({track.split(':')[0]})", [f"{track}. {extra}".rstrip(), *notes]


def table2_metrics(summary: pd.DataFrame, dataset: str) -> dict[str, str]:
    """Table 2's columns of ``dataset``: MAE and RMSE per image, and per patch where its images are
    cut into several patches (MBM's quarters, DCC's tiles: the runs' metrics.json has per_patch)."""
    rows = summary[summary["dataset"] == dataset]
    patched = "patch_mae_mean" in rows and rows["patch_mae_mean"].notna().any()
    if not patched:
        return dict(METRIC_LABELS)
    return {"mae": "MAE per image", "rmse": "MSE (=RMSE) per image", **PATCH_LABELS}


def table2(summary: pd.DataFrame, paper: pd.DataFrame, datasets: list[str], methods: list[str],
           paper_names: dict[str, str | None], floors: list[str] | None = None,
           track: str | None = None, paper_units: dict[str, str] | None = None,
           fitted: list[str] | None = None) -> tuple[pd.DataFrame, Grid]:
    """Our methods on every dataset (mean ± std over seeds), and, when the runs follow the paper's
    protocol (``track`` None), the paper's value and the difference. Datasets cut into several
    patches get the error per patch beside the error per image; the paper's value stands in the
    unit it matches (``paper_units``: {dataset: image or patch}, from the datasets' definitions).
    Methods in ``fitted`` (no deep learning: the floor, the classical counter) say so in their row.

    A method with a collapsed seed shows "collapsed", one with a seed that did not learn "did not
    learn", never a number; one whose mean is not below the floor baseline's (``floors``, e.g.
    mean_count) is marked with a dagger. ``track``: the caption of another experiment (the CPU
    track, the smoke run): its numbers are not comparable with the paper's, which are left out."""
    floors, fitted, paper_units = floors or [], set(fitted or []), paper_units or {}
    tidy, cells, best = [], {}, {}
    labels = {d: table2_metrics(summary, d) for d in datasets}
    # Table 2 rows first; a method only in Table 3 (the ablation) takes its numbers from there.
    p2 = paper.sort_values("table", kind="stable").drop_duplicates(["method", "dataset"])
    for dataset in datasets:
        for metric in labels[dataset]:
            # The paper's number stands beside the unit it matches (per patch on MBM: README, Differences).
            paper_here = (paper_units.get(dataset, "image") == "patch") == metric.startswith("patch_")
            means = {}
            for method in methods:
                row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
                mean = _num(row[f"{metric}_mean"].iloc[0]) if len(row) else float("nan")
                std = _num(row[f"{metric}_std"].iloc[0]) if len(row) else float("nan")
                n = int(row["n_seeds"].iloc[0]) if len(row) else 0
                n_collapsed, n_not_learned = _failures(summary, dataset, method)
                floor = _floor_means(summary, floors, dataset, metric)
                beats_floor = None if method in floors or math.isnan(floor) or math.isnan(mean) else bool(mean < floor)
                ref = p2[(p2["method"] == paper_names.get(method)) & (p2["dataset"] == dataset)]
                paper_metric = metric.removeprefix("patch_")
                paper_value = (float(ref[paper_metric].iloc[0]) if len(ref) and track is None and paper_here
                               else float("nan"))
                tidy.append({"dataset": dataset, "method": method, "paper_name": paper_names.get(method),
                             "metric": labels[dataset][metric], "no_deep_learning": method in fitted,
                             "mean": mean, "std": std, "n_seeds": n,
                             "n_collapsed": n_collapsed, "n_did_not_learn": n_not_learned, "beats_floor": beats_floor,
                             "paper": paper_value, "diff_vs_paper": mean - paper_value})
                cells[(method, dataset, metric)] = (mean, std, n, paper_value, beats_floor)
                # The best is among the methods that beat the floor: the floor is the reference, and a
                # method worse than it is no one's best.
                if (not math.isnan(mean) and not (n_collapsed or n_not_learned) and method not in floors
                        and beats_floor is not False):
                    means[method] = mean
            if means:
                best[(dataset, metric)] = min(means, key=means.get)
    frame = pd.DataFrame(tidy)
    frame["best"] = [best.get((r.dataset, next(k for k, v in labels[r.dataset].items() if v == r.metric))) == r.method
                     for r in frame.itertuples()]
    columns = ["method", "row"] + [f"{d} {label}" for d in datasets for label in labels[d].values()]
    rows, bold = [], set()
    for method in methods:
        kind = f"ours, {NO_DEEP_LEARNING}" if method in fitted else "ours"
        ours = [method, f"{kind} (mean ± std, n seeds)"]
        ref, diff = [method, f"paper ({paper_names.get(method) or '-'})"], [method, "ours - paper"]
        for dataset in datasets:
            for metric in labels[dataset]:
                mean, std, n, paper_value, beats_floor = cells[(method, dataset, metric)]
                if best.get((dataset, metric)) == method:
                    bold.add((len(rows), len(ours)))
                failed = failure_text(summary, dataset, method, n) if n else None
                if not n:
                    ours.append(MISSING)
                elif failed:
                    ours.append(failed)
                else:
                    ours.append(_fmt(mean, std, n) + (f" {BELOW_FLOOR}" if beats_floor is False else ""))
                ref.append(_fmt(paper_value, digits=1) if not math.isnan(paper_value) else "-")
                delta = mean - paper_value
                diff.append(f"{delta:+.2f}" if not math.isnan(delta) else "-")
        rows += [ours] + ([ref, diff] if track is None else [])
    patched = [d for d in datasets if "patch_mae" in labels[d]]
    notes = ["MSE (=RMSE): the paper's 'MSE' is the root of the mean squared error; ours is computed the same way.",
             *([f"Per image: an image's count is the sum of its patches' (the primary error, as SAU-Net's, "
                f"Count-ception's and Proto4DME's evaluations); per patch: each of the patches an image is cut into "
                f"({', '.join(patched)}). "
                + (f"The paper's numbers stand beside the unit they fit: per patch for "
                   f"{', '.join(d for d in patched if paper_units.get(d) == 'patch')} (README, Differences)."
                   if track is None else "")] if patched else []),
             *([f"'{NO_DEEP_LEARNING}': a method fitted on the training split without gradient training "
                f"({', '.join(sorted(fitted & set(methods)))}); no training crops or epochs."]
               if fitted & set(methods) else []),
             "Bold: lowest mean in that column among our methods that beat the floor (the floor itself is left out "
             "of the comparison). 'missing': the run has no predictions.csv.",
             "'collapsed': the collapse guard stopped a seed (predictions stayed far from the true counts); "
             "'did not learn': at a seed's selected epoch, its validation MAE was not below 0.9 x the best "
             "constant's, or its predictions hardly varied between images or did not follow the truth; no number "
             "is shown for either (per_seed_metrics.csv has them).",
             f"{BELOW_FLOOR}: not better than the floor ({', '.join(floors) or 'none run'}: the training split's mean "
             f"count for every image)."]
    title, notes = _with_track("Table 2: counting error per dataset", notes, track, PAPER_NOT_SHOWN)
    return frame, Grid(title, columns, rows, bold, notes)


def _seed_summary(summary: pd.DataFrame, dataset: str, method: str, metric: str) -> tuple[float, float, int]:
    """(mean, std, seeds) of ``metric``; seeds 0 when the method has no run on ``dataset``."""
    row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
    if not len(row) or row["n_seeds"].iloc[0] == 0:
        return float("nan"), float("nan"), 0
    return _num(row[f"{metric}_mean"].iloc[0]), _num(row[f"{metric}_std"].iloc[0]), int(row["n_seeds"].iloc[0])


def _failed(summary: pd.DataFrame, dataset: str, method: str) -> bool:
    return any(_failures(summary, dataset, method))


def _cell(summary: pd.DataFrame, dataset: str, method: str, value: tuple[float, float, int]) -> str:
    """A mean ± std (n) cell, or "missing", or "collapsed / did not learn (k of n seeds)"."""
    if not value[2]:
        return MISSING
    return failure_text(summary, dataset, method, value[2]) or _fmt(*value)


def _paper_value(paper: pd.DataFrame, name: str | None, dataset: str, metric: str) -> float:
    ref = paper[(paper["method"] == name) & (paper["dataset"] == dataset)][metric]
    return float(ref.iloc[0]) if name and len(ref) else float("nan")


def table3(summary: pd.DataFrame, paper: pd.DataFrame, datasets: list[str], pairs: list[tuple[str, str]],
           paper_names: dict[str, str | None], floors: list[str] | None = None,
           track: str | None = None) -> tuple[pd.DataFrame, Grid]:
    """Each ablation beside its full method, and the improvement in % ((ablated - full) / ablated);
    the paper's rows beside them when the runs follow its protocol (``track`` None, see table2).

    ``pairs`` holds (full, ablated) method names, from the methods' ``ablation_of``."""
    p3 = paper[paper["table"] == 3]
    tidy, table_rows, bold = [], [], set()
    columns = ["model"] + [f"{d} {METRIC_LABELS[m]}" for d in datasets for m in METRIC_LABELS]
    for full, ablated in pairs:
        names = {k: paper_names.get(k) for k in (full, ablated)}
        rows = {k: [k] for k in (f"{ablated} (ours)", f"{full} (ours)", "improvement (ours)",
                                 f"{ablated} (paper: {names[ablated] or '-'})", f"{full} (paper: {names[full] or '-'})",
                                 "improvement (paper)")}
        first = len(table_rows)
        for dataset in datasets:
            for metric in METRIC_LABELS:
                without, with_ = (_seed_summary(summary, dataset, m, metric) for m in (ablated, full))
                comparable = (without[2] and with_[2] and not _failed(summary, dataset, ablated)
                              and not _failed(summary, dataset, full))
                improvement = 100 * (without[0] - with_[0]) / without[0] if comparable else float("nan")
                pw, pf = (_paper_value(p3, names[m], dataset, metric) for m in (ablated, full))
                paper_improvement = 100 * (pw - pf) / pw if pw == pw and pf == pf else float("nan")
                tidy.append({"full": full, "ablated": ablated, "dataset": dataset, "metric": METRIC_LABELS[metric],
                             "ablated_mean": without[0], "ablated_std": without[1], "ablated_seeds": without[2],
                             "full_mean": with_[0], "full_std": with_[1], "full_seeds": with_[2],
                             "improvement_pct": improvement, "paper_ablated": pw, "paper_full": pf,
                             "paper_improvement_pct": paper_improvement})
                values = list(rows.values())
                values[0].append(_cell(summary, dataset, ablated, without))
                values[1].append(_cell(summary, dataset, full, with_))
                values[2].append(f"{improvement:.1f}%" if improvement == improvement else MISSING)
                values[3].append(_fmt(pw, digits=1))
                values[4].append(_fmt(pf, digits=1))
                values[5].append(f"{paper_improvement:.1f}%" if paper_improvement == paper_improvement else "-")
                if comparable:
                    bold.add((first + (0 if without[0] < with_[0] else 1), len(values[0]) - 1))
        table_rows += list(rows.values())[:3] if track is not None else list(rows.values())
    for floor in floors or []:
        row = [f"{floor} (ours, the floor)"]
        for dataset in datasets:
            for metric in METRIC_LABELS:
                mean, std, n = _seed_summary(summary, dataset, floor, metric)
                row.append(_cell(summary, dataset, floor, (mean, std, n)))
                tidy.append({"full": None, "ablated": floor, "dataset": dataset, "metric": METRIC_LABELS[metric],
                             "ablated_mean": mean, "ablated_std": std, "ablated_seeds": n})
        table_rows.append(row)
    notes = ["Improvement = (ablated - full) / ablated. Bold: the better of our two rows.",
             "MSE (=RMSE): the paper's 'MSE' is the root of the mean squared error."]
    title, notes = _with_track("Table 3: ablations (DCL's global message passing, GMP)", notes, track,
                               PAPER_NOT_SHOWN)
    return pd.DataFrame(tidy), Grid(title, columns, table_rows, bold, notes)


def table_published(published: pd.DataFrame, summary: pd.DataFrame, datasets: list[str],
                    track: str | None = None) -> tuple[pd.DataFrame, Grid]:
    """Published per-image errors on these datasets (other protocols), beside our best method's and
    the floor's: where a reader can place Table 2. ``published``: ``collect.published_numbers``."""
    rows, tidy = [], []
    for dataset in datasets:
        here = published[published["dataset"] == dataset]
        ours = summary[(summary["dataset"] == dataset) & (summary["n_seeds"] > 0)
                       & (summary["n_collapsed"] == 0) & (summary["n_did_not_learn"] == 0)]
        best = ours.loc[ours["mae_mean"].idxmin()] if len(ours) else None
        for r in here.itertuples():
            std = None if pd.isna(r.mae_std) else float(r.mae_std)
            rows.append([dataset, r.method, _fmt(float(r.mae), std), str(int(r.train_images)), r.splits,
                         r.initialisation, r.source])
            tidy.append({"dataset": dataset, "method": r.method, "mae": r.mae, "mae_std": r.mae_std,
                         "train_images": r.train_images, "splits": r.splits, "initialisation": r.initialisation,
                         "source": r.source, "checked": r.checked, "ours": False})
        if best is not None and len(here):
            rows.append([dataset, f"{best['method']} (cellbench, lowest of Table 2)",
                         _fmt(best["mae_mean"], best["mae_std"], int(best["n_seeds"])), "this track's split",
                         "seeds", "this track's", "Table 2"])
            tidy.append({"dataset": dataset, "method": best["method"], "mae": best["mae_mean"],
                         "mae_std": best["mae_std"], "ours": True})
    notes = ["MAE per image (an image's patches summed), mean ± std over the authors' splits; other protocols "
             "(training-set sizes, splits, network widths and initialisation): a place to stand, not a target, "
             "and no row is comparable run for run with ours.",
             "cellbench/reporting/published_results.csv gives each number's source and what could be checked of it."]
    title, notes = _with_track("Published per-image results (other protocols)", notes, track)
    columns = ["dataset", "method", "MAE per image", "training images", "splits", "initialisation", "source"]
    return pd.DataFrame(tidy), Grid(title, columns, rows, set(), notes)


def table1(stats: list[dict]) -> tuple[pd.DataFrame, Grid]:
    frame = pd.DataFrame(stats)
    columns = ["dataset", "type", "images", "patches", "image size (ours)", "cells per image (ours)",
               "image size (paper)", "cells per image (paper)"]
    def paper(value) -> str:   # a dataset the paper did not use has no paper values
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    rows = [[s["dataset"], s["type"], str(s["images"]), str(s["patches"]), s["image_size"],
             f"{s['cells_mean']:.2f} ± {s['cells_std']:.2f}", paper(s.get("paper_image_size")),
             "-" if paper(s.get("paper_cells_mean")) == "-" else f"{s['paper_cells_mean']} ± {s['paper_cells_std']}"]
            for s in stats]
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


SOURCE_LABELS = {"counter": "counter's map", "localizer": "localizer's map"}
RULE_LABELS = {"threshold": "threshold (chosen on val)", "count": "count-guided"}


def _primary(localization: pd.DataFrame) -> pd.DataFrame:
    return localization[localization["primary"].astype(bool)]


def _seed_values(frame: pd.DataFrame, column: str) -> tuple[float, float, int]:
    """(mean, std with ddof=1 from two seeds, seeds) of ``column``; NaN where undefined."""
    values = frame[column].to_numpy(float)
    if not len(values):
        return float("nan"), float("nan"), 0
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan"), len(values)


def _f1_cell(mean: float, std: float, n: int) -> str:
    if not n:
        return MISSING
    return "undefined" if math.isnan(mean) else _fmt(mean, std, n, digits=3)


def method_cell(method: str, fitted: set[str] | list[str] | None) -> str:
    """A method's name in a table's first column, marked when it has no deep learning (``fitted``)."""
    return f"{method} ({NO_DEEP_LEARNING})" if fitted and method in fitted else method


def table4(localization: pd.DataFrame, datasets: list[str], methods: list[str],
           failures: dict[tuple[str, str], str] | None = None, track: str | None = None,
           fitted: list[str] | None = None) -> tuple[pd.DataFrame, Grid]:
    """Localization F1 at each dataset's primary radius, mean ± std over seeds, per method, source
    map and rule (``localization``: ``collect.localization_per_seed``). Bold: highest mean F1 of a
    column. A method with no localization.csv is "missing"; a localizer row appears only for
    methods that have one. ``failures``: {(dataset, method): "collapsed ..." or "did not learn ..."},
    written beside the F1 of such a run's method (its points come from a counter that failed)."""
    failures = failures or {}
    primary = _primary(localization)
    radius = {d: primary.loc[primary["dataset"] == d, "radius"] for d in datasets}
    radius = {d: (f"{r.iloc[0]:g}" if len(r) else "?") for d, r in radius.items()}
    columns = ["method", "map", "rule"] + [f"{d} F1 (r = {radius[d]} px)" for d in datasets]
    tidy, rows, bold, best = [], [], set(), {}
    for method in methods:
        sources = [s for s in SOURCE_LABELS if s == "counter" or
                   ((primary["method"] == method) & (primary["source"] == s)).any()]
        for source in sources:
            for rule in RULE_LABELS:
                row = [method_cell(method, fitted), SOURCE_LABELS[source], RULE_LABELS[rule]]
                for dataset in datasets:
                    runs = primary[(primary["dataset"] == dataset) & (primary["method"] == method)
                                   & (primary["source"] == source) & (primary["rule"] == rule)]
                    f1 = _seed_values(runs, "f1")
                    tidy.append({"dataset": dataset, "method": method, "source": source, "rule": rule,
                                 "radius": float(runs["radius"].iloc[0]) if len(runs) else float("nan"),
                                 "n_seeds": f1[2], "f1_mean": f1[0], "f1_std": f1[1],
                                 "precision_mean": _seed_values(runs, "precision")[0],
                                 "recall_mean": _seed_values(runs, "recall")[0],
                                 "detection_count_mae_mean": _seed_values(runs, "detection_count_mae")[0]})
                    row.append(_f1_cell(*f1) + (f" ({failures[(dataset, method)]})"
                                                if (dataset, method) in failures else ""))
                    column = len(row) - 1
                    if not math.isnan(f1[0]) and f1[0] > best.get(column, (-1.0, None))[0]:
                        best[column] = (f1[0], (len(rows), column))
                rows.append(row)
    bold = {cell for _, cell in best.values()}
    notes = ["F1 of the test set (summed tp, fp, fn over its images) at the primary radius, half the dataset's "
             "median dot spacing; mean ± std over seeds (n seeds). Bold: highest mean of a column.",
             "threshold: peaks above a threshold chosen per run on the validation split; count-guided: the "
             "round(predicted count) highest peaks, the count from the run's counter.",
             "'missing': no localization.csv for the method on that dataset; 'undefined': no true and no "
             "predicted points; '(collapsed / did not learn k of n seeds)': the counter of that many seeds failed.",
             *([f"'{NO_DEEP_LEARNING}': fitted on the training split without gradient training; a classical "
                f"counter's map holds 1 at each maximum it keeps, so its points are its maxima."]
               if fitted and set(fitted) & set(methods) else [])]
    title, notes = _with_track("Table 4: localization F1 per dataset and method", notes, track)
    return pd.DataFrame(tidy), Grid(title, columns, rows, bold, notes)


def table4_paired(localization: pd.DataFrame, datasets: list[str]) -> tuple[pd.DataFrame, Grid]:
    """Each localizer's map against every method's counter map (its own included), same seeds and
    splits: F1(localizer) - F1(counter map) at the primary radius, per rule."""
    primary = _primary(localization)
    localized = primary[primary["source"] == "localizer"]["method"].unique().tolist()
    counters = primary[primary["source"] == "counter"]["method"].unique().tolist()
    columns = ["dataset", "localizer of", "counter map of", "rule", "seeds", "ΔF1 mean ± std over seeds",
               "seeds localizer better"]
    tidy, rows = [], []
    for dataset in datasets:
        here = primary[primary["dataset"] == dataset]
        for a in localized:
            for b in counters:
                for rule in RULE_LABELS:
                    loc = here[(here["method"] == a) & (here["source"] == "localizer") & (here["rule"] == rule)]
                    cnt = here[(here["method"] == b) & (here["source"] == "counter") & (here["rule"] == rule)]
                    merged = loc.merge(cnt, on="seed", suffixes=("_a", "_b"))
                    if not len(merged):
                        continue
                    diffs = (merged["f1_a"] - merged["f1_b"]).to_numpy(float)
                    std = float(diffs.std(ddof=1)) if len(diffs) > 1 else float("nan")
                    tidy.append({"dataset": dataset, "localizer_method": a, "counter_method": b, "rule": rule,
                                 "n_seeds": len(diffs), "f1_diff_mean": float(diffs.mean()), "f1_diff_std": std,
                                 "seeds_localizer_better": int((diffs > 0).sum())})
                    mean_text = "undefined" if math.isnan(diffs.mean()) else f"{diffs.mean():+.3f}"
                    rows.append([dataset, a, b, RULE_LABELS[rule], str(len(diffs)),
                                 mean_text + ("" if math.isnan(std) else f" ± {std:.3f}"),
                                 f"{int((diffs > 0).sum())}/{len(diffs)}"])
    notes = ["ΔF1 = F1 of the localizer's map minus F1 of the counter's map, paired by seed (same split), at the "
             "primary radius; positive: the localizer places the cells better.",
             "Both maps' count-guided rule takes the same number of points (the localizer's method's counter "
             "count for the localizer row, each counter's own count for its row)."]
    return pd.DataFrame(tidy, columns=["dataset", "localizer_method", "counter_method", "rule", "n_seeds",
                                       "f1_diff_mean", "f1_diff_std", "seeds_localizer_better"]), \
        Grid("Table 4 (paired): localizer's map against counter maps", columns, rows, set(), notes)


GAME_LABELS = {f"game{L}": f"GAME({L})" for L in range(4)}


def table_game(summary: pd.DataFrame, datasets: list[str], methods: list[str], floors: list[str] | None = None,
               track: str | None = None, runs: str | None = None,
               ran: dict[str, list[str]] | None = None, fitted: list[str] | None = None) -> tuple[pd.DataFrame, Grid]:
    """GAME(0-3) per method and dataset, mean ± std over seeds (beside Table 2): how much of a
    count that is right in total is right in place. Runs evaluated before GAME was recorded show
    'not recorded'. The floor (``floors``) is shown but never bold: its flat map can beat a
    poorly placed one at the finer levels. ``runs`` names the runs when they are not every seed's
    (the data-efficiency study's whole-split runs), and ``ran`` the methods each dataset ran with
    when not all (the others show '-', not 'missing')."""
    floors = floors or []
    tidy, rows, bold = [], [], set()
    columns = ["method"] + [f"{d} {GAME_LABELS[g]}" for d in datasets for g in GAME_LABELS]
    best = {}
    for dataset in datasets:
        for game in GAME_LABELS:
            means = {}
            for method in methods:
                row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
                mean = _num(row[f"{game}_mean"].iloc[0]) if len(row) and f"{game}_mean" in row else float("nan")
                if not math.isnan(mean) and not _failed(summary, dataset, method) and method not in floors:
                    means[method] = mean
            if means:
                best[(dataset, game)] = min(means, key=means.get)
    for method in methods:
        cells = [method_cell(method, fitted)]
        for dataset in datasets:
            row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
            n = int(row["n_seeds"].iloc[0]) if len(row) else 0
            failed = failure_text(summary, dataset, method, n) if n else None
            if ran is not None and method not in ran.get(dataset, []):
                cells += ["-"] * len(GAME_LABELS)
                continue
            for game in GAME_LABELS:
                mean = _num(row[f"{game}_mean"].iloc[0]) if len(row) and f"{game}_mean" in row else float("nan")
                std = _num(row[f"{game}_std"].iloc[0]) if len(row) and f"{game}_std" in row else float("nan")
                tidy.append({"dataset": dataset, "method": method, "metric": GAME_LABELS[game], "mean": mean,
                             "std": std, "n_seeds": n})
                if best.get((dataset, game)) == method:
                    bold.add((len(rows), len(cells)))
                cells.append(MISSING if not n else failed if failed else
                             "not recorded" if math.isnan(mean) else _fmt(mean, std))
        rows.append(cells)
    notes = ["GAME(L) (Guerrero-Gomez-Olmedo et al. 2015): each test image cut into 4^L equal cells, the absolute "
             "count error summed over the cells, averaged over the images; in original-image pixels, from the "
             "predicted map (each map pixel's count at the centre of the input pixels it covers) and the true dots. "
             "GAME(0) is the MAE; a count right in total but in the wrong place grows with L.",
             "Mean ± std over seeds; bold: lowest in its column among our methods, the floor "
             f"({', '.join(floors) or 'none run'}: one flat map of the training mean) left out. 'not recorded': the "
             "run was evaluated before cellbench recorded GAME (evaluate it again).",
             "A map is scored as its method makes it: a method whose map spreads each count over a window "
             "(Count-ception: each output pixel holds 1/1024 of the count of the 32x32 window around it) scores "
             "worse at the levels whose cells are not much larger than that window (VGG's GAME(3) cells are 32 px) "
             "without placing its cells worse."]
    if ran is not None:
        notes.append("'-': the method was not run on that dataset.")
    title = "Table 2 (GAME): counting error by location" + (f", {runs}" if runs else "")
    title, notes = _with_track(title, notes, track)
    return pd.DataFrame(tidy), Grid(title, columns, rows, bold, notes)


def table_data_efficiency(summary: pd.DataFrame, classic: pd.DataFrame, datasets: list[str],
                          methods: dict[str, list[str]], floors: list[str], track: str | None = None,
                          metric: str = "mae") -> tuple[pd.DataFrame, Grid]:
    """Test MAE against training images: per dataset, a column per size (the whole split last),
    a row per method, mean ± std over repeats (n). Below, for VGG, the classic published numbers
    at 32 and 64 images (other protocols)."""
    columns, keys = ["method"], []
    for dataset in datasets:
        sizes = sorted(summary[summary["dataset"] == dataset]["train_images"].unique())
        whole = summary[(summary["dataset"] == dataset) & summary["whole_split"]]["train_images"].unique()
        for size in sizes:
            keys.append((dataset, int(size)))
            columns.append(f"{dataset} N={int(size)}" + (" (all)" if size in whole else ""))
    every = list(dict.fromkeys(m for d in datasets for m in methods[d]))
    rows, tidy, bold = [], [], set()
    best = {}
    for key in keys:
        cell = summary[(summary["dataset"] == key[0]) & (summary["train_images"] == key[1])]
        ok = cell[(cell["n_runs"] > 0) & (cell["n_failed"] == 0) & ~cell["method"].isin(floors)]
        if len(ok):
            best[key] = ok.loc[ok[f"{metric}_mean"].idxmin(), "method"]
    for method in every:
        cells = [method]
        for dataset, size in keys:
            row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)
                          & (summary["train_images"] == size)]
            if method not in methods[dataset] or not len(row):
                cells.append("-")
                continue
            r = row.iloc[0]
            n, failed = int(r["n_runs"]), int(r["n_failed"])
            tidy.append({"dataset": dataset, "method": method, "train_images": size, "whole_split": r["whole_split"],
                         "n_runs": n, "n_failed": failed, "mae_mean": r["mae_mean"], "mae_std": r["mae_std"],
                         "rmse_mean": r["rmse_mean"], "rmse_std": r["rmse_std"],
                         **{f"{g}_mean": r[f"{g}_mean"] for g in GAME_LABELS}})
            if best.get((dataset, size)) == method:
                bold.add((len(rows), len(cells)))
            text = MISSING if not n else _fmt(r[f"{metric}_mean"], r[f"{metric}_std"], n)
            if failed:
                text += f" [{failed} failed]"
            cells.append(text)
        rows.append(cells)
    published = classic[classic["dataset"].isin(datasets)]
    for name, group in published.groupby("method", sort=False):
        cells = [f"published: {name} ({group['source'].iloc[0]})"]
        for dataset, size in keys:
            hit = group[(group["dataset"] == dataset) & (group["train_images"] == size)]
            cells.append(_fmt(float(hit["mae"].iloc[0]), _num(hit["mae_std"].iloc[0]) if pd.notna(hit["mae_std"].iloc[0])
                              else None, digits=1) if len(hit) else "")
        rows.append(cells)
    notes = [f"Test {METRIC_LABELS.get(metric, metric)} against the number of training images: mean ± std over "
             "repeats (n runs). Each repeat is its own random subset of the seed's training split (nested over "
             "sizes); test and validation images are the same for every size; every size trains for the same "
             "number of steps (an epoch is as many steps as the whole split's). N=... (all): the seed's "
             "ordinary run on its whole training split (one run).",
             "Every run starts from the seed's initial weights (the output bias from its subset's mean count) and "
             "draws with the seed's generator: repeats of a size make the same draws on other images, sizes "
             "other draws. The ± and a step between sizes still mix the images with the noise of training itself, "
             "which any small change sets off (benchmarks/README.md, \"Data efficiency\": the same run on two "
             "machines moves by several cells for some methods).",
             "Bold: lowest in its column among the cells with no failed run, the floor (mean_count) left out. "
             "'[k failed]': k runs collapsed or did not learn; their MAE is in the mean.",
             "published: other protocols (full-width networks trained to convergence, Lempitsky & Zisserman's "
             "100 test images, averaged over several training sets): a reference point, not a target "
             "(reporting/published_results.csv says where each number comes from)."]
    title, notes = _with_track("Data efficiency: test MAE against training images", notes, track)
    return pd.DataFrame(tidy), Grid(title, columns, rows, bold, notes)
