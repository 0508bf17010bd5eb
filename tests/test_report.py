"""Tables come from predictions.csv alone and agree with a direct computation; a missing run is
shown as missing, never as zero; the LaTeX is a well-formed tabular; plots are written; a published
reference holds everything but the weights, and a run is compared with it seed by seed."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest

from cellbench import REPO_ROOT
from cellbench.config import load_config
from cellbench.errors import CellbenchError
from cellbench.reporting.build import build_reports
from cellbench.reporting.publish import compare, compare_markdown, publish

METHODS = ["dcl", "dcl_no_gmp", "csrnet"]


@pytest.fixture
def fake_results(tmp_path):
    """predictions.csv files with known errors; csrnet seed 1 on MBM is missing."""
    rng = np.random.default_rng(0)
    results = tmp_path / "results"
    truth = {}
    for dataset in ("VGG", "MBM"):
        for method in METHODS:
            for seed in (0, 1):
                if (dataset, method, seed) == ("MBM", "csrnet", 1):
                    continue
                true = rng.integers(50, 200, 12)
                pred = true + rng.normal(0, 5 + 3 * METHODS.index(method), 12)
                run = results / dataset / method / f"seed{seed}"
                run.mkdir(parents=True)
                pd.DataFrame({"image_id": [f"{i:03d}" for i in range(12)], "true_count": true,
                              "pred_count": pred}).to_csv(run / "predictions.csv", index=False)
                truth[(dataset, method, seed)] = (np.abs(pred - true).mean(), np.sqrt(((pred - true) ** 2).mean()))
    return results, truth


def _build(results, out, methods):
    config = load_config()
    config.update(datasets=["VGG", "MBM"], seeds=[0, 1], methods=methods)
    build_reports(config, results, out)
    return out


@pytest.fixture
def reports(fake_results, tmp_path):
    return _build(fake_results[0], tmp_path / "reports", METHODS)


def test_tables_agree_with_a_direct_computation(fake_results, reports):
    _, truth = fake_results
    out = reports

    table2 = pd.read_csv(out / "table2.csv")
    for (dataset, method), group in table2.groupby(["dataset", "method"]):
        for metric, index in (("MAE", 0), ("MSE (=RMSE)", 1)):
            row = group[group["metric"] == metric].iloc[0]
            values = [truth[(dataset, method, s)][index] for s in (0, 1) if (dataset, method, s) in truth]
            assert row["n_seeds"] == len(values)
            assert row["mean"] == pytest.approx(np.mean(values), abs=1e-4)
            if len(values) > 1:
                assert row["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-4)
    # the paper's numbers beside ours
    dcl_vgg = table2[(table2["method"] == "dcl") & (table2["dataset"] == "VGG") & (table2["metric"] == "MAE")].iloc[0]
    assert dcl_vgg["paper"] == 4.1
    assert dcl_vgg["diff_vs_paper"] == pytest.approx(dcl_vgg["mean"] - 4.1, abs=1e-4)

    table3 = pd.read_csv(out / "table3.csv")
    row = table3[(table3["dataset"] == "VGG") & (table3["metric"] == "MAE")].iloc[0]
    without = np.mean([truth[("VGG", "dcl_no_gmp", s)][0] for s in (0, 1)])
    with_ = np.mean([truth[("VGG", "dcl", s)][0] for s in (0, 1)])
    assert row["improvement_pct"] == pytest.approx(100 * (without - with_) / without, abs=1e-3)
    assert row["paper_improvement_pct"] == pytest.approx(18.0, abs=0.05)

    paired = pd.read_csv(out / "paired.csv")
    p = paired[(paired["dataset"] == "VGG") & (paired["method_b"] == "csrnet")].iloc[0]
    diffs = [truth[("VGG", "dcl", s)][0] - truth[("VGG", "csrnet", s)][0] for s in (0, 1)]
    assert p["mae_diff_mean"] == pytest.approx(np.mean(diffs), abs=1e-4)
    assert p["n_seeds"] == 2


def test_missing_run_is_shown_as_missing(fake_results, tmp_path):
    out = _build(fake_results[0], tmp_path / "reports", METHODS + ["mcnn"])  # mcnn never ran
    table2 = pd.read_csv(out / "table2.csv")
    mcnn = table2[table2["method"] == "mcnn"]
    assert (mcnn["n_seeds"] == 0).all() and mcnn["mean"].isna().all()
    markdown = (out / "table2.md").read_text()
    mcnn_row = next(line for line in markdown.splitlines() if line.startswith("| mcnn | ours"))
    assert mcnn_row.count("missing") == 4 and not re.search(r"\| 0\.00", mcnn_row)
    csrnet_mbm = table2[(table2["method"] == "csrnet") & (table2["dataset"] == "MBM")]
    assert (csrnet_mbm["n_seeds"] == 1).all()
    per_seed = pd.read_csv(out / "per_seed_metrics.csv")
    assert not per_seed[(per_seed["method"] == "mcnn")]["present"].any()


def test_collapsed_run_is_never_a_number(fake_results, tmp_path):
    results, _ = fake_results
    metrics = results / "VGG" / "csrnet" / "seed1" / "metrics.json"
    metrics.write_text(json.dumps({"status": "collapsed", "collapse": {"epoch": 7, "ratio": 0.01}}))
    out = _build(results, tmp_path / "reports", METHODS)
    table2 = pd.read_csv(out / "table2.csv")
    vgg = table2[(table2["method"] == "csrnet") & (table2["dataset"] == "VGG")]
    assert (vgg["n_collapsed"] == 1).all()
    row = next(line for line in (out / "table2.md").read_text().splitlines() if line.startswith("| csrnet | ours"))
    cells = row.split(" | ")
    assert cells[2] == cells[3] == "collapsed (1 of 2 seeds)"      # VGG MAE and RMSE
    assert "collapsed" not in cells[4] and "**" not in cells[2]    # MBM is fine; never bold


def test_a_run_that_did_not_learn_is_never_a_number_in_any_table(fake_results, tmp_path):
    results, _ = fake_results
    (results / "MBM" / "dcl" / "seed0" / "metrics.json").write_text(json.dumps({"status": "did not learn"}))
    _fake_localization(results, np.random.default_rng(1))
    out = _build(results, tmp_path / "reports", METHODS)
    table2 = pd.read_csv(out / "table2.csv")
    assert (table2[(table2["method"] == "dcl") & (table2["dataset"] == "MBM")]["n_did_not_learn"] == 1).all()
    row = next(line for line in (out / "table2.md").read_text().splitlines() if line.startswith("| dcl | ours"))
    cells = row.split(" | ")
    assert cells[4] == cells[5].rstrip(" |") == "did not learn (1 of 2 seeds)"   # MBM MAE and RMSE
    assert "did not learn" not in cells[2]                                       # VGG learned
    table3 = (out / "table3.md").read_text()
    assert "did not learn (1 of 2 seeds)" in table3
    table4 = [line for line in (out / "table4_localization.md").read_text().splitlines() if line.startswith("| dcl |")]
    assert table4 and all("(did not learn (1 of 2 seeds))" in line for line in table4)


def test_a_track_other_than_the_paper_says_so_and_leaves_the_paper_out(fake_results, tmp_path):
    config = load_config()
    config.update(datasets=["VGG", "MBM"], seeds=[0, 1], methods=METHODS, track="cpu")
    config["train"].update(width=0.25, crop_size=96, epochs=40)
    out = tmp_path / "reports"
    build_reports(config, fake_results[0], out)
    table2 = (out / "table2.md").read_text()
    assert "### Table 2: counting error per dataset (cpu track)" in table2
    assert "cpu track: width 0.25, 96x96 training crops, 40 epochs" in table2 and "not the paper's protocol" in table2
    assert "| paper (" not in table2 and "ours - paper" not in table2
    assert pd.read_csv(out / "table2.csv")["paper"].isna().all()
    assert "(paper:" not in (out / "table3.md").read_text()
    assert "cpu track" in (out / "README.md").read_text()


def test_methods_not_beating_the_floor_are_marked(fake_results, tmp_path):
    results, truth = fake_results
    for dataset in ("VGG", "MBM"):   # a floor that every method beats on MBM and none on VGG
        for seed in (0, 1):
            frame = pd.read_csv(results / dataset / "dcl" / f"seed{seed}" / "predictions.csv", dtype={"image_id": str})
            offset = 0.5 if dataset == "VGG" else 500.0
            frame["pred_count"] = frame["true_count"] + offset
            run = results / dataset / "mean_count" / f"seed{seed}"
            run.mkdir(parents=True)
            frame.to_csv(run / "predictions.csv", index=False)
    out = _build(results, tmp_path / "reports", METHODS + ["mean_count"])
    table2 = pd.read_csv(out / "table2.csv")
    marks = table2[(table2["metric"] == "MAE") & (table2["method"] != "mean_count")].set_index(["dataset", "method"])
    assert not marks.loc["VGG"]["beats_floor"].any() and marks.loc["MBM"]["beats_floor"].all()
    row = next(line for line in (out / "table2.md").read_text().splitlines() if line.startswith("| dcl | ours"))
    assert row.split(" | ")[2].strip("*").endswith("†") and not row.split(" | ")[4].strip("*").endswith("†")
    floor_rows = [line for line in (out / "table3.md").read_text().splitlines() if "mean_count (ours, the floor)" in line]
    assert len(floor_rows) == 1


def test_latex_is_a_well_formed_tabular(reports):
    for name in ("table2", "table3"):
        tex = (reports / f"{name}.tex").read_text()
        body = tex[tex.index(r"\begin{tabular}"):tex.index(r"\end{tabular}")]
        spec = re.match(r"\\begin\{tabular\}\{([lc]+)\}", body).group(1)
        rows = [line for line in body.splitlines() if line.endswith(r"\\")]
        assert rows and all(line.count("&") == len(spec) - 1 for line in rows)
        assert "_" not in re.sub(r"\\_", "", body)  # underscores escaped
        assert r"\textbf{" in body


def test_plots_are_written(reports):
    for suffix in (".png", ".pdf"):
        assert (reports / "figures" / f"mae_by_method{suffix}").stat().st_size > 5000
    assert (reports / "figures" / "mae_by_method.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _with_metadata(results):
    """The metadata.json the train stage writes, reduced to what publish reads, plus a checkpoint."""
    for run in results.glob("*/*/seed*"):
        method = run.parent.name   # dcl trains for its own epochs on this track (its tracks entry)
        meta = {"environment": {"device": "cpu", "torch": "x", "git": {"commit": "abc"}},
                "config": {"train": {"epochs": 3}, "track": "cpu"}, "initialisation": "random initialisation",
                "wall_seconds": 6.0, "method": {"name": method, "training": "fit" if method == "mean_count" else "gradient",
                                                "tracks": {"cpu": {"epochs": 2}} if method == "dcl" else {}}}
        (run / "metadata.json").write_text(json.dumps(meta))
        (run / "counter.pt").write_bytes(b"weights")
    return results


def test_publish_copies_everything_but_weights_and_a_manifest_checks_it(fake_results, reports, tmp_path):
    results = _with_metadata(fake_results[0])
    out = publish(results, reports, tmp_path / "reference" / "v1", "test reference", ["a note"])
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    runs = {p.parent for p in results.glob("*/*/seed*/predictions.csv")}
    assert len(runs) == 11
    for run in runs:
        rel = run.relative_to(results).as_posix()
        assert {f"runs/{rel}/predictions.csv", f"runs/{rel}/metadata.json"} <= files
    assert not any(name.endswith(".pt") for name in files)
    assert {"table2.csv", "table2.tex", "per_seed_metrics.csv", "figures/mae_by_method.png"} <= files
    for line in (out / "MANIFEST.sha256").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    readme = (out / "README.md").read_text()
    assert "Runs: 11" in readme and "Missing runs: 1: MBM/csrnet/seed1" in readme and "a note" in readme
    assert "Epochs: 3 (dcl: 2)" in readme

    # republishing replaces the folder whole; a file too large to publish leaves the old one intact
    (reports / "figures" / "huge.png").write_bytes(b"\0" * 6_000_000)
    with pytest.raises(CellbenchError, match="huge.png is 6.0 MB"):
        publish(results, reports, out, "test reference")
    assert (out / "MANIFEST.sha256").is_file() and not (out / "figures" / "huge.png").exists()


def test_compare_pairs_the_seeds_both_runs_have(fake_results, reports, tmp_path):
    reference = publish(_with_metadata(fake_results[0]), reports, tmp_path / "ref", "t")
    mine = tmp_path / "mine"
    mine.mkdir()
    per_seed = pd.read_csv(reports / "per_seed_metrics.csv")
    per_seed = per_seed[per_seed["seed"] == 0].copy()       # one seed only
    per_seed.loc[per_seed["method"] == "dcl", "mae"] += 1.5  # and dcl worse by 1.5
    per_seed.to_csv(mine / "per_seed_metrics.csv", index=False)

    frame = compare(reference, mine).set_index(["dataset", "method"])
    dcl = frame.loc[("VGG", "dcl")]
    assert (dcl["seeds_ref"], dcl["seeds_yours"], dcl["paired_seeds"]) == (2, 1, 1)
    assert dcl["mae_diff_paired"] == pytest.approx(1.5)
    assert frame.loc[("VGG", "csrnet"), "mae_diff_paired"] == pytest.approx(0.0)
    assert "| VGG | dcl |" in compare_markdown(frame.reset_index(), reference)


def _fake_localization(results, rng):
    """localization.csv in every run with random tp, fp, fn (dcl with a localizer's map too); one
    VGG image of csrnet with nothing predicted (undefined precision)."""
    from cellbench.localization import radii_for
    from cellbench.stages.localize import COLUMNS

    for run in results.glob("*/*/seed*"):
        dataset, method = run.parts[-3], run.parts[-2]
        radii = radii_for(dataset)
        rows = []
        for source in ("counter", "localizer") if method == "dcl" else ("counter",):
            for rule in ("threshold", "count"):
                for radius in radii.values:
                    for i in range(12):
                        tp, fp, fn = (int(v) for v in rng.integers(0, 40, 3))
                        if (method, i) == ("csrnet", 0):
                            tp = fp = 0
                        n = tp + fp
                        rows.append({"source": source, "rule": rule, "radius": radius,
                                     "primary": radius == radii.primary, "image_id": f"{i:03d}",
                                     "true_count": tp + fn, "pred_count": float(n), "n_pred": n, "tp": tp, "fp": fp,
                                     "fn": fn, "precision": tp / n if n else np.nan, "recall": tp / (tp + fn),
                                     "f1": 2 * tp / (2 * tp + fp + fn), "count_error": fp - fn,
                                     "threshold": 0.5 if rule == "threshold" else np.nan})
        pd.DataFrame(rows, columns=COLUMNS).to_csv(run / "localization.csv", index=False)


def _direct_f1(results, dataset, method, seed, source, rule):
    frame = pd.read_csv(results / dataset / method / f"seed{seed}" / "localization.csv")
    frame = frame[frame["primary"] & (frame["source"] == source) & (frame["rule"] == rule)]
    tp, fp, fn = frame["tp"].sum(), frame["fp"].sum(), frame["fn"].sum()
    return 2 * tp / (2 * tp + fp + fn)


def test_table4_agrees_with_a_direct_computation_from_localization_csv(fake_results, tmp_path):
    results, truth = fake_results
    _fake_localization(results, np.random.default_rng(1))
    out = _build(results, tmp_path / "reports", METHODS)
    table4 = pd.read_csv(out / "table4_localization.csv")
    for r in table4.itertuples():
        seeds = [s for s in (0, 1) if (r.dataset, r.method, s) in truth]
        values = [_direct_f1(results, r.dataset, r.method, s, r.source, r.rule) for s in seeds]
        assert r.n_seeds == len(values)
        assert r.f1_mean == pytest.approx(np.mean(values), abs=1e-4)
        if len(values) > 1:
            assert r.f1_std == pytest.approx(np.std(values, ddof=1), abs=1e-4)
    assert set(table4.loc[table4["source"] == "localizer", "method"]) == {"dcl"}
    assert (table4["radius"].where(table4["dataset"] == "MBM").dropna() == 13.5).all()
    # the undefined precision of an image with no predictions is written empty, not as 0
    per_seed = pd.read_csv(out / "localization_per_seed.csv")
    assert per_seed["precision"].notna().all()  # a set's precision comes from summed counts
    markdown = (out / "table4_localization.md").read_text()
    assert "| dcl | localizer's map | count-guided |" in markdown and "**" in markdown

    paired = pd.read_csv(out / "table4_paired.csv")
    row = paired[(paired["dataset"] == "VGG") & (paired["counter_method"] == "csrnet")
                 & (paired["rule"] == "count")].iloc[0]
    diffs = [_direct_f1(results, "VGG", "dcl", s, "localizer", "count")
             - _direct_f1(results, "VGG", "csrnet", s, "counter", "count") for s in (0, 1)]
    assert row["localizer_method"] == "dcl" and row["n_seeds"] == 2
    assert row["f1_diff_mean"] == pytest.approx(np.mean(diffs), abs=1e-4)
    assert row["seeds_localizer_better"] == sum(d > 0 for d in diffs)
    tex = (out / "table4_localization.tex").read_text()
    body = tex[tex.index(r"\begin{tabular}"):tex.index(r"\end{tabular}")]
    spec = re.match(r"\\begin\{tabular\}\{([lc]+)\}", body).group(1)
    assert all(line.count("&") == len(spec) - 1 for line in body.splitlines() if line.endswith(r"\\"))


def _drawn(monkeypatch, draw, *args):
    """The figure a plotting function draws, laid out as saved (instead of written to disk)."""
    from cellbench.reporting import plots
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, stem, track=None: figures.append(fig) or [])
    draw(*args)
    figures[0].canvas.draw()
    return figures[0]


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_pred_vs_true_shares_axes_and_no_text_overlaps(fake_results, monkeypatch):
    from cellbench.reporting import plots
    frames = {f"{m}_{i}": pd.read_csv(fake_results[0] / "VGG" / m / "seed0" / "predictions.csv")
              for i, m in enumerate(METHODS * 2)}
    frames["collapsed"] = frames["dcl_0"].assign(pred_count=lambda f: f["pred_count"] * 50)  # 12 images
    fig = _drawn(monkeypatch, plots.predicted_vs_true, frames, "VGG", None)
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == len(frames)
    assert len({ax.get_xlim() for ax in axes}) == 1 and len({ax.get_ylim() for ax in axes}) == 1
    assert axes[0].get_xlim() == axes[0].get_ylim()  # the identity line is the diagonal of every panel
    assert "12 off scale" in axes[-1].get_title()  # drawn on the edge, not stretching every panel
    texts = [fig._suptitle] + [ax.title for ax in axes] + [t for ax in axes for t in ax.get_yticklabels()]
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_text()]
    panels = [ax.get_window_extent(renderer) for ax in axes]
    for i, box in enumerate(boxes):
        assert not any(_overlap(box, other) for other in boxes[i + 1:]), texts[i].get_text()
    for label in (t for ax in axes for t in [ax.title, *ax.get_yticklabels()] if t.get_text()):
        box = label.get_window_extent(renderer)
        assert sum(_overlap(box, p) for p in panels) == 0, label.get_text()


def test_learning_curves_have_integer_epoch_ticks(monkeypatch):
    from cellbench.reporting import plots
    log = pd.DataFrame({"epoch": [1, 2], "train_loss": [3.0, 2.0], "val_mae": [5.0, 4.0]})
    fig = _drawn(monkeypatch, plots.learning_curves, {"a": [log], "b": [log]}, "VGG", None)
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_example_maps_put_the_reference_and_its_ablation_first_and_leave_the_floor_out():
    from cellbench.methods import discover
    from cellbench.reporting.examples import order_for_examples
    specs = discover()
    reference = next(m for m, s in specs.items() if s.reference)
    ablation = next(m for m, s in specs.items() if s.ablation_of == reference)
    floor = next(m for m, s in specs.items() if s.floor)
    others = [m for m, s in specs.items() if not (s.reference or s.floor or s.ablation_of)][:2]
    assert order_for_examples(specs, [*others, floor, ablation, reference]) == [reference, ablation, *others]


def test_a_figure_of_a_track_says_which_under_it(tmp_path):
    from cellbench.reporting import plots
    from cellbench.reporting.track import track_caption
    config = load_config(REPO_ROOT / "config" / "cpu.yaml")
    line = track_caption(config)
    assert line.startswith("cpu track: width 0.25, 96x96 training crops, 30 epochs")
    fig, _ = plots.plt.subplots()
    paths = plots.save(fig, tmp_path / "figure", line)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)
    assert [text.get_text() for text in fig.texts] == [line]
    fig, _ = plots.plt.subplots()
    plots.save(fig, tmp_path / "paper", track_caption(load_config()))   # the paper's protocol: no line
    assert fig.texts == []


def test_table2_gives_mbm_per_image_and_per_patch_with_the_papers_numbers_beside_per_patch(tmp_path):
    """MBM's images are four patches: Table 2 has its error per image (the primary) and per patch,
    both from metrics.json; on the paper's protocol the paper's MBM numbers (1.4 for DCL) stand
    beside the per-patch column only (README, Differences), VGG's beside its only one."""
    results = tmp_path / "results"
    for dataset, patch in (("VGG", None), ("MBM", {"mae": 3.25, "rmse": 4.5, "n_patches": 64, "patches_per_image": 4})):
        for method in ("dcl", "mean_count", "classic_log"):
            run = results / dataset / method / "seed0"
            run.mkdir(parents=True)
            true = np.array([100.0, 120.0, 140.0, 160.0])
            pd.DataFrame({"image_id": ["a", "b", "c", "d"], "true_count": true,
                          "pred_count": true + (40 if method == "mean_count" else 6)}).to_csv(run / "predictions.csv",
                                                                                              index=False)
            (run / "metrics.json").write_text(json.dumps({"status": "fitted" if method != "dcl" else "trained",
                                                          "per_patch": patch, "best_val_mae": 1.0, "best_epoch": 3}))
    config = load_config()
    config.update(datasets=["VGG", "MBM"], seeds=[0], methods=["dcl", "mean_count", "classic_log"], track="paper")
    build_reports(config, results, tmp_path / "reports")
    md = (tmp_path / "reports" / "table2.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| method"))
    assert "MBM MAE per image" in header and "MBM MAE per patch" in header and "VGG MAE per patch" not in header
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[3:-1]]
            for line in md.splitlines() if line.startswith("| dcl")}
    columns = [c.strip() for c in header.split("|")[3:-1]]
    paper = dict(zip(columns, rows[("dcl", "paper (DCL (Ours))")]))
    assert paper["MBM MAE per patch"] == "1.4" and paper["MBM MAE per image"] == "-"
    assert paper["VGG MAE"] != "-"
    ours = dict(zip(columns, rows[("dcl", "ours (mean ± std, n seeds)")]))
    assert ours["MBM MAE per patch"].startswith("3.25") and ours["MBM MAE per image"].strip("*").startswith("6.00")
    assert "| classic_log | ours, no deep learning (mean ± std, n seeds) |" in md
    assert "'no deep learning'" in md
    selection = pd.read_csv(tmp_path / "reports" / "model_selection.csv")
    assert {"test_mae_selected", "test_mae_last_epoch", "selected_epoch", "status"} <= set(selection.columns)


def test_published_anchors_are_cited_and_sit_beside_our_best(reports):
    md = (reports / "published_anchors.md").read_text()
    assert "Published per-image results (other protocols)" in md
    assert "| MBM | Proto4DME | 5.96 ± 0.68 | 15 | 5 random |" in md
    assert "| VGG | FCRN-A | 2.90 ± 0.20 | 32 |" in md
    assert "(cellbench, lowest of Table 2)" in md and "published_results.csv" in md
