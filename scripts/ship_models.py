"""Ship small trained models with the repository, for `python -m cellbench predict --model NAME`.

    python scripts/ship_models.py [--results results] [--per-dataset 2] [--always dcl classic_log]

Per dataset, the runs of seed 0 with the lowest best *validation* MAE (never the test split: the
test MAE is only reported) plus the reference method (``--always``), among those whose best validation MAE is at most
half the floor's, each copied to
``models/<DATASET>/<method>/``: its weights (in half precision where every test count of the run
stays within 0.1% of the full-precision count, else as they are), metadata.json, metrics.json,
localization.json and predictions.csv. A model over 5 MB is left out. Writes models/SHA256SUMS
(checked by predict before it loads a model) and models/README.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cellbench import runs  # noqa: E402
from cellbench.data.fetch import sha256, sha256sums  # noqa: E402
from cellbench.io import read_json, write_json, write_text  # noqa: E402
from cellbench.predict import MODELS_DIR, MODELS_MANIFEST  # noqa: E402

MAX_BYTES = 5_000_000
LEARNED = 0.5       # shipped only when the best validation MAE is at most this times the floor's
TOLERANCE = 1e-3   # relative change of any test count allowed by half precision
COPIED = (runs.METADATA, runs.METRICS, runs.LOCALIZATION_SUMMARY, runs.PREDICTIONS)


def _counts(run_dir: Path, state_dtype: torch.dtype | None) -> torch.Tensor:
    """The run's test counts with its weights (rounded to ``state_dtype`` and back when given)."""
    from cellbench.inference import count_images
    from cellbench.methods import get_method
    from cellbench.stages.common import load_split

    meta = read_json(run_dir / runs.METADATA)
    saved = runs.SavedCounter.read(run_dir)
    if state_dtype is not None:
        saved.best = {k: v.to(state_dtype).float() if v.is_floating_point() else v for k, v in saved.best.items()}
    test = load_split(ROOT / "results" / "prepared" / meta["dataset"] / "patches.npz",
                      ROOT / "results" / "splits" / meta["dataset"] / f"seed{meta['seed']}.json", "test", None)
    model = saved.model(get_method(meta["method"]["name"]))
    return torch.as_tensor(count_images(model, test, torch.device("cpu"), saved.count_scale, stats=saved.stats))


def _half(path: Path, out: Path, key: str = "best") -> None:
    data = torch.load(path, map_location="cpu", weights_only=True)
    data[key] = {k: v.half() if v.is_floating_point() else v for k, v in data[key].items()}
    torch.save(data, out)


def ship(run_dir: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    full, half = _counts(run_dir, None), _counts(run_dir, torch.float16)
    change = float(((half - full).abs() / full.abs().clamp(min=1.0)).max())
    use_half = change <= TOLERANCE
    for name in (runs.COUNTER, runs.LOCALIZER):
        if (run_dir / name).is_file():
            if use_half:
                _half(run_dir / name, out / name)
            else:
                shutil.copy(run_dir / name, out / name)
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy(run_dir / name, out / name)
    size = sum(p.stat().st_size for p in out.glob("*.pt"))
    return {"half": use_half, "max_relative_change": change, "bytes": size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--per-dataset", type=int, default=2)
    parser.add_argument("--always", nargs="*", default=["dcl", "classic_log"])
    args = parser.parse_args()
    results = Path(args.results)
    shutil.rmtree(MODELS_DIR, ignore_errors=True)
    rows = []
    dataset_dirs = sorted(p for p in results.iterdir() if (p / "mean_count").is_dir())
    for dataset_dir in dataset_dirs:
        candidates = []
        for run_dir in sorted(dataset_dir.glob("*/seed0")):
            if not (run_dir / runs.METRICS).is_file() or not (run_dir / runs.COUNTER).is_file():
                continue
            meta, metrics = read_json(run_dir / runs.METADATA), read_json(run_dir / runs.METRICS)
            if metrics.get("status") not in ("trained", "fitted") or meta["method"].get("floor"):
                continue
            if not meta["best_val_mae"] <= LEARNED * meta["floor_val_mae"]:
                print(f"{dataset_dir.name}/{run_dir.parent.name}: best validation MAE {meta['best_val_mae']:.2f} is "
                      f"over {LEARNED} x the floor's {meta['floor_val_mae']:.2f}: not shipped")
                continue
            candidates.append((meta["best_val_mae"], run_dir.parent.name, run_dir, meta, metrics))
        chosen = sorted(candidates)[: args.per_dataset]
        chosen += [c for c in candidates if c[1] in args.always and c not in chosen]
        floor = read_json(dataset_dir / "mean_count" / "seed0" / runs.METRICS)["mae"]
        for val_mae, method, run_dir, meta, metrics in chosen:
            out = MODELS_DIR / dataset_dir.name / method
            info = ship(run_dir, out)
            if info["bytes"] > MAX_BYTES:
                shutil.rmtree(out)
                print(f"{dataset_dir.name}/{method}: {info['bytes'] / 1e6:.1f} MB, over 5 MB: left out")
                continue
            # what predict --list shows beside the model's own test MAE
            write_json(out / runs.METADATA, {**meta, "shipped": {"floor_test_mae": floor, "half": info["half"],
                                                                 "max_relative_change": info["max_relative_change"]}})
            rows.append((f"{dataset_dir.name}/{method}", meta, metrics, floor, val_mae, info))
            print(f"{dataset_dir.name}/{method}: {info['bytes'] / 1e6:.2f} MB "
                  f"({'fp16' if info['half'] else 'fp32'}, test counts within {info['max_relative_change']:.1e})")
    files = (p for p in MODELS_DIR.rglob("*") if p.is_file() and p.name != "README.md")
    write_text(MODELS_MANIFEST, sha256sums({str(p.relative_to(MODELS_DIR)): sha256(p) for p in files}))
    write_text(MODELS_DIR / "README.md", readme(rows, {d.name for d in dataset_dirs} - {r[0].split("/")[0] for r in rows}))
    return 0


def readme(rows, skipped: set[str]) -> str:
    lines = ["# Shipped models", "",
             "Small trained counters for `python -m cellbench predict --model DATASET/METHOD` (README, "
             "\"Counting your own images\"). Made by `python scripts/ship_models.py` from the CPU track "
             "(`config/cpu.yaml`: a quarter of each network's channels, random initialisation, 2 CPU cores), "
             "seed 0 of each dataset: per dataset the runs with the lowest best *validation* MAE, DCL and the "
             "classical counter, each only where its best validation MAE is at most half the floor's. "
             "`SHA256SUMS` holds every file's hash; predict checks them before it loads a model.", "",
             "| model | trained on | weights | val MAE (best epoch) | test MAE | floor's test MAE | RMSE |",
             "|---|---|---|---|---|---|---|"]
    for name, meta, metrics, floor, val_mae, info in rows:
        t = meta["config"]["train"]
        if metrics["status"] == "fitted":   # no epochs and no network: its few parameters, fitted on the training split
            how, weights = "fitted on the training split (no deep learning)", "parameters"
        else:
            how = f"width {t['width']:g}, {meta['best_epoch']} of {t['epochs']} epochs selected"
            weights = f"{info['bytes'] / 1e6:.2f} MB {'fp16' if info['half'] else 'fp32'}"
        lines.append(f"| `{name}` | {meta['dataset']} seed {meta['seed']}: {meta['train_images']} training images, "
                     f"{how} | {weights} | {val_mae:.2f} | {metrics['mae']:.2f} | {floor:.2f} | {metrics['rmse']:.2f} |")
    if skipped:
        lines += ["", "No model is shipped for " + ", ".join(sorted(skipped)) + ": no run of seed 0 there reached a "
                  f"best validation MAE of at most {LEARNED:g} x the floor's (the numbers: the ship script's output, "
                  "and Table 2 in the README)."]
    lines += ["", "Each folder also holds the run's metadata.json (every setting, versions, the commit), "
              "metrics.json, predictions.csv (its test images) and localization.json (the point threshold "
              "chosen on validation). Half precision is used where every test count stays within 0.1% of the "
              "full-precision count. These are reduced-width models trained in minutes on a CPU: useful to "
              "try predict, and as a start; a full-width GPU run of your own (`--run`) counts better.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
