"""Command line: ``python -m cellbench <stage> ...``; the Snakemake rules call these.

Errors caused by input (a bad file, key or value) are printed as one clear message, with
exit status 2, instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import CellbenchError


def _config(args: argparse.Namespace) -> dict:
    from .config import load_config, validate
    from .schemas import deep_merge

    config = load_config(*args.configfile)
    if args.config_json:  # the workflow passes only the sections a stage depends on
        config = validate(deep_merge(config, json.loads(args.config_json)))
    return config


def _predict(args: argparse.Namespace) -> int:
    """cellbench predict: 0 when every image was counted, 1 when some could not be, 2 when none."""
    from . import predict
    from .device import resolve_device

    if args.list:
        print(predict.list_shipped())
        return 0
    if not args.inputs or args.out is None or (args.run is None and args.model is None):
        print("cellbench predict: give images or folders, --out DIR, and --run RUN_DIR or --model NAME "
              "(python -m cellbench predict --list)", file=sys.stderr)
        return 2
    predictor = predict.Predictor.from_run(args.run) if args.run else predict.Predictor.shipped(args.model)
    predictor.grey_channels = predict.grey_channels(args.grey_into)
    paths, problems = predict.find_images(args.inputs)
    data, unreadable = predict.load_images(paths, predict.preprocessing(predictor.dataset, args.like, args.scale),
                                           predictor.grey_into, predictor.grey_fill)
    problems += unreadable
    for problem in problems:
        print(f"cellbench predict: {problem}", file=sys.stderr)
    if data is None:
        print("cellbench predict: no image could be counted", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    result = predict.predict(predictor, data, device, args.rule)
    predict.write_outputs(args.out, predictor, data, result, overlays=not args.no_overlays)
    outside = int((result.counts["domain_warning"] != "").sum())
    print(f"cellbench predict: {len(result.counts)} image(s) counted with {predictor.name} on {device}; "
          f"{args.out / 'counts.csv'}" + (f"; {len(problems)} problem(s) above" if problems else "")
          + (f"; {outside} image(s) outside what the model was trained on (warnings above, counts.csv's "
             f"domain_warning): check their counts" if outside else ""))
    return 1 if problems else 0


def _kit(config: dict, args: argparse.Namespace) -> int:
    """The reference kit's preflight of one part: problems (exit 2), else the estimate (exit 0)."""
    from .io import read_json
    from .methods import selected_methods
    from .preflight import gpu_estimate, kit_problems
    from .training.trainer import duration_text

    problems = [] if args.no_check else kit_problems(config)
    for problem in problems:
        print(f"cellbench preflight: {problem}", file=sys.stderr)
    if problems:
        print(f"cellbench preflight: {len(problems)} problem(s); nothing was started", file=sys.stderr)
        return 2
    if args.no_estimate:
        print(f"cellbench preflight: {', '.join(config['datasets'])} x {len(selected_methods(config))} methods: ready")
        return 0
    measured = read_json(Path(args.speed)) if args.speed and Path(args.speed).is_file() else None
    estimate = gpu_estimate(config, measured, args.jobs)
    source = "measured by speed.py" if estimate["measured"] else "assumed, not measured"
    print(f"estimate: {duration_text(estimate['seconds_shared'])} to {duration_text(estimate['seconds_one_job'])} "
          f"({args.jobs} job(s) sharing the GPU, to one at a time; throughput {estimate['throughput_flops'] / 1e12:.0f} "
          f"TFLOP/s, {source})")
    for name, seconds in sorted(estimate["per_method"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:14s} {duration_text(seconds)}")
    print(f"seconds={round(estimate['seconds_one_job'])}")
    print(f"seconds_shared={round(estimate['seconds_shared'])}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cellbench", description=__doc__.splitlines()[0])
    parser.add_argument("--config-json", help="the whole config as JSON (what the workflow passes)")
    parser.add_argument("--configfile", action="append", default=[], help="YAML overlay(s) on config/config.yaml")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="stage", required=True)

    def stage(name: str, help: str, *args: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        for arg in args:
            p.add_argument(f"--{arg}", required=True, type=int if arg in ("seed", "size", "repeat") else str)
        p.add_argument("--threads", type=int, default=None)
        return p

    stage("fetch", "get and verify a dataset's raw files", "dataset", "out")
    stage("prepare", "convert raw images and dots to 256x256 patches", "dataset", "verified", "out")
    stage("split", "draw the train/test/val split for a seed", "dataset", "seed", "prepared", "out")
    stage("subset", "draw a training subset of a split (the data-efficiency study)",
          "dataset", "size", "repeat", "prepared", "split", "out")
    stage("stats", "dataset statistics (images, sizes, cells)", "dataset", "prepared", "out")
    for name, what in (("run", "train, evaluate and localize one run (dataset, method, seed) in one process"),
                       ("train", "train one method's counter on one dataset and seed"),
                       ("localizer", "train the localizer of a method that declares one (its counter frozen)"),
                       ("evaluate", "count the test images with a trained run; predictions.csv, metrics.json"),
                       ("localize", "locate the cells of the test images with a trained run; localization.csv")):
        stage(name, what, "dataset", "method", "seed", "prepared", "split", "run-dir")
    tables = sub.add_parser("tables", help="tables and the summary figure from the runs' outputs")
    tables.add_argument("--results", default="results")
    tables.add_argument("--out", default="reports")
    efficiency = sub.add_parser("data-efficiency", help="the data-efficiency table and figure (config data_efficiency)")
    efficiency.add_argument("--results", default="results")
    efficiency.add_argument("--out", default="reports")
    figures = stage("figures", "per-dataset figures (scatter, learning curves, example maps)",
                    "dataset", "prepared", "split")
    figures.add_argument("--results", default="results")
    figures.add_argument("--out", default="reports")
    publish = sub.add_parser("publish", help="copy a finished benchmark (no weights) into a reference folder")
    publish.add_argument("--results", default="results")
    publish.add_argument("--reports", default="reports")
    publish.add_argument("--out", required=True, help="for example reports/reference/gpu-h100-2026")
    publish.add_argument("--title", default="cellbench reference results")
    publish.add_argument("--note", action="append", default=[], help="a line for the reference's README")
    publish.add_argument("--extra", action="append", default=[], help="another file to include (speed JSON)")
    compare = sub.add_parser("compare", help="your run's MAE and RMSE beside a published reference")
    compare.add_argument("--reference", required=True, help="a folder written by publish")
    compare.add_argument("--reports", default="reports")
    compare.add_argument("--out", default=None, help="write <out>.csv and <out>.md (default: print)")
    sums = sub.add_parser("sha256sums", help="the hashes recorded in a verified.json, as a SHA256SUMS manifest")
    sums.add_argument("--verified", required=True, help="for example results/raw/DCC/verified.json")
    sums.add_argument("--out", default=None, help="for example datasets/DCC/SHA256SUMS (default: print)")
    pred = sub.add_parser("predict", help="count the cells in your own images with a trained run or a shipped model")
    pred.add_argument("inputs", nargs="*", type=Path, help="image files and folders of images")
    which = pred.add_mutually_exclusive_group()
    which.add_argument("--run", type=Path, help="a run folder, e.g. results/VGG/fcrn/seed0")
    which.add_argument("--model", help="a shipped model, e.g. VGG/fcrn (see --list)")
    pred.add_argument("--list", action="store_true", help="list the shipped models")
    pred.add_argument("--out", type=Path, help="where counts.csv, points.csv and overlays/ are written")
    scaling = pred.add_mutually_exclusive_group()
    scaling.add_argument("--like", help="apply this dataset's preprocessing (default: the model's own dataset's)")
    scaling.add_argument("--scale", type=float, help="resize by this factor instead (then pad and tile)")
    pred.add_argument("--rule", choices=("auto", "threshold", "count"), default="auto",
                      help="points: above the run's validation threshold, or the count-guided rule (auto: the "
                           "threshold where the run chose one)")
    pred.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu, cuda")
    pred.add_argument("--grey-into", default="auto",
                      help="the channel(s) a single-channel image is put into: auto (those the model's dataset has "
                           "its signal in: VGG's blue), all, or names/numbers (red,green,blue or 0,1,2)")
    pred.add_argument("--no-overlays", action="store_true", help="counts and points only")
    own = sub.add_parser("add-dataset", help="a dataset of your own: images and their annotations (Fiji, napari, CSV "
                                             "or dot images) measured and written to datasets/NAME/")
    own.add_argument("name", help="the dataset's name: letters and digits (e.g. MYCELLS)")
    own.add_argument("--images", required=True, type=Path, help="the folder of images")
    own.add_argument("--points", required=True, type=Path,
                     help="the folder of annotations, one per image by name (NAME.csv, NAME_points.csv, NAME_dots.png)")
    own.add_argument("--format", default="auto", choices=("auto", "fiji", "napari", "xy", "dots"),
                     help="the annotations' format (auto: read from each file; README, 'Your own annotated images')")
    own.add_argument("--title", default=None)
    own.add_argument("--citation", default="")
    own.add_argument("--force", action="store_true", help="write datasets/NAME/ again when it exists")
    listing = sub.add_parser("methods", help="list the methods found under methods/")
    listing.add_argument("--selected", action="store_true", help="names only, of the methods the config selects")
    pre = sub.add_parser("preflight", help="before the full benchmark: stop when it would train on the CPU without a "
                                           "GPU (with the estimated time); --kit: check and estimate a reference part")
    pre.add_argument("--kit", action="store_true", help="the reference kit's check (data mirror, methods build, "
                                                       "modules installed) and its GPU-time estimate")
    pre.add_argument("--no-check", action="store_true", help="with --kit: the estimate only")
    pre.add_argument("--no-estimate", action="store_true", help="with --kit: the check only")
    pre.add_argument("--speed", default=None, help="benchmarks/speed.py's JSON: measured throughput for the estimate")
    pre.add_argument("--jobs", type=int, default=1, help="runs sharing the GPU (CELLBENCH_GPU_JOBS)")
    validate = sub.add_parser("validate", help="check the configuration; build every selected method's networks "
                                               "and check their output at the input sizes training will use")
    validate.add_argument("--method", action="append", default=None,
                          help="check this method only (repeatable); default: every selected method")
    docs = sub.add_parser("docs", help="write the key tables of the READMEs from workflow/schemas")
    docs.add_argument("--check", action="store_true", help="only report READMEs that are out of date (exit 1)")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return _run(args)
    except CellbenchError as exc:
        print(f"cellbench {args.stage}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.stage == "docs":
        from .docs import update_docs
        stale = update_docs(check=args.check)
        for path in stale:
            print(f"{path}: {'out of date' if args.check else 'updated'}")
        return 1 if args.check and stale else 0
    if args.stage == "predict":
        return _predict(args)
    if args.stage == "add-dataset":
        return _add_dataset(args)
    if args.stage == "methods" and args.selected:
        from .methods import selected_methods
        print("\n".join(selected_methods(_config(args))))
        return 0
    if args.stage == "methods":
        from .methods import scan
        specs, broken = scan()
        for name, spec in specs.items():
            print(f"{name:16s} {spec.description}")
        for name, reason in sorted(broken.items()):
            print(f"{name:16s} BROKEN: {reason}")
        return 0
    if args.stage in ("publish", "compare"):
        return _reference(args)
    if args.stage == "sha256sums":
        return _sha256sums(args)
    config = _config(args)
    if args.stage == "validate":
        return _validate(config, args.method)
    if args.stage == "preflight" and args.kit:
        return _kit(config, args)
    if args.stage == "preflight":
        from .preflight import preflight
        message = preflight(config)
        if message:
            print(f"cellbench preflight: {message}", file=sys.stderr)
            return 3
        return 0
    elif args.stage in ("fetch", "prepare", "split", "subset", "stats"):
        from .stages import data
        if args.stage == "fetch":
            data.fetch_stage(config, args.dataset, Path(args.out))
        elif args.stage == "prepare":
            data.prepare_stage(args.dataset, Path(args.verified), Path(args.out))
        elif args.stage == "split":
            data.split_stage(config, args.dataset, args.seed, Path(args.prepared), Path(args.out))
        elif args.stage == "subset":
            data.subset_stage(args.dataset, args.size, args.repeat, Path(args.prepared), Path(args.split),
                              Path(args.out))
        else:
            data.stats_stage(args.dataset, Path(args.prepared), Path(args.out))
    elif args.stage in ("run", "train", "localizer", "evaluate", "localize"):
        from .stages.evaluate import evaluate_stage
        from .stages.localize import localize_stage
        from .stages.run import run_stage
        from .stages.train import localizer_stage, train_stage
        fn = {"run": run_stage, "train": train_stage, "localizer": localizer_stage, "evaluate": evaluate_stage,
              "localize": localize_stage}[args.stage]
        fn(config, args.dataset, args.method, args.seed, Path(args.prepared), Path(args.split),
           Path(args.run_dir), threads=args.threads)
    elif args.stage == "tables":
        from .reporting.build import build_reports
        build_reports(config, Path(args.results), Path(args.out))
    elif args.stage == "data-efficiency":
        from .reporting.build import build_data_efficiency
        build_data_efficiency(config, Path(args.results), Path(args.out))
    elif args.stage == "figures":
        from .reporting.build import build_dataset_figures
        build_dataset_figures(config, args.dataset, Path(args.results), Path(args.out), Path(args.prepared),
                              Path(args.split))
    return 0


def _validate(config: dict, methods: list[str] | None = None) -> int:
    """The configuration, every selected dataset (its definition and files) and the machine (the
    full protocol on a CPU), then every selected method (or those named) built as training will
    build it, its output checked at each training size: what the workflow checks before any job."""
    from .config import check_datasets
    from .methods import get_method, selected_methods, training_sizes, validate_method
    from .preflight import preflight

    print("configuration is valid")
    failed = 0
    try:
        check_datasets(config)
        print(f"datasets ok: {', '.join(config['datasets'])} (definitions and files)")
    except CellbenchError as exc:
        print(f"cellbench validate: error: {exc}", file=sys.stderr)
        failed += 1
    machine = preflight(config)
    if machine:
        print(f"cellbench validate: error: {machine}", file=sys.stderr)
        failed += 1
    for name in methods or selected_methods(config):
        try:
            spec = get_method(name)
            sizes = training_sizes(config, spec)
            shown = ", ".join(f"{s}x{s}" for s in sizes)
            validate_method(spec, sizes, config["train"]["width"])
        except CellbenchError as exc:
            print(f"cellbench validate: error: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"{name:16s} ok (output checked at {shown})")
    return 2 if failed else 0


def _add_dataset(args: argparse.Namespace) -> int:
    from .data.own import add_dataset

    target, found = add_dataset(args.name, args.images, args.points, args.format, args.title, args.citation,
                                args.force)
    print(f"cellbench add-dataset: wrote {target / 'dataset.yaml'} and {target / 'SHA256SUMS'}; measured and chose:")
    print(found.summary())
    print(f"next:\n  bash run.sh cpu-all --config 'datasets=[{args.name}]'    # every method on it, the CPU track "
          f"(or: bash run.sh full --config 'datasets=[{args.name}]' on a GPU)\n"
          f"  python -m cellbench predict NEW_IMAGES/ --run results/{args.name}/fcrn/seed0 --out counted/")
    return 0


def _sha256sums(args: argparse.Namespace) -> int:
    from .data.fetch import sha256sums
    from .io import read_json, write_text

    text = sha256sums(read_json(args.verified)["sha256"])
    if args.out:
        write_text(Path(args.out), text)
    else:
        print(text, end="")
    return 0


def _reference(args: argparse.Namespace) -> int:
    from .io import write_text
    from .reporting.publish import compare, compare_markdown, publish

    if args.stage == "publish":
        publish(Path(args.results), Path(args.reports), Path(args.out), args.title, args.note,
                [Path(p) for p in args.extra])
        return 0
    frame = compare(Path(args.reference), Path(args.reports))
    text = compare_markdown(frame, Path(args.reference))
    if args.out:
        write_text(Path(args.out + ".csv"), frame.to_csv(index=False, float_format="%.4f"))
        write_text(Path(args.out + ".md"), text)
    print(text, end="")
    return 0
