"""What would make a published number an artefact? Checked on every run of a published track.

    python benchmarks/track_checks.py reports/reference/cpu-2core-2026-12-07

Per run, from its test predictions (never used to choose anything): the spread of the predicted
counts against the truth's (a constant predicts one number for every image: spread 0), their
correlation with the truth, the ratio of the mean predicted to the mean true count (over- or
undercounting), and the selected epoch's test MAE beside the last epoch's (how much selection on
the validation images moved the number). Writes <reference>/track_checks.{csv,md}, the lines of
benchmarks/README.md's checks.
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
        lines.append(f"| {dataset} | {method} | {r.seeds} | {r.mae:.2f} | {r.spread_min:.2f} | {r.correlation_min:.2f} | "
                     f"{r.count_ratio_min:.2f} to {r.count_ratio_max:.2f} | {r.last_minus_selected:+.2f} |")
    write_text(args.reference / "track_checks.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
