"""The DM-Count loss: count L1 + optimal transport (entropic, Sinkhorn) + total variation.

    loss = |sum(z) - n| (mean over images)
         + WOT * sum over images of OT(z / sum(z), uniform on the image's dots)
         + WTV * mean over images of n * || z / sum(z) - pooled dots / n ||_1

z is the model output (the non-negative density at the output stride, whose sum is the
predicted count), n the number of dots. The weights and Sinkhorn settings are the defaults of
the original train.py (github.com/cvlab-stonybrook/DM-Count):

    --wot 0.1  --wtv 0.01  --reg 10.0  --num-of-iter-in-ot 100  --norm-cood 0

so the transport cost is the squared distance in input pixels (``NORM_COOD = False``) between a
dot and the centre of an output cell, and the entropic regularisation is 10 px^2. As in the
original, the OT term is summed (not averaged) over the images of a batch, images without dots
add no OT term, and only the dual potential of the prediction (``beta``) carries a gradient.

The Sinkhorn iterations are POT's batched log-domain solver (``ot.batch``), run on all images
of the batch at once with the dots padded (padding has zero mass). The original used a
plain-domain Sinkhorn in float32, whose kernel exp(-C/10) underflows to zero for cells farther
than about 30 px from every dot; the log domain gives the exact potentials there.
"""

from __future__ import annotations

import torch
from ot.batch import bregman_log_projection_batch

from cellbench.training.targets import sum_pool

WOT = 0.1                  # weight of the OT loss
WTV = 0.01                 # weight of the TV loss
REG = 10.0                 # entropic regularisation of Sinkhorn (in the units of the cost)
NUM_OF_ITER_IN_OT = 100    # Sinkhorn iterations
NORM_COOD = False          # True: coordinates mapped to [-1, 1] before the squared distance
STOP_THR = 1e-9            # the original's Sinkhorn stopping threshold
MIN_MASS = 1e-16           # floor of the predicted distribution inside the log (the original's M_EPS)


def normalised(pred: torch.Tensor) -> torch.Tensor:
    """The prediction as a distribution over its cells (the original's ``mu_normed``)."""
    return pred / (pred.sum(dim=(1, 2, 3), keepdim=True) + 1e-6)


def cell_centres(length: int, stride: int, device) -> torch.Tensor:
    """Centres of the output cells along one axis in input-pixel coordinates (pixel j is centred
    at j, so cell k, covering pixels stride*k .. stride*k + stride - 1, at stride*k + (stride-1)/2)."""
    return torch.arange(length, device=device, dtype=torch.float32) * stride + (stride - 1) / 2


def cost_matrix(points: torch.Tensor, height: int, width: int, stride: int,
                norm_cood: bool = NORM_COOD) -> torch.Tensor:
    """(B, N, h*w) squared distance from each dot to each output cell centre."""
    ys = cell_centres(height, stride, points.device)
    xs = cell_centres(width, stride, points.device)
    px, py = points[..., 0:1], points[..., 1:2]  # (B, N, 1)
    if norm_cood:
        size_x, size_y = width * stride, height * stride
        xs, px = xs / size_x * 2 - 1, px / size_x * 2 - 1
        ys, py = ys / size_y * 2 - 1, py / size_y * 2 - 1
    dx = (px - xs) ** 2  # (B, N, w)
    dy = (py - ys) ** 2  # (B, N, h)
    return (dy[..., :, None] + dx[..., None, :]).flatten(2)


def ot_loss(pred_normed: torch.Tensor, points: torch.Tensor, point_mask: torch.Tensor, stride: int,
            reg: float = REG, num_iter: int = NUM_OF_ITER_IN_OT) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image entropic OT between the normalised prediction and the uniform measure on the dots.

    Returns (loss, cost), both (B,): ``cost`` is the transport cost <P, C> of the Sinkhorn plan
    (detached, in px^2 when NORM_COOD is False); ``loss`` has the value of ``cost`` and the
    gradient <beta, d pred_normed> of the original (beta: the prediction's dual potential).
    Images without dots give 0 for both.
    """
    b, _, h, w = pred_normed.shape
    if points.shape[1] == 0:
        zero = pred_normed.sum(dim=(1, 2, 3)) * 0
        return zero, zero.detach()
    has_dots = point_mask.any(dim=1)
    n = point_mask.sum(dim=1, keepdim=True).clamp_min(1)
    # Images without dots get a dummy uniform source so that Sinkhorn stays finite; masked out below.
    source = torch.where(has_dots[:, None], point_mask / n, torch.full_like(n, 1.0 / points.shape[1], dtype=torch.float32))
    target = pred_normed.detach().flatten(1).clamp_min(MIN_MASS)
    cost = cost_matrix(points, h, w, stride)
    out = bregman_log_projection_batch(-cost / reg, source, target, max_iter=num_iter, tol=STOP_THR, grad="detach")
    beta = reg * out["potentials"][1]  # (B, h*w)
    transport = (out["T"] * cost).sum(dim=(1, 2))
    linear = (pred_normed.flatten(1) * beta).sum(dim=1)
    loss = transport + linear - linear.detach()
    keep = has_dots.float()
    return loss * keep, (transport * keep).detach()


def tv_loss(pred_normed: torch.Tensor, dots: torch.Tensor, counts: torch.Tensor, stride: int) -> torch.Tensor:
    """Per-image count-weighted L1 between the normalised prediction and the normalised dot map."""
    target = sum_pool(dots, stride) / (counts.view(-1, 1, 1, 1) + 1e-6)
    return (pred_normed - target).abs().sum(dim=(1, 2, 3)) * counts


def dm_count_loss(pred: torch.Tensor, batch) -> torch.Tensor:
    pred = pred.float()
    stride = batch.images.shape[-1] // pred.shape[-1]
    normed = normalised(pred)
    count = (pred.sum(dim=(1, 2, 3)) - batch.counts).abs().mean()
    ot, _ = ot_loss(normed, batch.points, batch.point_mask, stride)
    tv = tv_loss(normed, batch.dots, batch.counts, stride).mean()
    return count + WOT * ot.sum() + WTV * tv
