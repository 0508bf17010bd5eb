"""Speed benchmark (issue 5): how close the trainer gets to the bare VGG-19 trunk, and inference speed.

    python benchmarks/speed.py --out benchmarks/results/speed-<device>.json [--device cuda] [--steps 50]

Measures, in one run:
  (a) the bare VGG-19 trunk (DCL's counter without GMP and head): forward, backward and an Adam
      step at batch 8, 256x256, on tensors already on the device: the floor for the DCL counter;
  (b) the trainer (cellbench.training.trainer.fit) on dcl_no_gmp, which is that trunk plus a 1x1 head, with
      real VGG patches, on-device augmentation and the same precision settings, each epoch validated
      as the protocol does (so b includes validation);
  and prints b / a. Then images per second at inference for every method, and, when a results
  folder is given, the wall time of every finished run (from the runs' metadata.json).
Not a test: numbers depend on the machine; they are recorded with the device's name.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

# Run as a script from anywhere, with cellbench installed or not (the GPU machine has only wheels).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cellbench.data.prepare import PreparedDataset  # noqa: E402
from cellbench.device import resolve_device, seed_everything
from cellbench.inference import autocast, patch_counts
from cellbench.io import write_json
from cellbench.training.losses import count_l1
from cellbench.methods import build_model, discover, get_method
from cellbench.provenance import environment
from cellbench.inputs import images_tensor
from cellbench.training.trainer import Task, TrainSettings, fit


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_trunk(device, steps, warmup, amp, channels_last, batch=8, size=256) -> float:
    """Images per second of VGG-19 features[:-1] forward + backward + Adam step."""
    trunk = build_model(get_method("dcl_no_gmp")).trunk.to(device)
    if channels_last:
        trunk = trunk.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(trunk.parameters(), lr=1e-4, fused=device.type == "cuda")  # as the trainer
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            tic = time.perf_counter()
        with autocast(device, amp):
            loss = trunk(x).float().sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(device)
    return steps * batch / (time.perf_counter() - tic)


VAL_IMAGES = 10   # VGG's validation split (10:9:1 of 200 images)


def trainer(device, data: PreparedDataset, epochs: int, amp, channels_last, tmp: Path) -> tuple[float, float]:
    """Images per second of cellbench's trainer on dcl_no_gmp and the seconds of one epoch as the
    protocol runs it: the training steps, then validation on VGG's 10 validation images (every
    epoch, ``train.val_every: 1``) and the selection of the best weights."""
    seed_everything(0, deterministic=False)
    settings = TrainSettings(epochs=epochs + 1, batch_size=8, lr=1e-4, weight_decay=0.0, restart_period=100,
                             restart_mult=1, amp=amp, channels_last=channels_last, crop_size=None,
                             val_every=1, checkpoint_seconds=math.inf, seed=0)
    task = Task(model=build_model(get_method("dcl_no_gmp")), loss=count_l1, stride=8)
    ids = data.image_ids.tolist()
    train, val = data.subset(ids[:-VAL_IMAGES]), data.subset(ids[-VAL_IMAGES:])
    result = fit(task, train, val, settings, device, tmp / "bench.ckpt", tmp / "bench.csv")
    seconds = [row["seconds"] for row in result.history[1:]]  # drop the warm-up epoch
    epoch = sum(seconds) / len(seconds)
    return len(train.images) / epoch, epoch


def syncs_per_epoch(device, data: PreparedDataset, amp, channels_last, tmp: Path) -> float | None:
    """Host-device synchronisations the trainer makes per epoch, counted by CUDA's sync debug mode
    (expected: a handful at each epoch's end, none inside the steps). None on other devices."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer(device, data, 2, amp, channels_last, tmp)  # 3 epochs, each validated
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught) / 3   # per epoch, validation included


def inference(device, data: PreparedDataset, amp, channels_last) -> dict[str, float]:
    images = images_tensor(data)
    speeds = {}
    for name, spec in discover().items():
        model = build_model(spec).to(device)
        patch_counts(model, images[:16], device, amp=amp, channels_last=channels_last)  # warm-up
        sync(device)
        tic = time.perf_counter()
        patch_counts(model, images, device, amp=amp, channels_last=channels_last)
        sync(device)
        speeds[name] = len(images) / (time.perf_counter() - tic)
    return speeds


def run_times(results: Path) -> list[dict]:
    rows = []
    for meta in sorted(results.glob("*/*/seed*/metadata.json")):
        m = json.loads(meta.read_text())
        rows.append({"dataset": m["dataset"], "method": m["method"]["name"], "seed": m["seed"],
                     "train_seconds": round(m["wall_seconds"], 1), "device": m["environment"]["device"]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=50, help="timed steps of the bare trunk")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs of the trainer")
    parser.add_argument("--prepared", default="results/prepared/VGG/patches.npz")
    parser.add_argument("--images", type=int, default=100, help="training images (VGG's train split has 100)")
    parser.add_argument("--results", default="results", help="runs whose wall times to collect")
    parser.add_argument("--no-amp", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    device = resolve_device(args.device)
    amp, channels_last = not args.no_amp, True
    data = PreparedDataset.load(Path(args.prepared))
    data = data.subset(data.image_ids[: args.images].tolist())
    tmp = Path(args.out).parent / ".speed-tmp"
    tmp.mkdir(parents=True, exist_ok=True)

    a = bare_trunk(device, args.steps, warmup=5, amp=amp, channels_last=channels_last)
    print(f"(a) bare VGG-19 trunk, batch 8, 256x256: {a:.1f} images/s", flush=True)
    b, epoch_seconds = trainer(device, data, args.epochs, amp, channels_last, tmp)
    print(f"(b) trainer on dcl_no_gmp:                 {b:.1f} images/s "
          f"(the protocol's epoch, validation included: {epoch_seconds:.2f} s)", flush=True)
    print(f"    ratio b / a: {b / a:.3f} (target >= 0.8)", flush=True)
    syncs = syncs_per_epoch(device, data, amp, channels_last, tmp)
    if syncs is not None:
        print(f"    host-device synchronisations per epoch (incl. start-up, validation once): {syncs:.1f}", flush=True)
    inf = inference(device, data, amp, channels_last)
    for name, speed in inf.items():
        print(f"inference {name:12s} {speed:.1f} images/s", flush=True)
    times = run_times(Path(args.results))
    write_json(args.out, {"bare_trunk_images_per_s": a, "trainer_images_per_s": b, "ratio": b / a,
                          "epoch_seconds": epoch_seconds, "train_images": len(data.images) - VAL_IMAGES,
                          "syncs_per_epoch": syncs, "inference_images_per_s": inf, "run_wall_times": times, "amp": amp,
                          "channels_last": channels_last, "command": " ".join(sys.argv),
                          "environment": environment(device)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
