"""Does a rerun land where the published run did? The same runs with another thread count.

    python benchmarks/thread_noise.py --dataset VGG --seed 0 --threads 1 [--methods ...]

Another machine sums the same numbers in another order (its CPU kernels, its threads): the runs of
the CPU track differ in their last digits, and a training that is on a knife's edge amplifies that
into another selected epoch and another test MAE. Two thread counts on one machine are another
order of the same sums, reproducible here: each method's run of ``--seed`` on ``--dataset`` is
made again with ``--threads`` (the track's settings otherwise: config/cpu.yaml and the method's
tracks entry) into benchmarks/results/thread_noise/threads<N>/<method>/, and its test MAE is set
beside the published run's (``--reference``, made with 2 threads) and beside the spread over the
published seeds. Writes benchmarks/results/thread_noise/threads<N>.csv and .md.

A method whose track entry names its own threads (Count-ception: 2) is run with those whatever
``--threads`` says, so it cannot be compared and is left out (one thread with channels-last
tensors takes Count-ception 71 s per step against 4 s contiguous: benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cellbench.config import load_config  # noqa: E402
from cellbench.io import read_json, write_text  # noqa: E402
from cellbench.methods import get_method, selected_methods  # noqa: E402
from cellbench.stages.run import run_stage  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "thread_noise"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="VGG")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="*")
    parser.add_argument("--reference", type=Path, required=True,
                        help="the published track, e.g. reports/reference/cpu-2core-2026-12-07")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(ROOT / "config" / "cpu.yaml")
    config["train"]["threads"] = args.threads
    prepared = ROOT / "results" / "prepared" / args.dataset / "patches.npz"
    split = ROOT / "results" / "splits" / args.dataset / f"seed{args.seed}.json"
    per_seed = pd.read_csv(args.reference / "per_seed_metrics.csv")
    per_seed = per_seed[per_seed["dataset"] == args.dataset]
    rows = []
    for method in args.methods or selected_methods(config):
        if get_method(method).track_settings(config["track"]).get("threads"):
            print(f"{method}: its track entry sets its threads; left out", flush=True)
            continue
        run_dir = OUT / f"threads{args.threads}" / method
        if not (run_dir / "metrics.json").is_file():
            run_stage(config, args.dataset, method, args.seed, prepared, split, run_dir, threads=args.threads)
        ours = read_json(run_dir / "metrics.json")
        published = per_seed[(per_seed["method"] == method) & (per_seed["seed"] == args.seed)]
        seeds = per_seed[per_seed["method"] == method]["mae"]
        rows.append({"method": method, "status": ours["status"], f"mae_threads{args.threads}": ours["mae"],
                     "mae_published": float(published["mae"].iloc[0]) if len(published) else float("nan"),
                     "seed_std_published": float(seeds.std(ddof=1)) if len(seeds) > 1 else float("nan"),
                     "best_epoch": ours["best_epoch"],
                     # the run's own training time, so that a second call (which reuses finished runs) reports it too
                     "train_seconds": round(read_json(run_dir / "metadata.json").get("wall_seconds", float("nan")), 1)})
        row = rows[-1]
        row["difference"] = row[f"mae_threads{args.threads}"] - row["mae_published"]
        print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    frame = pd.DataFrame(rows)
    write_text(OUT / f"threads{args.threads}.csv", frame.to_csv(index=False, float_format="%.4f"))
    lines = [f"| method | test MAE, {args.threads} thread(s) | published (2 threads) | difference | std over seeds "
             f"(published) | status |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r[f'mae_threads{args.threads}']:.2f} | {r['mae_published']:.2f} | "
                     f"{r['difference']:+.2f} | {r['seed_std_published']:.2f} | {r['status']} |")
    write_text(OUT / f"threads{args.threads}.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
