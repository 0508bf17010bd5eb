"""The learning-rate schedule: linear warm-up, then cosine annealing with warm restarts (SGDR).

Written as a pure function of the step so that it can be tested, plotted and resumed exactly;
after the warm-up it equals torch's ``CosineAnnealingWarmRestarts`` (eta_min 0) stepped per
iteration, started at the end of the warm-up.
"""

from __future__ import annotations

import math


def lr_factor(step: int, warmup_steps: int, period: int, mult: int) -> float:
    """The learning rate at ``step`` (0-based) as a fraction of the base rate.

    Warm-up: (step + 1) / warmup_steps for the first ``warmup_steps`` steps, so the first step
    already moves. Then SGDR with a first period of ``period`` steps, each next one ``mult`` times
    longer."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    t = step - warmup_steps
    if mult == 1:
        t_cur, t_i = t % period, period
    else:
        i = int(math.log(t / period * (mult - 1) + 1, mult))
        t_cur, t_i = t - period * (mult ** i - 1) // (mult - 1), period * mult ** i
        if t_cur >= t_i:  # float rounding of the log at a period's end
            t_cur, t_i = t_cur - t_i, t_i * mult
    return 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))
