"""A classical cell counter, the way a biologist counts without deep learning (Fiji's "Find
Maxima", scikit-image's ``peak_local_max``): smooth the signal with a Laplacian of Gaussian, take the
local maxima above a threshold that are at least a minimum distance apart, count them.

Its few parameters are fitted on the training split (``fit``), never on validation or test:

1. the signal: one of the three channels or their mean, bright on dark (fluorescence, VGG) or dark
   on light (stained nuclei, MBM and ADI): the one whose blob response at the annotated dots stands
   out most from the rest of the image (in standard deviations of the response);
2. sigma, the minimum distance and the threshold: the combination of a small grid with the least
   mean absolute error of the training images' counts (the threshold from quantiles of the maxima's
   responses, every candidate tried at once).

Everything chosen lives in buffers, so it is saved with the run like weights and used by evaluate,
localize and predict. The output map holds 1 at every maximum kept (its points) and 0 elsewhere:
its sum is the count, and the localization stage finds its maxima again as the points.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.feature import peak_local_max
from torch import nn

#: Candidate signals: channel weights (applied to the normalised input) and their names.
SIGNALS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
           "mean": (1 / 3, 1 / 3, 1 / 3)}
#: The sigma at which the signal is chosen (patch pixels): between the grid's small and large cells.
SIGNAL_SIGMA = 3.0


def blob_response(signal: np.ndarray, sigma: float) -> np.ndarray:
    """Scale-normalised negative LoG of one (H, W) signal: positive at bright blobs of radius about
    sigma * sqrt(2)."""
    return -(sigma ** 2) * ndimage.gaussian_laplace(signal.astype(np.float64), sigma, mode="nearest")


def maxima(response: np.ndarray, min_distance: int, threshold: float) -> np.ndarray:
    """(n, 2) row, column of the local maxima above ``threshold``, at least ``min_distance`` apart."""
    return peak_local_max(response, min_distance=int(min_distance), threshold_abs=float(threshold),
                          exclude_border=False)


class LoGCounter(nn.Module):
    def __init__(self, sigmas=(1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0), min_distances=(2, 3, 4, 6, 8, 10),
                 thresholds: int = 200):
        super().__init__()
        self.sigmas, self.min_distances, self.thresholds = [float(s) for s in sigmas], list(min_distances), thresholds
        # Before its fit it finds nothing (threshold +inf); fit sets every buffer.
        self.register_buffer("channel_weights", torch.tensor(SIGNALS["mean"], dtype=torch.float64))
        self.register_buffer("sigma", torch.tensor(self.sigmas[0], dtype=torch.float64))
        self.register_buffer("min_distance", torch.tensor(float(self.min_distances[0]), dtype=torch.float64))
        self.register_buffer("threshold", torch.tensor(float("inf"), dtype=torch.float64))
        self.init_description = "no learning: classical counter, parameters fitted on the training split"

    # ------------------------------------------------------------------ counting
    def signals(self, x: torch.Tensor) -> np.ndarray:
        """(B, H, W) signal of a batch of normalised images: the chosen weighting of its channels."""
        weights = self.channel_weights.to(x.device, torch.float32)
        return torch.einsum("bchw,c->bhw", x.float(), weights[: x.shape[1]]).cpu().numpy()

    def points(self, signal: np.ndarray) -> np.ndarray:
        return maxima(blob_response(signal, float(self.sigma)), int(self.min_distance), float(self.threshold))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = np.zeros((x.shape[0], 1, *x.shape[-2:]), dtype=np.float32)
        if np.isfinite(float(self.threshold)):
            for b, signal in enumerate(self.signals(x)):
                rows, cols = self.points(signal).T
                out[b, 0, rows, cols] = 1.0
        return torch.from_numpy(out).to(x.device)

    # ------------------------------------------------------------------ fitting
    def choose_signal(self, images: torch.Tensor, points: list[np.ndarray]) -> tuple[str, float, float]:
        """(name, polarity, contrast): the signal whose blob response at the dots stands out most."""
        best = ("mean", 1.0, -np.inf)
        for name, weights in SIGNALS.items():
            self.channel_weights.copy_(torch.tensor(weights, dtype=torch.float64))
            at_dots, everywhere = [], []
            for signal, dots in zip(self.signals(images), points):
                response = blob_response(signal, SIGNAL_SIGMA)
                rows, cols = _pixels(dots, response.shape)
                at_dots.append(response[rows, cols])
                everywhere.append(response.ravel()[::7])
            at_dots, everywhere = np.concatenate(at_dots), np.concatenate(everywhere)
            spread = everywhere.std() or 1.0
            for polarity in (1.0, -1.0):   # bright cells on dark, dark nuclei on light
                contrast = polarity * (at_dots.mean() - everywhere.mean()) / spread
                if contrast > best[2]:
                    best = (name, polarity, float(contrast))
        return best

    def fit(self, data) -> dict:
        """Choose the signal, then sigma, minimum distance and threshold with the least training MAE
        of the images' counts (``cellbench.training.fitting.FitData``)."""
        name, polarity, contrast = self.choose_signal(data.images, data.patch_points)
        self.channel_weights.copy_(polarity * torch.tensor(SIGNALS[name], dtype=torch.float64))
        signals = self.signals(data.images)
        best = (np.inf, None)
        for sigma in self.sigmas:
            responses = [blob_response(s, sigma) for s in signals]
            for distance in self.min_distances:
                # Every maximum with a positive response; a threshold keeps those above it (the
                # greedy spacing of peak_local_max keeps the same maxima above any threshold).
                values = [np.sort(r[tuple(maxima(r, distance, 0.0).T)]) for r in responses]
                pooled = np.concatenate(values) if values else np.zeros(0)
                if not len(pooled):
                    continue
                candidates = np.unique(np.quantile(pooled, np.linspace(0, 1, self.thresholds)))
                per_patch = np.stack([len(v) - np.searchsorted(v, candidates, side="right") for v in values])
                per_image = np.zeros((len(data.image_counts), len(candidates)))
                np.add.at(per_image, data.patch_image, per_patch)
                mae = np.abs(per_image - data.image_counts[:, None]).mean(axis=0)
                j = int(np.argmin(mae))
                if mae[j] < best[0]:
                    best = (float(mae[j]), (sigma, distance, float(candidates[j])))
        if best[1] is None:
            raise ValueError("classic_log: no local maximum in any training image; nothing to fit")
        sigma, distance, threshold = best[1]
        self.sigma.fill_(sigma)
        self.min_distance.fill_(float(distance))
        self.threshold.fill_(threshold)
        return {"signal": f"{name} ({'bright' if polarity > 0 else 'dark'} cells)", "signal_contrast": round(contrast, 3),
                "sigma": sigma, "min_distance": distance, "threshold": round(threshold, 5), "train_mae": round(best[0], 4)}


def _pixels(points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels holding the dots (x, y; pixel j's centre at j)."""
    points = np.asarray(points).reshape(-1, 2)
    cols = np.clip(np.rint(points[:, 0]).astype(int), 0, shape[1] - 1)
    rows = np.clip(np.rint(points[:, 1]).astype(int), 0, shape[0] - 1)
    return rows, cols
