"""Speed of localization on the CPU (issue 12): peaks + rules + matching for one test set.

    python benchmarks/localization_speed.py [--images 100] [--cells 175] [--threads-note]

Synthetic maps like a VGG test set: ``--images`` maps of 256x256 with ``--cells`` Gaussian blobs
(sigma 2) plus low noise (which adds many small peaks: the hard case for the threshold search),
and the same as stride-8 maps (32x32, block sums). Times, per set: peak finding, both rules,
Hungarian matching at three radii, and the threshold search over all distinct peak values.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cellbench.localization import (choose_threshold, count_rule, find_peaks, match_radii, radii_for,
                                    threshold_rule)


def synthetic(n_images: int, n_cells: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:256, :256].astype(float)
    maps, truths = [], []
    for _ in range(n_images):
        centres = rng.uniform(2, 254, (n_cells, 2))
        m = np.zeros((256, 256))
        for x, y in centres:  # separable would be faster; this is set-up, not timed
            x0, y0 = int(x), int(y)
            sl = np.s_[max(y0 - 8, 0):y0 + 9, max(x0 - 8, 0):x0 + 9]
            m[sl] += np.exp(-((xx[sl] - x) ** 2 + (yy[sl] - y) ** 2) / 8.0)
        maps.append(m + rng.normal(0, 0.02, m.shape))
        truths.append(centres + rng.normal(0, 1.0, centres.shape))
    return maps, truths


def run(maps: list[np.ndarray], truths: list[np.ndarray], stride: int) -> dict[str, float]:
    radii = radii_for("VGG")
    t0 = time.perf_counter()
    peaks = [find_peaks(m, min_distance=3, stride=stride) for m in maps]
    t1 = time.perf_counter()
    choice = choose_threshold(peaks, truths, radii.primary)
    t2 = time.perf_counter()
    for p, t in zip(peaks, truths):
        match_radii(threshold_rule(p, choice.threshold).points, t, radii.values)
        match_radii(count_rule(p, len(t)).points, t, radii.values)
    t3 = time.perf_counter()
    return {"peaks_s": t1 - t0, "threshold_search_s": t2 - t1, "match_both_rules_3_radii_s": t3 - t2,
            "total_s": t3 - t0, "mean_peaks_per_map": float(np.mean([len(p) for p in peaks])),
            "thresholds_tried": len(choice.thresholds), "f1": choice.counts.f1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--cells", type=int, default=175)
    args = parser.parse_args()
    maps, truths = synthetic(args.images, args.cells)
    coarse = [m.reshape(32, 8, 32, 8).sum(axis=(1, 3)) for m in maps]
    for label, data, stride in [("256x256 maps (stride 1)", maps, 1), ("32x32 maps (stride 8)", coarse, 8)]:
        result = run(data, truths, stride)
        print(f"{args.images} {label}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                    for k, v in result.items()))


if __name__ == "__main__":
    main()
