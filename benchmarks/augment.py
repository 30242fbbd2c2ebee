"""What batch augmentation costs next to a training step: each clipstudy.augment pipeline, timed.

    .venv/bin/python benchmarks/augment.py [--threads 0] [--repeats 50] [--large] [--out FILE.json]

In one run on this machine: the time of one vit-ti-8 training step at 32 px, batch 64
(uint8 -> `to_model_input`, forward, open_clip ClipLoss, backward, fused AdamW step, at the
trainer's `precision="auto"`, on random images and tokens), then each pipeline of
`clipstudy.augment.AUGMENTATIONS` on a batch of 64 uint8 32x32 images (`--large`: both again
for 256 images at 64 px), and prints per pipeline ms per batch (median and best of `--repeats`
calls), samples/s and the ratio to the step at the same batch and size. The step is timed before and after the
pipelines and the lower median counts, as a shared machine drifts between the two. `--out` also
writes the table as JSON.
Cost: ~15 s on 2 CPU cores (~1 minute with --large).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from open_clip.loss import ClipLoss

from clipstudy import augment, models
from clipstudy.compute import autocast, describe, resolve_precision
from clipstudy.data import to_model_input


def timings(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def step_timer(batch: int, size: int, precision: str):
    """One training step of vit-ti-8 as clipstudy.train runs it, on fixed random inputs."""
    torch.manual_seed(0)
    model = models.create_model("vit-ti-8", image_size=size).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    loss_fn = ClipLoss()
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
    tokens = torch.randint(1, model.vocab_size, (batch, model.context_length))

    def step():
        with autocast("cpu", precision):
            loss = loss_fn(**model(to_model_input(images, size), tokens), output_dict=True)["contrastive_loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--large", action="store_true", help="also time batches of 256 at 64 px")
    ap.add_argument("--out", default="", help="write the results as JSON to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precision = resolve_precision("auto", "cpu")
    rows, steps = [], {}
    for batch, size in [(64, 32)] + ([(256, 64)] if args.large else []):
        step = step_timer(batch, size, precision)
        n = 10 if size == 32 else 4
        step_ms = [1e3 * statistics.median(timings(step, n, warmup=2))]
        images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
        for name in augment.AUGMENTATIONS:
            fn, g = augment.make(name), torch.Generator().manual_seed(0)
            ts = timings(lambda: fn(images, g), args.repeats)
            rows.append({"pipeline": name, "batch": batch, "image_size": size,
                         "ms_median": round(1e3 * statistics.median(ts), 3), "ms_best": round(1e3 * min(ts), 3),
                         "samples_per_s": round(batch / statistics.median(ts))})
        step_ms.append(1e3 * statistics.median(timings(step, n, warmup=0)))
        steps[f"{batch}x{size}px"] = {"ms": round(min(step_ms), 2), "before_after_ms": [round(t, 2) for t in step_ms]}
        for row in rows[-len(augment.AUGMENTATIONS):]:
            row["over_step"] = round(row["ms_median"] / min(step_ms), 4)

    print(f"machine: {describe('cpu')}; step precision {precision}")
    for key, st in steps.items():
        print(f"vit-ti-8 training step, batch {key}: {st['ms']:.1f} ms (medians before / after: "
              f"{st['before_after_ms'][0]:.1f} / {st['before_after_ms'][1]:.1f})")
    print(f"\n{'pipeline':20s} {'batch':>5s} {'px':>3s} {'ms median':>9s} {'ms best':>8s} "
          f"{'samples/s':>10s} {'/ step':>7s}")
    for r in rows:
        print(f"{r['pipeline']:20s} {r['batch']:5d} {r['image_size']:3d} {r['ms_median']:9.2f} {r['ms_best']:8.2f} "
              f"{r['samples_per_s']:10d} {r['over_step']:7.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": describe("cpu"), "threads": torch.get_num_threads(),
                                              "step_precision": precision, "steps": steps,
                                              "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
