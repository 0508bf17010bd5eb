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
