"""Build every table and figure in ``reports/`` from the runs under ``results/``."""

from __future__ import annotations

import logging
import platform
import sys
from pathlib import Path

import pandas as pd

from ..config import seeds_of, subset_runs
from ..errors import ConfigError
from ..io import read_csv, read_json, write_text
from ..data.registry import load_dataset
from ..methods import discover, selected_methods
from ..runs import COUNTER_LOG, LOCALIZATION, PREDICTIONS, run_dir
from . import plots, tables
from .collect import (classic_numbers, localization_per_seed, paired_differences, paper_numbers, per_seed_metrics,
                      published_numbers,
                      subset_metrics, summarise, summarise_subsets)
from .track import track_caption

log = logging.getLogger(__name__)


def build_reports(config: dict, results: Path, out: Path, methods: list[str] | None = None) -> None:
    datasets = config["datasets"]
    methods = methods or selected_methods(config)
    specs = discover()
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)

    per_seed = pd.concat([per_seed_metrics(results, [d], methods, seeds_of(config, d)) for d in datasets],
                         ignore_index=True)
    write_text(out / "per_seed_metrics.csv", per_seed.to_csv(index=False, float_format="%.4f"))
    summary = summarise(per_seed)
    paper = paper_numbers()
    paper_names = {m: specs[m].paper_name for m in methods}

    floors = [m for m in methods if specs[m].floor]
    fitted = [m for m in methods if specs[m].fitted]
    track = track_caption(config)
    units = {d: load_dataset(d).paper_error_unit for d in datasets}
    frame, grid = tables.table2(summary, paper, datasets, methods, paper_names, floors, track, units, fitted)
    tables.write_table(frame, grid, out / "table2")
    frame, grid = tables.table_game(summary, datasets, methods, floors, track, fitted=fitted)
    tables.write_table(frame, grid, out / "table2_game")
    frame, grid = tables.table_published(published_numbers(), summary, datasets, track)
    tables.write_table(frame, grid, out / "published_anchors")
    frame, grid = tables.table3(summary, paper, datasets, ablation_pairs(specs, methods), paper_names, floors, track)
    tables.write_table(frame, grid, out / "table3")
    stats = [read_json(results / "stats" / f"{d}.json") for d in datasets if (results / "stats" / f"{d}.json").is_file()]
    frame, grid = tables.table1(stats)
    tables.write_table(frame, grid, out / "table1_datasets")

    paired = [p for d in datasets for a in reference_methods(specs, methods) for b in methods if b != a
              for p in [paired_differences(results, d, a, b, seeds_of(config, d))] if p]
    paired_frame = pd.DataFrame(paired)
    write_text(out / "paired.csv", paired_frame.to_csv(index=False, float_format="%.4f"))
    write_text(out / "paired.md", _paired_markdown(paired_frame))

    localization = pd.concat([localization_per_seed(results, [d], methods, seeds_of(config, d)) for d in datasets],
                             ignore_index=True)
    write_text(out / "localization_per_seed.csv", localization.to_csv(index=False, float_format="%.4f"))
    failures = {(d, m): text for d in datasets for m in methods
                if (text := tables.failure_text(summary, d, m, _seeds_run(summary, d, m)))}
    frame, grid = tables.table4(localization, datasets, methods, failures, track, fitted)
    tables.write_table(frame, grid, out / "table4_localization")
    frame, grid = tables.table4_paired(localization, datasets)
    tables.write_table(frame, grid, out / "table4_paired")

    write_text(out / "model_selection.csv", model_selection(per_seed).to_csv(index=False, float_format="%.4f"))

    plots.mae_by_method(summary, datasets, methods, out / "figures" / "mae_by_method", track)
    write_text(out / "README.md", _readme(config, out))


def model_selection(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per run: its status, the selected epoch and its validation MAE, and the test MAE of the selected
    epoch beside the last epoch's (how much selection on the small validation split moves a number)."""
    done = per_seed[per_seed["present"]]
    if "best_val_mae" not in done:
        return done
    frame = done[["dataset", "method", "seed", "status", "best_epoch", "best_val_mae", "mae", "last_epoch_mae"]]
    frame = frame.rename(columns={"best_epoch": "selected_epoch", "best_val_mae": "selected_val_mae",
                                  "mae": "test_mae_selected", "last_epoch_mae": "test_mae_last_epoch"})
    return frame.assign(selected_minus_last=frame["test_mae_selected"] - frame["test_mae_last_epoch"])


def build_data_efficiency(config: dict, results: Path, out: Path) -> None:
    """The data-efficiency table and figure (config ``data_efficiency``) from the subset runs and
    the whole-split runs of the same methods and seed."""
    methods, specs = selected_methods(config), discover()
    study = config["data_efficiency"]
    datasets = [d for d in config["datasets"] if subset_runs(config, d, methods)]
    if not datasets:
        raise ConfigError("data_efficiency: no dataset has training sizes (data_efficiency.sizes) among the "
                          f"config's datasets ({', '.join(config['datasets'])}); nothing to tabulate")
    frames = []
    for dataset in datasets:
        split = read_json(results / "splits" / dataset / f"seed{study['split_seed']}.json",
                          "a split file (the split stage's seed<k>.json)")
        frames.append(subset_metrics(results, dataset, subset_runs(config, dataset, methods), study["split_seed"],
                                     len(split["train"])))
    per_run = pd.concat(frames, ignore_index=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    write_text(out / "data_efficiency_runs.csv", per_run.to_csv(index=False, float_format="%.4f"))
    summary = summarise_subsets(per_run)
    floors = [m for m in methods if specs[m].floor]
    used = {d: list(dict.fromkeys(m for m, _, _ in subset_runs(config, d, methods))) for d in datasets}
    track = track_caption(config)
    frame, grid = tables.table_data_efficiency(summary, classic_numbers(), datasets, used, floors, track)
    tables.write_table(frame, grid, out / "data_efficiency")
    plots.data_efficiency(summary, classic_numbers(), datasets, methods, floors, out / "figures" / "data_efficiency",
                          track)
    # GAME beside the study's whole-split runs (the tables rule's table2_game covers every seed run)
    whole = per_run[per_run["whole_split"]].assign(collapsed=lambda f: f["status"] == "collapsed",
                                                   did_not_learn=lambda f: f["status"] == "did not learn")
    frame, grid = tables.table_game(summarise(whole), datasets, methods, floors, track,
                                    runs=f"the whole split's runs of seed {study['split_seed']}", ran=used)
    tables.write_table(frame, grid, out / "data_efficiency_game")
    missing = per_run[~per_run["present"]]
    if len(missing):
        log.warning("data efficiency: %d of %d runs have no metrics.json yet; their cells are left out",
                    len(missing), len(per_run))


def build_dataset_figures(config: dict, dataset: str, results: Path, out: Path, prepared: Path,
                          split_file: Path) -> None:
    """Predicted-vs-true scatter, learning curves and the example maps for one dataset."""
    from .examples import example_figure, localization_figure, order_for_examples
    seeds, methods, specs = seeds_of(config, dataset), selected_methods(config), discover()
    frames, logs = {}, {}
    for method in methods:
        preds = [read_csv(p, "per-image predictions (predictions.csv)", ("true_count", "pred_count")) for s in seeds if (p := run_dir(results, dataset, method, s) / PREDICTIONS).is_file()]
        if preds:
            frames[method] = pd.concat(preds)
        curves = [read_csv(p, "a learning curve (counter_log.csv)", ("epoch", "val_mae")) for s in seeds if (p := run_dir(results, dataset, method, s) / COUNTER_LOG).is_file()]
        if curves:
            logs[method] = curves
    (out / "figures").mkdir(parents=True, exist_ok=True)
    track = track_caption(config)
    plots.predicted_vs_true(frames, dataset, out / "figures" / f"pred_vs_true_{dataset}", track)
    plots.learning_curves(logs, dataset, out / "figures" / f"learning_curves_{dataset}", track)
    example_figure(config, dataset, seeds[0], prepared, split_file, results, order_for_examples(specs, methods),
                   out / "figures" / f"examples_{dataset}")
    localized = [m for m in methods if any((run_dir(results, dataset, m, s) / LOCALIZATION).is_file() for s in seeds)]
    plots.f1_by_radius(localization_per_seed(results, [dataset], localized, seeds), dataset,
                       out / "figures" / f"f1_by_radius_{dataset}", track)
    localization_figure(config, dataset, seeds[0], prepared, split_file, results, localized,
                        out / "figures" / f"localization_{dataset}")


def _seeds_text(config: dict) -> str:
    own = config["dataset_seeds"]
    return str(config["seeds"]) + "".join(f", {d}: {s}" for d, s in own.items())


def _seeds_run(summary: pd.DataFrame, dataset: str, method: str) -> int:
    row = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
    return int(row["n_seeds"].iloc[0]) if len(row) else 0


def reference_methods(specs: dict, methods: list[str]) -> list[str]:
    """The methods marked ``reference: true``: compared with every other method."""
    return [m for m in methods if specs[m].reference]


def ablation_pairs(specs: dict, methods: list[str]) -> list[tuple[str, str]]:
    """(full, ablated) for every method with ``ablation_of`` whose full method also runs."""
    return [(specs[m].ablation_of, m) for m in methods if specs[m].ablation_of in methods]


def _paired_markdown(frame: pd.DataFrame) -> str:
    lines = ["### Paired comparisons (same seeds, same splits)", "",
             "MAE of method A minus MAE of method B; negative means A counts better.", "",
             "| dataset | A | B | seeds | ΔMAE mean ± std over seeds | seeds A better | per-image Δ abs. error, mean ± s.e. |",
             "|---|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        std = "" if pd.isna(r.mae_diff_std) else f" ± {r.mae_diff_std:.2f}"
        sem = "" if pd.isna(r.image_diff_sem) else f" ± {r.image_diff_sem:.2f}"
        lines.append(f"| {r.dataset} | {r.method_a} | {r.method_b} | {r.n_seeds} | {r.mae_diff_mean:+.2f}{std} | "
                     f"{r.seeds_a_better}/{r.n_seeds} | {r.image_diff_mean:+.2f}{sem} (n={r.n_image_pairs}) |")
    return "\n".join(lines) + "\n"


def _readme(config: dict, out: Path) -> str:
    import torch
    device = "CUDA: " + torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"
    return f"""# Reports

Generated by `snakemake` (rule `tables`, `python -m cellbench tables`) from the runs under `results/`.
Every counting number is computed from the runs' `predictions.csv` files, every localization
number from their `localization.csv` files (`python -m cellbench localize`).

- Machine: {platform.node()} ({platform.machine()}, {device}), Python {sys.version.split()[0]}, torch {torch.__version__}
- Command line: `{' '.join(sys.argv)}`
- Experiment: {track_caption(config) or "the DCL paper's protocol (full width, whole 256x256 patches)"}
- Datasets: {', '.join(config['datasets'])}; seeds: {_seeds_text(config)}; epochs: {config['train']['epochs']};
  initialisation: `train.pretrained: {config['train']['pretrained']}` (see each run's metadata.json for what was used)

| file | what it is |
|---|---|
| `table1_datasets.{{csv,md,tex}}` | dataset statistics beside the paper's Table 1 |
| `table2.{{csv,md,tex}}` | MAE and the paper's "MSE" (= RMSE) per method and dataset, mean ± std over seeds, with the paper's numbers and the difference; best per column in bold |
| `table2_game.{{csv,md,tex}}` | GAME(0-3) per method and dataset (each test image cut into 4^L cells, the count error summed over them), mean ± std over seeds, beside Table 2 |
| `data_efficiency.{{csv,md,tex}}`, `data_efficiency_runs.csv` | with `data_efficiency` in the config (`bash run.sh cpu-efficiency`): test MAE against training images per method, mean ± std over repeats, beside the classic published VGG numbers; every subset run's MAE, RMSE and GAME |
| `data_efficiency_game.{{csv,md,tex}}` | GAME(0-3) of the study's whole-split runs (its seed, its methods), as Table 2 (GAME) |
| `figures/data_efficiency.{{png,pdf}}` | the same as a figure: one panel per dataset, log-scaled training-images axis |
| `table3.{{csv,md,tex}}` | each ablation beside its full method (DCL with and without global message passing), improvement in %, beside the paper's Table 3 |
| `paired.{{csv,md}}` | paired comparisons of the reference method (DCL) against each method on the same seeds and splits |
| `model_selection.csv` | per run: its status, the selected epoch and its validation MAE, the test MAE of the selected epoch beside the last epoch's and their difference (how much selection on the small validation split moves a number) |
| `per_seed_metrics.csv` | MAE / RMSE / MSE of every run (NaN and present=False for a missing run) |
| `figures/mae_by_method.{{png,pdf}}` | test MAE per method and dataset, error bars = std over seeds |
| `figures/pred_vs_true_<dataset>.{{png,pdf}}` | predicted against true count per test image, one panel per method on shared axes |
| `figures/learning_curves_<dataset>.{{png,pdf}}` | training loss and validation MAE per epoch |
| `figures/examples_<dataset>.{{png,pdf}}` | test patches, ground-truth dots, every method's counter map (reference first, then its ablations) and the localizer maps, each with its colour bar; a border-bright map shows the convolutions' zero padding, not cells |
| `table4_localization.{{csv,md,tex}}` | localization F1 at the primary radius (half the median dot spacing), mean ± std over seeds, per method, source map (the counter's; the localizer's where a method has one) and rule (threshold chosen on validation; count-guided) |
| `table4_paired.{{csv,md,tex}}` | paired by seed: F1 of each localizer's map minus F1 of each counter's map, per rule |
| `localization_per_seed.csv` | per run, source map, rule and radius: summed tp, fp, fn over the test images, precision, recall, F1 (empty where undefined), MAE of the count by detection |
| `figures/localization_<dataset>.{{png,pdf}}` | threshold-rule points of every method over the true dots on test patches (matched, false, missed) |
| `figures/f1_by_radius_<dataset>.{{png,pdf}}` | test F1 against the matching radius, per method and source map, both rules |
| `report.html` | `bash run.sh report smoke` (or `full`, after a full run): all of the above in one page |

"MSE" in the DCL paper, as in most of the cell-counting literature, is the root of the mean squared error.
"""
