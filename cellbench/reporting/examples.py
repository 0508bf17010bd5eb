"""A figure like the paper's Fig. 2 and 3: per test patch the image, its ground-truth dots, every
shown method's counter map and the localizer maps, each map with its own colour bar and the
predicted count in its title.

The core names no method: the reference methods come first, then their ablations, then the
others in the configured order (``order_for_examples``); floors (a constant map) are left out.
Each patch is one block of rows, at most ``MAX_COLUMNS`` panels wide, so eleven methods stay
readable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from ..data.prepare import PreparedDataset
from ..data.registry import dataset_cells
from ..inputs import normalise
from ..io import read_json
from ..methods import get_method
from ..runs import COUNTER, LOCALIZER, SavedCounter, SavedLocalizer, run_dir
from .plots import _grid, plt, save
from .track import track_caption

MAX_COLUMNS = 5

NOTE = ("Colour: predicted cells per map pixel, each map on its own scale (colour bar). A counter trained on the "
        "image count alone is not told where the cells are: a map bright (or dark) along its border\nshows the "
        "convolutions' zero padding (zeros beyond the image edge, which no interior position sees), not cells; "
        "padding the input by reflection instead removes that frame.")


def _short(image_id: str, width: int = 26) -> str:
    """An image id that fits above a panel: long ids (ADI's) keep their start and end."""
    return image_id if len(image_id) <= width else f"{image_id[:width // 2 - 1]}…{image_id[-(width // 2):]}"


def order_for_examples(specs: dict, methods: list[str]) -> list[str]:
    """References, then the ablations of shown methods, then the rest; floors left out."""
    references = [m for m in methods if specs[m].reference]
    ablations = [m for m in methods if m not in references and specs[m].ablation_of in references]
    others = [m for m in methods if m not in references and m not in ablations and not specs[m].floor]
    return references + ablations + others


def example_figure(config: dict, dataset: str, seed: int, prepared: Path, split_file: Path, results: Path,
                   methods: list[str], stem: Path) -> list[Path]:
    data = PreparedDataset.load(prepared)
    test_ids = read_json(split_file)["test"][: max(config["report"]["example_images"], 1)]
    test = data.subset(test_ids)
    first_patch = [int(np.flatnonzero(test.patch_image == i)[0]) for i in range(len(test_ids))]
    maps = []  # (title, model, scale, input statistics): the map divided by scale is cells per map pixel
    density_scale = dataset_cells(dataset).density_scale
    for method in methods:
        run = run_dir(results, dataset, method, seed)
        if not (run / COUNTER).is_file():
            continue
        spec, saved = get_method(method), SavedCounter.read(run)
        model = saved.model(spec).eval()
        maps.append((f"{method} counter", model, saved.count_scale, saved.stats))
        if spec.localizer and (run / LOCALIZER).is_file():
            wrapped = SavedLocalizer.read(run).model(spec, model, density_scale).eval()
            maps.append((f"{method} localizer", wrapped, density_scale, saved.stats))
    rows, cols = _grid(2 + len(maps), MAX_COLUMNS)
    fig, axes = plt.subplots(rows * len(first_patch), cols, figsize=(2.25 * cols, 2.1 * rows * len(first_patch) + 0.6),
                             squeeze=False, layout="constrained")
    for block, p in enumerate(first_patch):
        panels = list(axes[block * rows:(block + 1) * rows].flat)
        image = test.images[p]
        points = test.patch_points(p)
        size = image.shape[0]
        panels[0].imshow(image)
        panels[0].set_title(f"test image\n{_short(str(test.image_ids[test.patch_image[p]]))}")
        panels[1].imshow(image)
        panels[1].scatter(points[:, 0], points[:, 1], s=2, c="yellow")
        panels[1].set_title(f"ground truth\n{len(points)} cells")
        raw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        for ax, (title, model, scale, stats) in zip(panels[2:], maps):
            with torch.no_grad():
                out = model(normalise(raw, stats))[0, 0].float().numpy() / scale
            # extent: a stride-s map covers the same 256x256 pixels as the image beside it
            im = ax.imshow(out, cmap="magma", extent=(0, size, size, 0), interpolation="nearest")
            # a few ticks, with an offset where the range is narrow: "%.2g" printed seven identical labels
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, ticks=MaxNLocator(4))
            bar.ax.tick_params(labelsize=6)
            ax.set_title(f"{title}\n{out.sum():.1f}")
        for ax in panels:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in panels[2 + len(maps):]:
            ax.set_visible(False)
    fig.suptitle(f"{dataset}, seed {seed}: test patches, ground truth and predicted maps (counts in titles)")
    fig.text(0.5, 0.0, NOTE, ha="center", va="top", fontsize=7, wrap=False)
    return save(fig, stem, track_caption(config))


def localization_figure(config: dict, dataset: str, seed: int, prepared: Path, split_file: Path, results: Path,
                        methods: list[str], stem: Path) -> list[Path]:
    """The threshold rule's points of each method's maps (points.csv of seed ``seed``) over the
    true dots, on the first patch of the first test images; matched at the primary radius."""
    import pandas as pd

    from ..localization import match_points, radii_for, true_points
    from ..runs import POINTS
    from .plots import points_over_dots

    data = PreparedDataset.load(prepared)
    test = data.subset(read_json(split_file)["test"][: max(config["report"]["example_images"], 1)])
    truths = dict(zip(test.image_ids.tolist(), true_points(test)))
    radius = radii_for(dataset).primary
    kept = {}
    for method in methods:
        path = run_dir(results, dataset, method, seed) / POINTS
        if not path.is_file():
            continue
        frame = pd.read_csv(path, dtype={"image_id": str}) if path.stat().st_size > 1 else pd.DataFrame()
        if frame.empty:  # no peaks at all (a flat map): a panel with nothing predicted
            kept[method] = pd.DataFrame({"image_id": [], "x": [], "y": []})
        for source, group in frame[frame["threshold_rule"].astype(bool)].groupby("source", sort=False) \
                if len(frame) else []:
            kept[method if source == "counter" else f"{method} ({source})"] = group
    rows = []
    for i, image_id in enumerate(test.image_ids.tolist()):
        p = int(np.flatnonzero(test.patch_image == i)[0])
        geometry = test.patch_geometry(p)
        scale, offset = np.asarray(geometry.scale), np.asarray(geometry.offset)

        def on_patch(points: np.ndarray) -> np.ndarray:  # original pixels -> the patch's, inside it only
            local = (np.asarray(points, np.float64).reshape(-1, 2) - offset) / scale
            return local[((local >= -0.5) & (local < np.array(test.images.shape[2:0:-1]) - 0.5)).all(axis=1)]

        true = truths[image_id]
        panels = []
        for label, frame in kept.items():
            pred = frame.loc[frame["image_id"] == image_id, ["x", "y"]].to_numpy(np.float64).reshape(-1, 2)
            match = match_points(pred, true, radius)
            tp, fp = np.zeros(len(pred), bool), np.ones(len(pred), bool)
            tp[match.pairs[:, 0]], fp[match.pairs[:, 0]] = True, False
            fn = np.ones(len(true), bool)
            fn[match.pairs[:, 1]] = False
            c = match.counts
            panels.append((f"{label}\nF1 {c.f1:.2f} (P {'n/a' if np.isnan(c.precision) else f'{c.precision:.2f}'}, "
                           f"R {c.recall:.2f})",
                           {"tp": on_patch(pred[tp]), "fp": on_patch(pred[fp]), "fn": on_patch(true[fn]),
                            "true": on_patch(true)}))
        rows.append((f"{image_id} (patch 1)", test.images[p], panels))
    note = f"seed {seed}, threshold rule, matched within r = {radius:g} px; scores of the whole image"
    return points_over_dots(rows, dataset, note, stem, track_caption(config))
