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

The Sinkhorn iterations are the original's plain-domain Sinkhorn-Knopp in float32
(losses/bregman_pytorch.py:sinkhorn_knopp), batched over the images (dots padded with zero
mass), with its guard M_EPS = 1e-16 in both divisions and in the log of the potential:

    v = b / (K^T u + M_EPS),  u = a / (K v + M_EPS),  K = exp(-C / reg),  beta = reg * log(v + M_EPS)

The guard is not a detail: with reg = 10 px^2 the float32 kernel underflows to zero for cells
farther than about 32 px from every dot, and there v = b / M_EPS, so beta = reg * log(b / M_EPS),
a few hundred px^2 (about 310 for b = 1/256) and the same for every such cell, where the exact
(log-domain) potential grows like the squared distance, up to 1e4 px^2 at 128-pixel crops. An
earlier version used POT's exact log-domain solver; its OT gradient was then several times the
original's (2-7x in L2 norm on random 128-pixel crops with 8 dots each), dominated Adam's
normalised steps at lr 1e-4, and drove the predicted count to 5-8 times the truth within 20
steps (benchmarks/first_steps.py on MBM). Cells with no predicted mass
get v = 0 and beta = reg * log(M_EPS), as in the original.

POT's plain-domain solvers could not reproduce this. ot.bregman.sinkhorn_knopp (POT 0.9.7)
divides without a guard (v = b / K^T u) and, as soon as some K^T u is exactly 0 -- at the first
iteration whenever a cell is more than ~32 px from every dot, i.e. in almost every crop -- warns
"numerical errors" and returns the previous (initial, all-ones) scalings; its v is also 0 where
b = 0, so log(v) = -inf. ot.batch.bregman_projection_batch has no guard either (0 / 0 = NaN).
Neither takes an epsilon, so the ten-line loop below is written in torch. It keeps the original's
stopping rule per image: every 10 iterations, an image whose squared marginal error
||b - v * K^T u||^2 is at most 1e-9 stops updating. The scalings are bounded by 1 / M_EPS, so
the original's inf/NaN fallback cannot trigger and is left out. Its beta agrees with the
original's sinkhorn() run image by image to float32 rounding (3e-5 px^2).

The OT term's value in the loss is zero, as the original's reported "OT loss" (its
``ot_obj_values`` minus itself: only the gradient <beta, d z/sum(z)> remains); what the original
logged as the Wasserstein distance is ``transport_cost`` below, computed only where it is read
(tests and diagnostics), not at every step: it is the cost of the exact entropic plan from POT's
batched log-domain solver, a second Sinkhorn on the same problem (the guarded plan u K v carries
no mass from cells whose kernel underflowed, so its cost would leave out exactly the mass far
from the dots). POT is needed for that value only, not for training.

A step makes no host synchronisation: the dots come padded to a fixed length with their mask
(``batch.points``, ``batch.point_mask``), and the Sinkhorn loop always runs its 100 iterations,
an image that met the stopping rule keeping its scalings (the original's result, without asking
the device whether every image has stopped).
"""

from __future__ import annotations

import torch

from cellbench.training.targets import sum_pool

WOT = 0.1                  # weight of the OT loss
WTV = 0.01                 # weight of the TV loss
REG = 10.0                 # entropic regularisation of Sinkhorn (in the units of the cost)
NUM_OF_ITER_IN_OT = 100    # Sinkhorn iterations
NORM_COOD = False          # True: coordinates mapped to [-1, 1] before the squared distance
STOP_THR = 1e-9            # the original's Sinkhorn stopping threshold
M_EPS = 1e-16              # the original's guard in Sinkhorn's divisions and in log(v)


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


def sinkhorn_knopp(a: torch.Tensor, b: torch.Tensor, cost: torch.Tensor, reg: float = REG,
                   num_iter: int = NUM_OF_ITER_IN_OT, stop_thr: float = STOP_THR) -> tuple[torch.Tensor, ...]:
    """The original's guarded plain-domain Sinkhorn, batched: a (B, N), b (B, M), cost (B, N, M),
    all float32. Returns the scalings u (B, N), v (B, M) and the kernel K (B, N, M). An image
    whose marginal error is at most ``stop_thr`` (checked every 10 iterations) stops updating."""
    kernel = torch.exp(-cost / reg)
    u = a.clone()  # the original's ones / na: a is 1/n on the dots, 0 on the padding
    v = torch.ones_like(b) / b.shape[1]
    active = torch.ones(a.shape[0], dtype=torch.bool, device=a.device)
    for it in range(1, num_iter + 1):
        v_new = b / (torch.einsum("bn,bnm->bm", u, kernel) + M_EPS)
        u_new = a / (torch.einsum("bnm,bm->bn", kernel, v_new) + M_EPS)
        v = torch.where(active[:, None], v_new, v)
        u = torch.where(active[:, None], u_new, u)
        if it % 10 == 0:
            err = (b - torch.einsum("bn,bnm->bm", u, kernel) * v).pow(2).sum(dim=1)
            active = active & (err > stop_thr)
    return u, v, kernel


def _marginals(points: torch.Tensor, point_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The uniform measure on each image's dots (B, N), and which images have dots. Images without
    dots get a dummy uniform source so that Sinkhorn stays finite; their terms are masked out."""
    has_dots = point_mask.any(dim=1)
    n = point_mask.sum(dim=1, keepdim=True).clamp_min(1)
    source = torch.where(has_dots[:, None], point_mask / n, torch.full_like(n, 1.0 / points.shape[1], dtype=torch.float32))
    return source.float(), has_dots


def ot_loss(pred_normed: torch.Tensor, points: torch.Tensor, point_mask: torch.Tensor, stride: int,
            reg: float = REG, num_iter: int = NUM_OF_ITER_IN_OT) -> torch.Tensor:
    """Per-image OT term (B,) between the normalised prediction and the uniform measure on the
    dots: value zero, gradient <beta, d pred_normed> of the original, beta the prediction's dual
    potential from the original's guarded float32 Sinkhorn (see the module docstring). Images
    without dots give 0 and no gradient."""
    b, _, h, w = pred_normed.shape
    if points.shape[1] == 0:
        return pred_normed.sum(dim=(1, 2, 3)) * 0
    source, has_dots = _marginals(points, point_mask)
    target = pred_normed.detach().flatten(1).float()
    _, v, _ = sinkhorn_knopp(source, target, cost_matrix(points, h, w, stride), reg, num_iter)
    beta = reg * torch.log(v + M_EPS)  # (B, h*w): the original's (guarded) potential
    linear = (pred_normed.flatten(1) * beta).sum(dim=1)
    return (linear - linear.detach()) * has_dots.float()


def transport_cost(pred_normed: torch.Tensor, points: torch.Tensor, point_mask: torch.Tensor, stride: int,
                   reg: float = REG, num_iter: int = NUM_OF_ITER_IN_OT) -> torch.Tensor:
    """Per-image transport cost <P, C> (B,, detached; px^2 when NORM_COOD is False) of the exact
    entropic plan (POT's log-domain solver): what the original logged as the Wasserstein distance.
    Not part of the training step (it needs POT and a second Sinkhorn); 0 for images without dots."""
    from ot.batch import bregman_log_projection_batch  # POT: only for this reported value

    b, _, h, w = pred_normed.shape
    if points.shape[1] == 0:
        return torch.zeros(b)
    source, has_dots = _marginals(points, point_mask)
    target = pred_normed.detach().flatten(1).float()
    cost = cost_matrix(points, h, w, stride)
    exact = bregman_log_projection_batch(-cost / reg, source, target.clamp_min(M_EPS), max_iter=num_iter,
                                         tol=STOP_THR, grad="detach")
    return ((exact["T"] * cost).sum(dim=(1, 2)) * has_dots.float()).detach()


def tv_loss(pred_normed: torch.Tensor, dots: torch.Tensor, counts: torch.Tensor, stride: int) -> torch.Tensor:
    """Per-image count-weighted L1 between the normalised prediction and the normalised dot map."""
    target = sum_pool(dots, stride) / (counts.view(-1, 1, 1, 1) + 1e-6)
    return (pred_normed - target).abs().sum(dim=(1, 2, 3)) * counts


def dm_count_loss(pred: torch.Tensor, batch) -> torch.Tensor:
    pred = pred.float()
    stride = batch.images.shape[-1] // pred.shape[-1]
    normed = normalised(pred)
    count = (pred.sum(dim=(1, 2, 3)) - batch.counts).abs().mean()
    ot = ot_loss(normed, batch.points, batch.point_mask, stride)
    tv = tv_loss(normed, batch.dots, batch.counts, stride).mean()
    return count + WOT * ot.sum() + WTV * tv
