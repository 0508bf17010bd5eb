"""What a model was trained on, and how far an image to count is from it (``predict``).

A run records its training domain once, when it trains (``Domain.of``, saved in counter.pt): the
channels that hold the cells' signal (its dataset's ``cells.signal_channels``), the mean intensity of
each channel in its training patches, and the cells' spacing there (median nearest-neighbour
distance between the dots, patch pixels). ``predict`` measures the same of each image it counts
and warns, naming the image, where it is far outside:

* **channels**: a single-channel image where the model saw colour. It is put into the model's
  signal channel(s) (``--grey-into`` chooses), the others at the training images' mean intensity in
  them, dithered (``Domain.fill``: VGG's red and green hold noise of mean 0.5 of 255, and the
  shipped FCRN-A counted a grey mosaic of 419 cells 459 with them at 0, 452 at their mean and 364
  at 1; its colour original 422): VGG's cells are blue, and a grey image copied into all three
  channels lit the map between the cells (1,175 counted of 419);
* **intensity**: the mean intensity of the signal channels off by more than ``INTENSITY_FACTOR``;
* **cell size**: the size of the blobs in the signal channels off by more than ``SIZE_FACTOR``
  (an image taken at another magnification: ``--scale`` brings its cells to the training size). The
  size is the scale of the strongest Laplacian-of-Gaussian response (``blob_sigma``), measured
  without the model, so a model that lights up between the cells cannot hide it.

Both are measured on the image's own pixels in its patches (the zeros padding a patch are left out).

A warning does not stop the count: it is written beside it (counts.csv's ``domain_warning``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

INTENSITY_FACTOR = 2.0   # mean signal intensity more than this many times off the training images'
SIZE_FACTOR = 1.5        # blobs more than this many times smaller or larger than in training
#: Blob scales tried (patch pixels), a factor of sqrt(2) apart; the peak is interpolated between them.
SIGMAS = tuple(float(2 ** (k / 2)) for k in range(0, 10))   # 1 to 22.6
MAX_PATCHES = 16         # patches a domain's blob scale is measured on
CHANNEL_NAMES = ("red", "green", "blue")


@dataclass(frozen=True)
class Domain:
    signal_channels: tuple[int, ...]      # channels that hold the signal (the dataset's definition)
    channel_mean: tuple[float, ...] | None  # mean intensity per channel of the training patches, 0-1
    spacing: float | None                 # median nearest-neighbour distance of the training dots, patch pixels
    blob_sigma: float | None = None       # the training patches' blob scale (``blob_scale``), patch pixels

    @classmethod
    def of(cls, train, signal_channels) -> "Domain":
        """The domain of a training split (a PreparedDataset) of a dataset with ``signal_channels``."""
        from .localization.radii import median_spacing

        channels = tuple(int(c) for c in signal_channels)
        mean = train.images.reshape(-1, train.images.shape[-1]).mean(axis=0) / 255.0
        spacing = median_spacing(train.patch_points(p) for p in range(len(train.images)))
        picked = np.linspace(0, len(train.images) - 1, min(MAX_PATCHES, len(train.images))).astype(int)
        sigma = blob_scale([signal(train.images[p], channels) for p in picked])
        return cls(channels, tuple(round(float(m), 5) for m in mean),
                   round(float(spacing), 3) if np.isfinite(spacing) else None, round(sigma, 3))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "Domain | None":
        if not data:
            return None
        mean = data.get("channel_mean")
        return cls(tuple(data["signal_channels"]), tuple(mean) if mean else None, data.get("spacing"),
                   data.get("blob_sigma"))

    def fill(self, channels) -> tuple[float, float, float]:
        """What a single-channel image's other channels (not ``channels``) are set to: the training
        images' mean intensity there, 0-255 (zero where it is not recorded)."""
        if self.channel_mean is None:
            return (0.0, 0.0, 0.0)
        return tuple(0.0 if c in channels else float(self.channel_mean[c]) * 255 for c in range(3))

    def signal_intensity(self) -> float | None:
        if self.channel_mean is None:
            return None
        return float(np.mean([self.channel_mean[c] for c in self.signal_channels]))


def channel_text(channels) -> str:
    return " and ".join(CHANNEL_NAMES[c] for c in channels)


# 4x4 ordered-dither thresholds: floor(value + threshold) over a tile averages to the value (to 1/16)
_BAYER = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) + 0.5) / 16


def place_grey(grey: np.ndarray, channels, fill=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(H, W) uint8 into an (H, W, 3) image: in ``channels``; elsewhere ``fill`` (per channel,
    0-255, fractional), ordered-dithered so that the channel's mean is the fill and not its rounding."""
    h, w = grey.shape
    dither = np.tile(_BAYER, (h // 4 + 1, w // 4 + 1))[:h, :w]
    rgb = np.stack([np.floor(float(f) + dither) for f in fill], axis=-1).clip(0, 255).astype(np.uint8)
    for c in channels:
        rgb[..., c] = grey
    return rgb


def signal(patch: np.ndarray, channels) -> np.ndarray:
    """(H, W) float signal of a uint8 (H, W, 3) patch: the mean of its signal channels, 0-1."""
    return patch[..., list(channels)].astype(np.float64).mean(axis=-1) / 255.0


def blob_scale(signals: list[np.ndarray], masks: list[np.ndarray] | None = None) -> float:
    """The scale (sigma, pixels) at which the strongest blobs of ``signals`` respond: per sigma of
    SIGMAS, the 99th percentile of the scale-normalised |LoG| over the (masked) pixels, averaged over
    the signals; the peak's sigma, interpolated on log(sigma). Bright and dark blobs alike; the
    intensity's scale cancels. NaN for an image without structure."""
    from scipy import ndimage

    scores = []
    for sigma in SIGMAS:
        values = []
        for k, sig in enumerate(signals):
            response = np.abs(sigma ** 2 * ndimage.gaussian_laplace(sig, sigma, mode="nearest"))
            if masks is not None:
                response = response[masks[k]]
            if response.size:
                values.append(np.percentile(response, 99))
        scores.append(np.mean(values) if values else 0.0)
    scores = np.asarray(scores)
    if not scores.max() > 0:
        return float("nan")
    k = int(np.argmax(scores))
    logs = np.log(SIGMAS)
    if 0 < k < len(SIGMAS) - 1:   # the vertex of the parabola through the peak and its neighbours
        a, b, c = scores[k - 1:k + 2]
        denominator = a - 2 * b + c
        shift = 0.5 * (a - c) / denominator if denominator < 0 else 0.0
        return float(np.exp(logs[k] + shift * (logs[1] - logs[0])))
    return float(SIGMAS[k])


def image_pixels(data, p: int) -> np.ndarray:
    """(H, W) bool: the pixels of patch ``p`` of ``data`` (a PreparedDataset) inside its image, not the
    zeros that pad it (``PatchToImage``: patch pixel j is at (j + 0.5) * scale - 0.5 + offset)."""
    h, w = data.images.shape[1:3]
    width, height = data.image_sizes[data.patch_image[p]]
    (sx, sy), (ox, oy) = data.patch_scale[p], data.patch_offset[p]
    xs = (np.arange(w) + 0.5) * sx - 0.5 + ox
    ys = (np.arange(h) + 0.5) * sy - 0.5 + oy
    return (ys[:, None] < height - 0.5) & (xs[None, :] < width - 0.5)


def warnings_for(domain: Domain | None, data, index: int, single_channel: bool, grey_into) -> list[str]:
    """Why image ``index`` of ``data`` (a PreparedDataset of the images to count) lies outside
    ``domain``; empty when it does not."""
    if domain is None:
        return []
    out = []
    if single_channel and len(domain.signal_channels) < 3:
        out.append(f"one channel where the model saw three: put into {channel_text(grey_into)} "
                   f"(the model's cells are in {channel_text(domain.signal_channels)}; --grey-into chooses)")
    patches = np.flatnonzero(data.patch_image == index)
    signals = [signal(data.images[p], domain.signal_channels) for p in patches]
    masks = [image_pixels(data, p) for p in patches]
    image = float(np.mean(np.concatenate([s[m] for s, m in zip(signals, masks)])))
    trained = domain.signal_intensity()
    if trained and image > 0 and not 1 / INTENSITY_FACTOR <= image / trained <= INTENSITY_FACTOR:
        out.append(f"intensity {image / trained:.2g} x the training images' (mean {image:.3f} against {trained:.3f} in "
                   f"{channel_text(domain.signal_channels)}; more than {INTENSITY_FACTOR:g}x off)")
    size = blob_scale(signals, masks) if domain.blob_sigma else float("nan")
    if size == size and not 1 / SIZE_FACTOR <= size / domain.blob_sigma <= SIZE_FACTOR:
        out.append(f"cell size {size / domain.blob_sigma:.2g} x the training images' (blob scale {size:.1f} px "
                   f"against {domain.blob_sigma:.1f}; more than {SIZE_FACTOR:g}x off: --scale "
                   f"{domain.blob_sigma / size:.2g} brings the cells to the training size)")
    return out
