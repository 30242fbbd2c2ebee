"""Model FLOPs utilisation: training FLOP/s over the machine's measured matmul peak.

    .venv/bin/python benchmarks/mfu.py [--models vit-ti-8,vit-s-8] [--image-size 32] [--batch 256]
                                       [--compile vit-s-8] [--world DIR] [--out benchmarks/results]

In one run: the dense matmul peak of this device in fp32 and bf16 (`compute.matmul_peak`, best
of 1024^2 and 2048^2 on CPU, 4096^2 and 8192^2 on GPU, measured before and after the models; the
higher reading counts), then for each model and precision a short training run of clipstudy's
trainer; throughput is the median samples/s of its logged intervals (`--log-every` steps each)
after the first `--skip` intervals, and

    MFU = samples/s x training FLOPs per sample / matmul peak of that precision,

with training FLOPs = 3 x the forward FLOPs torch's FlopCounterMode measures for one image and
one full-length caption (the compute axis of paper A). `--compile MODELS` adds a torch.compile
run for those models and records its first step's seconds (the compile, with a cold or warm
inductor cache). Prints a table and writes JSON.
The GPU figures on the Performance page, on a small world at the gpu profile's 64 px
(`python -m clipstudy world build --out WORLD --pairs 2048 --image-size 64 --classes 60
--retrieval-images 200 --probe-per-class 12`):
    python benchmarks/mfu.py --models vit-s-8,vit-b-16,vit-b-8 --image-size 64 --batch 2048
        --precisions bf16 --steps 60 --skip 2 --log-every 10 --compile vit-b-8 --world WORLD
Cost: 6-10 minutes on 2 CPU cores with the defaults (+~90 s per `--compile` model and precision, cold cache).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import torch

from clipstudy import models
from clipstudy.compute import describe, matmul_peak, resolve_device
from clipstudy.records import read_metrics
from clipstudy.train import TrainConfig, train
from clipstudy.world import WorldConfig, build_world

from _results import write_result  # this folder: scripts run by path have it on sys.path

HERE = Path(__file__).resolve().parent


def measure(world: Path, out: Path, model: str, size: int, batch: int, steps: int, skip: int, precision: str,
            compile: bool, log_every: int = 1) -> dict:
    cfg = TrainConfig(data=str(world), out=str(out), model=model, image_size=size, samples=steps * batch,
                      batch_size=batch, warmup=0, precision=precision, compile=compile, log_every=log_every)
    summary = train(cfg, progress=False)
    rows = read_metrics(out)
    shutil.rmtree(out)
    rate = statistics.median(r["samples_per_s"] for r in rows[skip:])
    gflops = summary["train_gflops_per_sample"]
    return {"model": model, "precision": precision, "compile": compile, "samples_per_s": round(rate, 1),
            "train_gflops_per_sample": round(gflops, 4), "achieved_gflop_s": round(rate * gflops, 1),
            "first_step_s": round(rows[0]["seconds"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(sorted(models.MODELS)))
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=14)
    ap.add_argument("--skip", type=int, default=4, help="warm-up logged intervals left out of the median")
    ap.add_argument("--log-every", type=int, default=1,
                    help="steps per timed interval; on a GPU use several, as each logged step waits for the "
                         "device and so stops the host from queueing the next step's kernels early")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--compile", default="", help="comma-separated models to also measure with torch.compile")
    ap.add_argument("--world", default="", help="train on this world folder (default: build a small one at "
                    "--image-size in a temporary folder)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    names = args.models.split(",")
    bad = [n for n in names if n not in models.MODELS]
    if bad:
        raise SystemExit(f"error: unknown model(s) {bad}; valid: {sorted(models.MODELS)}")

    device = resolve_device("auto")
    precisions = args.precisions.split(",")

    def peaks() -> dict[str, float]:
        sizes = (4096, 8192) if device.type == "cuda" else (1024, 2048)  # big enough to fill the device
        out = {p: round(matmul_peak({"fp32": torch.float32, "bf16": torch.bfloat16}[p], device, sizes) / 1e9, 1)
               for p in precisions}
        print("matmul peak: " + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in out.items()), flush=True)
        return out

    before = peaks()
    results = {"machine": describe(device), "device": str(device), "image_size": args.image_size,
               "batch": args.batch, "steps": args.steps, "skip": args.skip,
               "log_every": args.log_every, "rows": []}
    tmp = Path(tempfile.mkdtemp(prefix="clipstudy-mfu-"))
    try:
        world = Path(args.world) if args.world else tmp / "world"
        if not args.world:  # training data only: small suites
            build_world(WorldConfig(pairs=max(4096, args.batch * 4), image_size=args.image_size, classes=60,
                                    retrieval_images=200, probe_per_class=12), world, progress=False)
        for name in names:
            for precision in precisions:
                for compile in (False, True) if name in args.compile.split(",") else (False,):
                    row = measure(world, tmp / "run", name, args.image_size, args.batch, args.steps, args.skip,
                                  precision, compile, args.log_every)
                    results["rows"].append(row)
                    print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # the peak is measured before and after the models, and the higher reading is the denominator
    # (a drifting shared CPU otherwise inflates MFU); both readings are recorded
    after = peaks()
    results["matmul_peak_before_after_gflop_s"] = {p: [before[p], after[p]] for p in precisions}
    results["matmul_peak_gflop_s"] = {p: max(before[p], after[p]) for p in precisions}
    for row in results["rows"]:
        row["mfu"] = round(row["achieved_gflop_s"] / results["matmul_peak_gflop_s"][row["precision"]], 3)

    print(f"\n{'model':12s} {'precision':9s} {'compile':7s} {'samples/s':>10s} {'GFLOP/s':>8s} {'MFU':>6s}")
    for r in results["rows"]:
        print(f"{r['model']:12s} {r['precision']:9s} {str(r['compile']):7s} {r['samples_per_s']:10.1f} "
              f"{r['achieved_gflop_s']:8.1f} {r['mfu']:6.1%}")
    write_result(args.out, "mfu", results, gpu=device.type == "cuda")


if __name__ == "__main__":
    main()
