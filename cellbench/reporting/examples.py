"""A figure like the paper's Fig. 2 and 3: image, ground-truth dots, the counter's map with and
without GMP, and the localizer's map, with counts in the titles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.prepare import PreparedDataset
from ..inputs import normalise
from ..io import read_json
from ..methods import get_method
from ..runs import COUNTER, LOCALIZER, SavedCounter, SavedLocalizer, run_dir
from .plots import plt, save


def example_figure(config: dict, dataset: str, seed: int, prepared: Path, split_file: Path, results: Path,
                   methods: list[str], stem: Path) -> list[Path]:
    data = PreparedDataset.load(prepared)
    test_ids = read_json(split_file)["test"][: max(config["report"]["example_images"], 1)]
    test = data.subset(test_ids)
    first_patch = [int(np.flatnonzero(test.patch_image == i)[0]) for i in range(len(test_ids))]
    panels = []  # (title, function patch -> (map, count))
    density_scale = config["targets"][dataset]["density_scale"]
    for method in methods:
        run = run_dir(results, dataset, method, seed)
        if not (run / COUNTER).is_file():
            continue
        spec, saved = get_method(method), SavedCounter.read(run)
        model = saved.model(spec).eval()
        panels.append((f"{method} counter", model, saved.count_scale))
        if spec.localizer and (run / LOCALIZER).is_file():
            wrapped = SavedLocalizer.read(run).model(spec, model, density_scale).eval()
            panels.append((f"{method} localizer", wrapped, density_scale))
    cols = 2 + len(panels)
    fig, axes = plt.subplots(len(first_patch), cols, figsize=(1.9 * cols, 2.0 * len(first_patch)), squeeze=False)
    for r, p in enumerate(first_patch):
        image = test.images[p]
        points = test.patch_points(p)
        axes[r, 0].imshow(image)
        axes[r, 0].set_title(f"{test.image_ids[test.patch_image[p]]}")
        axes[r, 1].imshow(image)
        axes[r, 1].scatter(points[:, 0], points[:, 1], s=2, c="yellow")
        axes[r, 1].set_title(f"ground truth: {len(points)}")
        x = normalise(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None])
        for c, (title, model, scale) in enumerate(panels, start=2):
            with torch.no_grad():
                out = model(x)[0, 0].float().numpy()
            axes[r, c].imshow(out, cmap="magma")
            axes[r, c].set_title(f"{title}: {out.sum() / scale:.1f}")
        for ax in axes[r]:
            ax.axis("off")
    fig.suptitle(f"{dataset}, seed {seed}: test patches, ground truth and predicted maps (counts in titles)")
    return save(fig, stem)


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
    return points_over_dots(rows, dataset, note, stem)
