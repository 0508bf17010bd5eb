"""Publish a finished benchmark as reference results, and compare a run with a reference.

A reference holds what is needed to check and reuse a run, never the model weights: the tables
and figures from ``reports/``, every run's per-image predictions, metrics, training logs and
metadata, the splits and dataset statistics, and a SHA-256 manifest of it all.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.splits import subset_suffix
from ..errors import CellbenchError
from ..io import read_json, write_text
from ..methods.registry import fitted_method
from ..runs import COUNTER_LOG, LOCALIZER_LOG, METADATA, METRICS, PREDICTIONS, TIMING, run_dir

log = logging.getLogger(__name__)

RUN_FILES = (PREDICTIONS, METRICS, METADATA, COUNTER_LOG, LOCALIZER_LOG, TIMING)
REPORT_SUFFIXES = (".csv", ".md", ".tex")
MAX_FILE_BYTES = 5_000_000  # a reference lives in git: anything larger is a mistake (a checkpoint, say)


def _copy(src: Path, dst: Path) -> None:
    if src.stat().st_size > MAX_FILE_BYTES:
        raise CellbenchError(f"{src} is {src.stat().st_size / 1e6:.1f} MB, over the "
                             f"{MAX_FILE_BYTES / 1e6:.0f} MB a published file may have")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def _manifest(root: Path) -> str:
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "MANIFEST.sha256"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(root).as_posix()}")
    return "\n".join(lines) + "\n"


def _present(per_seed: pd.DataFrame) -> pd.Series:
    """per_seed_metrics.csv's ``present`` column as booleans (however pandas read it)."""
    return per_seed["present"].astype(str) == "True"


def _runs(results: Path, per_seed: pd.DataFrame, subsets: pd.DataFrame | None = None) -> list[Path]:
    """The finished runs of per_seed_metrics.csv, and of data_efficiency_runs.csv when given."""
    runs = [run_dir(results, r.dataset, r.method, int(r.seed)) for r in per_seed[_present(per_seed)].itertuples()]
    if subsets is not None:
        runs += [run_dir(results, r.dataset, r.method, int(r.seed),
                         "" if pd.isna(r.repeat) else subset_suffix(int(r.train_images), int(r.repeat)))
                 for r in subsets[_present(subsets)].itertuples()]
    return list(dict.fromkeys(runs))


def _epochs(metas: list[dict]) -> str:
    """The counters' epochs of the runs, e.g. "30 (countception: 15)": the config's, and those of
    the methods whose ``tracks`` entry sets their own on the run's track."""
    trained = [m for m in metas if not fitted_method(m.get("method"))]
    per_method: dict[str, set[int]] = {}
    for m in trained:
        method = m.get("method") or {}
        own = (method.get("tracks") or {}).get(m["config"].get("track")) or {}
        per_method.setdefault(method.get("name", "?"), set()).add(own.get("epochs", m["config"]["train"]["epochs"]))
    common = {m["config"]["train"]["epochs"] for m in trained}
    own = [f"{name}: {', '.join(map(str, sorted(e)))}" for name, e in sorted(per_method.items()) if e - common]
    return ", ".join(map(str, sorted(common))) + (f" ({'; '.join(own)})" if own else "")


def _readme(runs: list[Path], missing: list[str], metas: list[dict], title: str, notes: list[str],
            folder: Path) -> str:
    """``runs``: the published runs' folders relative to the results folder (dataset/method/seed...);
    ``folder``: the files being published (the README names only those it holds)."""
    envs = {(m["environment"].get("gpu") or m["environment"]["device"], m["environment"]["torch"]) for m in metas}
    commits = {m["environment"]["git"]["commit"] for m in metas}
    inits = sorted({m.get("initialisation", m.get("pretrained", "?")) for m in metas})
    epochs = _epochs(metas)
    threads = sorted({str(m["environment"].get("threads", "?")) for m in metas})
    wall = sum(m.get("wall_seconds", 0.0) for m in metas)
    datasets, methods = sorted({r.parts[0] for r in runs}), sorted({r.parts[1] for r in runs})
    seeds = sorted({r.parts[2].split("-")[0] for r in runs}, key=lambda s: int(s.removeprefix("seed")))
    subsets = sum("-n" in r.parts[2] for r in runs)
    comparable = (folder / "per_seed_metrics.csv").is_file()   # compare reads it
    lines = [f"# {title}", "",
             "Reference results of cellbench, published with `python -m cellbench publish`.",
             *(["Compare a run of your own with them: `python -m cellbench compare --reference <this folder>`."]
               if comparable else []), "",
             f"- Runs: {len(metas)} ({', '.join(datasets)}; methods {', '.join(methods)}; "
             f"{', '.join(seeds)}" + (f"; {subsets} of them on training subsets" if subsets else "") + ")",
             f"- Missing runs: {len(missing)}" + (": " + ", ".join(missing) if missing else ""),
             f"- CPU threads per run: {', '.join(threads)} (a byte-identical rerun needs the same)",
             f"- Device and torch: {'; '.join(f'{d}, torch {t}' for d, t in sorted(envs))}",
             f"- Initialisation: {'; '.join(inits)}",
             f"- Epochs: {epochs}; training time of all runs together: "
             f"{wall / 60:.1f} min",
             f"- cellbench commit(s): {', '.join(sorted(commits))}", ""]
    lines += [f"{n}" for n in notes] + ([""] if notes else [])
    tables = [name for name, present in (
        ("`table*.{csv,md,tex}`", any(folder.glob("table*"))), ("`paired.*`", any(folder.glob("paired.*"))),
        ("`model_selection.csv`", (folder / "model_selection.csv").is_file()),
        ("`per_seed_metrics.csv`", comparable)) if present]
    rows = [(tables, f"| {', '.join(tables)} | the tables, as `reports/` holds them |"),
            (any(folder.glob("data_efficiency*")), "| `data_efficiency*.{csv,md,tex}` | the data-efficiency study: "
             "its table, every run's MAE, RMSE and GAME, GAME of its whole-split runs |"),
            ((folder / "figures").is_dir(), "| `figures/` | the figures |"),
            (subsets < len(runs), "| `runs/<dataset>/<method>/seed<k>/` | per-image predictions, metrics, training "
             "logs, metadata (config, versions, device) |"),
            (subsets, "| `runs/<dataset>/<method>/seed<k>-n<size>-r<repeat>/` | the same, of a run on a training "
             "subset (the data-efficiency study) |"),
            ((folder / "splits").is_dir(), "| `splits/` | the splits of the published runs (of a seed, and of its "
             "training subsets) |"),
            ((folder / "stats").is_dir(), "| `stats/` | the dataset statistics |"),
            (True, "| `MANIFEST.sha256` | SHA-256 of every file here (`sha256sum -c MANIFEST.sha256`) |")]
    lines += ["| path | what it is |", "|---|---|", *(row for present, row in rows if present), ""]
    return "\n".join(lines)


def publish(results: Path, reports: Path, out: Path, title: str, notes: list[str] | None = None,
            extra: list[Path] | None = None) -> Path:
    """Copy a finished run's publishable files into ``out`` (replaced whole, never half-written)."""
    per_seed_csv = reports / "per_seed_metrics.csv"           # the tables rule's
    subsets_csv = reports / "data_efficiency_runs.csv"        # the data-efficiency study's, when it ran
    if not per_seed_csv.is_file() and not subsets_csv.is_file():
        raise CellbenchError(f"neither {per_seed_csv} nor {subsets_csv} exists: run the workflow (its tables or "
                             f"data_efficiency rule) first")
    per_seed = pd.read_csv(per_seed_csv) if per_seed_csv.is_file() else pd.DataFrame(
        columns=["dataset", "method", "seed", "present"])
    subsets = pd.read_csv(subsets_csv) if subsets_csv.is_file() else None
    runs = _runs(results, per_seed, subsets)
    if not runs:
        raise CellbenchError(f"{per_seed_csv if per_seed_csv.is_file() else subsets_csv} lists no finished run")
    missing = [f"{r.dataset}/{r.method}/seed{r.seed}" for r in per_seed[~_present(per_seed)].itertuples()]
    if subsets is not None:
        missing += [f"{r.dataset}/{r.method}/seed{r.seed}"
                    + ("" if pd.isna(r.repeat) else subset_suffix(int(r.train_images), int(r.repeat)))
                    for r in subsets[~_present(subsets)].itertuples()]

    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for path in sorted(reports.iterdir()):
        if path.is_file() and path.suffix in REPORT_SUFFIXES and path.name != "README.md":
            _copy(path, staging / path.name)
    for path in sorted((reports / "figures").glob("*")):
        _copy(path, staging / "figures" / path.name)
    metas = []
    for run in runs:
        for name in RUN_FILES:
            if (run / name).is_file():
                _copy(run / name, staging / "runs" / run.relative_to(results) / name)
        metas.append(read_json(run / METADATA))
    for dataset, split_name in sorted({run.relative_to(results).parts[::2] for run in runs}):   # seed0-n8-r0
        if (split := results / "splits" / dataset / f"{split_name}.json").is_file():
            _copy(split, staging / "splits" / dataset / split.name)
    for dataset in sorted({run.relative_to(results).parts[0] for run in runs}):
        if (results / "stats" / f"{dataset}.json").is_file():
            _copy(results / "stats" / f"{dataset}.json", staging / "stats" / f"{dataset}.json")
    for path in extra or []:
        if not path.is_file():
            raise CellbenchError(f"{path} (given with --extra) does not exist")
        _copy(path, staging / path.name)
    write_text(staging / "README.md", _readme([run.relative_to(results) for run in runs], list(dict.fromkeys(missing)),
                                              metas, title, notes or [], staging))
    write_text(staging / "MANIFEST.sha256", _manifest(staging))

    if out.exists():
        retired = out.with_name(out.name + ".old")
        shutil.rmtree(retired, ignore_errors=True)
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
    log.info("published %d runs to %s", len(runs), out)
    return out


def compare(reference: Path, reports: Path) -> pd.DataFrame:
    """Your run's MAE and RMSE beside a reference's, per dataset and method (mean over seeds), per
    image and, for a dataset cut into several patches (MBM, DCC), per patch too; and the paired
    difference on the seeds both have (same seed = same split)."""
    frames = {}
    for name, folder in (("reference", reference), ("yours", reports)):
        path = folder / "per_seed_metrics.csv"
        if not path.is_file():
            raise CellbenchError(f"{path} does not exist ({name}); run the report rule, or check the folder")
        frame = pd.read_csv(path)
        frames[name] = frame[_present(frame)]
    merged = frames["reference"].merge(frames["yours"], on=["dataset", "method", "seed"], how="outer",
                                       suffixes=("_ref", "_yours"))
    rows = []
    for (dataset, method), group in merged.groupby(["dataset", "method"], sort=True):
        paired = group.dropna(subset=["mae_ref", "mae_yours"])
        row = {"dataset": dataset, "method": method}
        for who in ("ref", "yours"):
            for metric in ("mae", "rmse", "patch_mae", "patch_rmse"):   # a reference from before 2026-12-07 has no patch_*
                column = f"{metric}_{who}"
                values = group[column].dropna() if column in group else pd.Series(dtype=float)
                row[column] = values.mean() if len(values) else np.nan
            row[f"seeds_{who}"] = int(group[f"mae_{who}"].notna().sum())
        row["paired_seeds"] = len(paired)
        row["mae_diff_paired"] = (paired["mae_yours"] - paired["mae_ref"]).mean() if len(paired) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def compare_markdown(frame: pd.DataFrame, reference: Path) -> str:
    lines = [f"### Your run against the reference `{reference}`", "",
             "Means over seeds, per image (an image's patches summed); per patch too for a dataset cut into "
             "several patches (MBM, DCC; '-' otherwise). \"RMSE\" is what the DCL paper calls MSE. The paired "
             "difference uses only the seeds both runs have (a seed fixes the split), yours minus the reference; "
             "negative means yours counts better.", "",
             "| dataset | method | reference MAE | your MAE | reference RMSE | your RMSE | reference MAE per patch | "
             "your MAE per patch | seeds (ref / yours / both) | paired ΔMAE |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(x: float, sign: str = "", absent: str = "missing") -> str:
        return absent if pd.isna(x) else f"{x:{sign}.2f}"
    for r in frame.itertuples():
        lines.append(f"| {r.dataset} | {r.method} | {fmt(r.mae_ref)} | {fmt(r.mae_yours)} | {fmt(r.rmse_ref)} | "
                     f"{fmt(r.rmse_yours)} | {fmt(r.patch_mae_ref, absent='-')} | {fmt(r.patch_mae_yours, absent='-')} | "
                     f"{r.seeds_ref} / {r.seeds_yours} / {r.paired_seeds} | {fmt(r.mae_diff_paired, '+')} |")
    return "\n".join(lines) + "\n"
