"""What would make a published number an artefact? Checked on every run of a published track.

    python benchmarks/track_checks.py reports/reference/cpu-2core-2026-12-07

Per run, from its test predictions (never used to choose anything): the spread of the predicted
counts against the truth's (a constant predicts one number for every image: spread 0), their
correlation with the truth, the ratio of the mean predicted to the mean true count (over- or
undercounting), and the selected epoch's test MAE beside the last epoch's (how much selection on
the validation images moved the number). Writes <reference>/track_checks.{csv,md}, the lines of
benchmarks/README.md's checks, and <reference>/track_targets.md: issue 33's targets per method and
dataset from per_seed_metrics.csv (mean test MAE over seeds at most 0.5 x the floor's mean; on VGG
the standard deviation over seeds at most 0.2 x the mean), a run that did not learn counted as missed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cellbench.io import read_json, write_text  # noqa: E402

HALF_FLOOR = 0.5     # a trained method's mean test MAE, at most this times the floor's
SEED_SPREAD = 0.2    # on VGG, the std over seeds at most this times the mean


def checks(reference: Path) -> pd.DataFrame:
    rows = []
    for predictions in sorted((reference / "runs").glob("*/*/seed*/predictions.csv")):
        run = predictions.parent
        if "-n" in run.name:   # a training subset of the data-efficiency study
            continue
        frame = pd.read_csv(predictions)
        metrics = read_json(run / "metrics.json")
        true, pred = frame["true_count"].to_numpy(float), frame["pred_count"].to_numpy(float)
        last = metrics.get("last_epoch") or {}
        rows.append({"dataset": run.parent.parent.name, "method": run.parent.name, "seed": int(run.name[4:]),
                     "status": metrics.get("status"), "test_mae": metrics["mae"],
                     "spread": float(np.std(pred) / np.std(true)) if np.std(true) > 0 else np.nan,
                     "correlation": float(np.corrcoef(pred, true)[0, 1]) if np.std(pred) > 0 else 0.0,
                     "count_ratio": float(pred.mean() / true.mean()),
                     "selected_epoch": metrics.get("best_epoch"), "test_mae_last_epoch": last.get("mae", np.nan)})
    return pd.DataFrame(rows)


def targets(reference: Path) -> list[str]:
    """Issue 33's targets, met or missed, per dataset and method (the floor and fitted methods included
    for reference: the targets are about trained ones)."""
    per_seed = pd.read_csv(reference / "per_seed_metrics.csv")
    per_seed = per_seed[per_seed["n_images"] > 0] if "n_images" in per_seed else per_seed
    floors = per_seed[per_seed["method"] == "mean_count"].groupby("dataset")["mae"].mean()
    lines = ["| dataset | method | seeds | test MAE (mean ± std) | / floor | std / mean | target met |",
             "|---|---|---|---|---|---|---|"]
    for (dataset, method), g in per_seed.groupby(["dataset", "method"], sort=True):
        if method == "mean_count":
            continue
        failed = int((g["status"].isin(["collapsed", "did not learn"])).sum())
        mean, std = g["mae"].mean(), g["mae"].std(ddof=1) if len(g) > 1 else float("nan")
        ratio = mean / floors[dataset]
        spread = std / mean
        met = failed == 0 and ratio <= HALF_FLOOR and (dataset != "VGG" or not spread > SEED_SPREAD)
        why = [] if met else ([f"{failed} of {len(g)} did not learn"] if failed else []) + \
            ([f"over {HALF_FLOOR:g} x floor"] if ratio > HALF_FLOOR else []) + \
            ([f"seed std over {SEED_SPREAD:g} x mean"] if dataset == "VGG" and spread > SEED_SPREAD else [])
        kind = " (fitted)" if (g["status"] == "fitted").any() else ""
        lines.append(f"| {dataset} | {method}{kind} | {len(g)} | {mean:.2f} ± {std:.2f} | {ratio:.2f} | {spread:.2f} | "
                     f"{'yes' if met else 'no: ' + ', '.join(why)} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path)
    args = parser.parse_args()
    frame = checks(args.reference)
    write_text(args.reference / "track_checks.csv", frame.to_csv(index=False, float_format="%.4f"))
    summary = frame.groupby(["dataset", "method"], sort=True).agg(
        seeds=("seed", "count"), mae=("test_mae", "mean"), spread_min=("spread", "min"),
        correlation_min=("correlation", "min"), count_ratio_min=("count_ratio", "min"),
        count_ratio_max=("count_ratio", "max"), last_minus_selected=("test_mae_last_epoch", "mean"))
    summary["last_minus_selected"] -= summary["mae"]
    lines = ["| dataset | method | seeds | test MAE | least spread (pred std / true std) | least correlation | "
             "mean predicted / true count | last epoch's test MAE minus the selected one's |",
             "|---|---|---|---|---|---|---|---|"]
    for (dataset, method), r in summary.iterrows():
        lines.append(f"| {dataset} | {method} | {int(r.seeds)} | {r.mae:.2f} | {r.spread_min:.2f} | {r.correlation_min:.2f} | "
                     f"{r.count_ratio_min:.2f} to {r.count_ratio_max:.2f} | {r.last_minus_selected:+.2f} |")
    write_text(args.reference / "track_checks.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    goals = targets(args.reference)
    write_text(args.reference / "track_targets.md", "\n".join(goals) + "\n")
    print("\n" + "\n".join(goals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
