"""Dataset statistics beside the paper's Table 1."""

from __future__ import annotations


from .prepare import PreparedDataset
from .registry import DatasetSpec


def dataset_stats(spec: DatasetSpec, data: PreparedDataset) -> dict:
    counts = data.image_counts.astype(float)
    widths, heights = data.image_sizes[:, 0], data.image_sizes[:, 1]
    if widths.min() == widths.max() and heights.min() == heights.max():
        size = f"{widths[0]}x{heights[0]}"
    else:
        size = f"{widths.min()}x{heights.min()} to {widths.max()}x{heights.max()}"
    return {
        "dataset": spec.name,
        "type": spec.type,
        "images": int(len(counts)),
        "patches": int(len(data.images)),
        "image_size": size,
        "cells_mean": float(counts.mean()),
        "cells_std": float(counts.std()),  # population std (divides by n), as the dataset README
        "cells_min": int(counts.min()),
        "cells_max": int(counts.max()),
        "paper_image_size": (spec.paper or {}).get("size"),
        "paper_cells_mean": (spec.paper or {}).get("cells_mean"),
        "paper_cells_std": (spec.paper or {}).get("cells_std"),
    }
