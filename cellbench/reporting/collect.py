"""Gather the runs' per-image predictions into frames; every number in a table comes from here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import read_csv, read_json
from ..localization import Counts, total
from ..data.splits import subset_suffix
from ..metrics import GAME_LEVELS, count_metrics
from ..runs import LOCALIZATION, METRICS, PREDICTIONS, run_dir

PAPER_CSV = Path(__file__).with_name("paper_dcl_miccai2024.csv")
# Published per-image results on these datasets under other protocols (the file says where each comes from).
PUBLISHED_CSV = Path(__file__).with_name("published_results.csv")
GAME_COLUMNS = [f"game{L}" for L in GAME_LEVELS]
#: The per-patch error of a dataset whose images are several patches (metrics.json's per_patch).
PATCH_METRICS = ("mae", "rmse")
PATCH_COLUMNS = [f"patch_{k}" for k in PATCH_METRICS]


def paper_numbers() -> pd.DataFrame:
    return pd.read_csv(PAPER_CSV)


def published_numbers() -> pd.DataFrame:
    """Published per-image errors (other protocols): the anchors beside Table 2."""
    return pd.read_csv(PUBLISHED_CSV, comment="#")


def classic_numbers() -> pd.DataFrame:
    """The classic VGG-cells results at 32 and 64 training images, for the data-efficiency study."""
    published = published_numbers()
    return published[published["dataset"] == "VGG"].reset_index(drop=True)


def per_seed_metrics(results: Path, datasets, methods, seeds) -> pd.DataFrame:
    """One row per (dataset, method, seed), computed from predictions.csv; a missing run has NaN."""
    rows = []
    for dataset in datasets:
        for method in methods:
            for seed in seeds:
                path = run_dir(results, dataset, method, seed) / PREDICTIONS
                row = {"dataset": dataset, "method": method, "seed": seed, "mae": np.nan, "rmse": np.nan,
                       "mse": np.nan, "n_images": 0, "present": path.is_file(), "collapsed": False,
                       "did_not_learn": False, "status": None}
                if path.is_file():
                    frame = read_csv(path, "per-image predictions (predictions.csv)", ("true_count", "pred_count"))
                    row.update(count_metrics(frame["true_count"], frame["pred_count"]))
                    if "localizer_count" in frame:
                        row["localizer_mae"] = count_metrics(frame["true_count"], frame["localizer_count"])["mae"]
                    metrics_path = path.with_name(METRICS)
                    if metrics_path.is_file():
                        metrics = read_json(metrics_path)
                        row["best_val_mae"] = metrics.get("best_val_mae")
                        row["best_epoch"] = metrics.get("best_epoch")
                        row["last_epoch_mae"] = (metrics.get("last_epoch") or {}).get("mae")
                        row["collapsed"] = metrics.get("status") == "collapsed"
                        row["did_not_learn"] = metrics.get("status") == "did not learn"
                        row["status"] = metrics.get("status", "trained")
                        row.update({g: metrics.get(g, np.nan) for g in GAME_COLUMNS})
                        per_patch = metrics.get("per_patch") or {}
                        row.update({f"patch_{k}": per_patch.get(k, np.nan) for k in PATCH_METRICS})
                rows.append(row)
    return pd.DataFrame(rows)


def subset_metrics(results: Path, dataset: str, runs: list[tuple[str, int, int]], seed: int,
                   whole_train_images: int) -> pd.DataFrame:
    """One row per data-efficiency run on ``dataset`` (``runs``: (method, size, repeat), see
    ``config.subset_runs``) and per whole-split run of those methods (``repeat`` NaN), from each
    run's metrics.json: training images, status, MAE, RMSE, GAME; a missing run has present=False."""
    whole = sorted({m for m, _, _ in runs})
    keys = [(m, size, r) for m, size, r in runs] + [(m, whole_train_images, None) for m in whole]
    rows = []
    for method, size, repeat in keys:
        subset = "" if repeat is None else subset_suffix(size, repeat)
        path = run_dir(results, dataset, method, seed, subset) / METRICS
        row = {"dataset": dataset, "method": method, "seed": seed, "train_images": size, "repeat": repeat,
               "whole_split": repeat is None, "present": path.is_file(), "status": None,
               "mae": np.nan, "rmse": np.nan, **{g: np.nan for g in GAME_COLUMNS}}
        if path.is_file():
            metrics = read_json(path, "a run's metrics (metrics.json)")
            row.update({k: metrics.get(k, np.nan) for k in ("mae", "rmse", *GAME_COLUMNS)})
            row["status"] = metrics.get("status", "trained")
        rows.append(row)
    # Nullable integers: a repeat reads 0, 1, 2 in the CSV (NaN would make the column float: 0.0000).
    return pd.DataFrame(rows).astype({"repeat": "Int64"})


def summarise_subsets(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, method and training-set size: runs done, failures, and mean and std (ddof=1
    with two or more) over the repeats of MAE, RMSE and GAME. A collapsed run or one that did not
    learn counts in n_failed and in the means (the tables and the figure mark it)."""
    def agg(group: pd.DataFrame) -> pd.Series:
        done = group[group["present"]]
        out = {"n_runs": len(done), "n_failed": int(done["status"].isin(["collapsed", "did not learn"]).sum()),
               "whole_split": bool(group["whole_split"].any())}
        for metric in ("mae", "rmse", *GAME_COLUMNS):
            values = done[metric].to_numpy(float)
            out[f"{metric}_mean"] = values.mean() if len(values) else np.nan
            out[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        return pd.Series(out)
    return (per_run.groupby(["dataset", "method", "train_images"], sort=False)
            .apply(agg, include_groups=False).reset_index())


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1 when two or more seeds) over the seeds that ran."""
    def agg(group: pd.DataFrame) -> pd.Series:
        done = group[group["present"]]
        out = {"n_seeds": len(done), "n_collapsed": int(done["collapsed"].sum()),
               "n_did_not_learn": int(done["did_not_learn"].sum()) if "did_not_learn" in done else 0}
        for metric in ("mae", "rmse", *(g for g in (*GAME_COLUMNS, *PATCH_COLUMNS) if g in done)):
            values = done[metric].to_numpy(float)
            out[f"{metric}_mean"] = values.mean() if len(values) else np.nan
            out[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        return pd.Series(out)
    return per_seed.groupby(["dataset", "method"], sort=False).apply(agg, include_groups=False).reset_index()


def paired_differences(results: Path, dataset: str, method_a: str, method_b: str, seeds) -> dict | None:
    """MAE of A minus MAE of B on the same seeds (same splits); None when no seed has both."""
    per_seed, per_image = [], []
    for seed in seeds:
        pa = run_dir(results, dataset, method_a, seed) / PREDICTIONS
        pb = run_dir(results, dataset, method_b, seed) / PREDICTIONS
        if not (pa.is_file() and pb.is_file()):
            continue
        fa, fb = (read_csv(p, "per-image predictions (predictions.csv)", ("image_id", "true_count", "pred_count"),
                           dtype={"image_id": str}) for p in (pa, pb))
        merged = fa.merge(fb, on="image_id", suffixes=("_a", "_b"))
        if merged.empty:  # no image in common: nothing to pair on this seed
            continue
        ea = (merged["pred_count_a"] - merged["true_count_a"]).abs()
        eb = (merged["pred_count_b"] - merged["true_count_b"]).abs()
        per_seed.append(ea.mean() - eb.mean())
        per_image.extend((ea - eb).tolist())
    if not per_seed:
        return None
    diffs, img = np.array(per_seed), np.array(per_image)
    return {
        "dataset": dataset, "method_a": method_a, "method_b": method_b, "n_seeds": len(diffs),
        "mae_diff_mean": diffs.mean(), "mae_diff_std": diffs.std(ddof=1) if len(diffs) > 1 else np.nan,
        "seeds_a_better": int((diffs < 0).sum()),
        "n_image_pairs": len(img),
        "image_diff_mean": img.mean(),
        "image_diff_sem": img.std(ddof=1) / np.sqrt(len(img)) if len(img) > 1 else np.nan,
    }


def localization_per_seed(results: Path, datasets, methods, seeds) -> pd.DataFrame:
    """One row per (dataset, method, seed, source map, rule, radius) from the runs' localization.csv:
    summed tp, fp, fn over the test images and their scores (NaN where undefined), and the mean
    absolute error of the count by detection. Runs without localization.csv have no rows."""
    rows = []
    for dataset in datasets:
        for method in methods:
            for seed in seeds:
                path = run_dir(results, dataset, method, seed) / LOCALIZATION
                if not path.is_file():
                    continue
                frame = read_csv(path, "per-image localization (localization.csv)", ("source", "rule", "radius"),
                                 dtype={"image_id": str})
                for (source, rule, radius), group in frame.groupby(["source", "rule", "radius"], sort=False):
                    counts = total(Counts(int(r.tp), int(r.fp), int(r.fn)) for r in group.itertuples())
                    rows.append({"dataset": dataset, "method": method, "seed": seed, "source": source, "rule": rule,
                                 "radius": float(radius), "primary": bool(group["primary"].iloc[0]),
                                 "n_images": len(group), "tp": counts.tp, "fp": counts.fp, "fn": counts.fn,
                                 **counts.scores(), "detection_count_mae": group["count_error"].abs().mean()})
    columns = ["dataset", "method", "seed", "source", "rule", "radius", "primary", "n_images", "tp", "fp", "fn",
               "precision", "recall", "f1", "detection_count_mae"]
    return pd.DataFrame(rows, columns=columns)
