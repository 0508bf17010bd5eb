"""Time of one training step (forward, backward, Adam) per method, width and crop, on this machine.

    python benchmarks/step_time.py --widths 0.25 0.5 --crops 64 96 128 [--methods ...] [--threads 2]

What the CPU track's settings were chosen from (benchmarks/README.md, "The CPU track"): batch 8 of
random inputs at the crop size, the method's own loss on a synthetic batch, median of a few steps
after one warm-up step. Prints a Markdown table; --out writes it as CSV too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cellbench.methods import build_model, discover, get_method, method_target, resolve_loss  # noqa: E402
from cellbench.training.batches import Batch  # noqa: E402
from cellbench.training.targets import sum_pool  # noqa: E402


def synthetic_batch(batch: int, size: int, stride: int, target: str, density_scale: float = 100.0) -> Batch:
    """Random images and about 200 dots per 256x256 patch (VGG's density), as the loss expects them."""
    dots = (torch.rand(batch, 1, size, size) < 0.003).float()
    density = sum_pool(dots, stride) * density_scale if target == "density" else None
    return Batch(images=torch.randn(batch, 3, size, size), counts=dots.sum(dim=(1, 2, 3)), density=density,
                 dots=dots, density_scale=density_scale if target == "density" else 1.0)


def step_seconds(name: str, width: float, crop: int, steps: int, batch: int, channels_last: bool = True) -> float:
    spec = get_method(name)
    model = build_model(spec, "none", sizes=(crop,), width=width)
    if channels_last:  # as the trainer (train.channels_last, default true)
        model = model.to(memory_format=torch.channels_last)
    loss_fn = resolve_loss(spec)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4) if params else None
    data = synthetic_batch(batch, crop, spec.stride, method_target(spec))
    if channels_last:
        data.images = data.images.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(steps + 1):
        tic = time.perf_counter()
        loss = loss_fn(model(data.images), data)
        if optimizer:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - tic)
    return statistics.median(times[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*")
    parser.add_argument("--widths", nargs="+", type=float, default=[0.25])
    parser.add_argument("--crops", nargs="+", type=int, default=[128])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--contiguous", action="store_true", help="contiguous tensors (default: channels-last)")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = args.methods or sorted(discover())
    rows = []
    print("| method | width | crop | s/step |\n|---|---|---|---|")
    for name in methods:
        for width in args.widths:
            for crop in args.crops:
                seconds = step_seconds(name, width, crop, args.steps, args.batch, not args.contiguous)
                rows.append((name, width, crop, seconds))
                print(f"| {name} | {width:g} | {crop} | {seconds:.3f} |", flush=True)
    if args.out:
        Path(args.out).write_text("method,width,crop,seconds_per_step\n" +
                                  "".join(f"{m},{w:g},{c},{s:.4f}\n" for m, w, c, s in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
