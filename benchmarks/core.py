"""Core speed benchmark: world build, training throughput, evaluation time (CPU or GPU).

    .venv/bin/python benchmarks/core.py [--pairs 100000] [--steps 30] [--out benchmarks/results]

Measures, in one run on this machine:
  1. seconds to build a world of `--pairs` training pairs at 64 px (and 32 px), suites included,
     per stage as the builder records them;
  2. training samples/s of the default model at 32 and 64 px (batch 256, fp32; bf16 too with
     --bf16), steady state = after the first logged interval;
  3. seconds to evaluate one checkpoint on every suite of the 32 px world.
Prints a table and writes it as JSON (with the machine's description) under --out.
Cost: about 10 minutes on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from clipstudy.compute import describe, resolve_device
from clipstudy.records import read_metrics
from clipstudy.store import evaluate_run
from clipstudy.train import TrainConfig, train
from clipstudy.world import WorldConfig, build_world

from _results import write_result  # this folder: scripts run by path have it on sys.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=30, help="training steps per throughput measurement")
    ap.add_argument("--model", default=TrainConfig.model)
    ap.add_argument("--bf16", action="store_true", help="also measure bf16 autocast")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="clipstudy-bench-"))
    results: dict = {"machine": describe(resolve_device("auto")), "pairs": args.pairs, "model": args.model}
    try:
        for size in (64, 32):
            t = time.perf_counter()
            info = build_world(WorldConfig(pairs=args.pairs, image_size=size), tmp / f"world{size}", progress=False)
            results[f"world_build_{size}px_s"] = round(time.perf_counter() - t, 1)
            results[f"world_build_{size}px_stages_s"] = info.get("seconds")
        for size in (32, 64):
            for precision in ("fp32", "bf16") if args.bf16 else ("fp32",):
                cfg = TrainConfig(data=str(tmp / f"world{size}"), out=str(tmp / f"run{size}{precision}"),
                                  model=args.model, samples=256 * args.steps, warmup=0, log_every=5,
                                  precision=precision)
                train(cfg, progress=False)
                rows = read_metrics(Path(cfg.out))
                steady = rows[1:]  # the first interval includes start-up
                seen = sum(r["samples"] - p["samples"] for p, r in zip(rows, steady))
                secs = sum(r["seconds"] - p["seconds"] for p, r in zip(rows, steady))
                results[f"train_{size}px_{precision}_samples_per_s"] = round(seen / secs, 1)
        for size in (32, 64):  # ratios within this run, so machine-to-machine speed cancels
            if args.bf16:
                results[f"train_{size}px_bf16_over_fp32"] = round(
                    results[f"train_{size}px_bf16_samples_per_s"] / results[f"train_{size}px_fp32_samples_per_s"], 2)
        results["train_64px_over_32px_fp32_time"] = round(
            results["train_32px_fp32_samples_per_s"] / results["train_64px_fp32_samples_per_s"], 2)
        t = time.perf_counter()
        ev = evaluate_run(tmp / "run32fp32", tmp / "world32", progress=False)
        results["eval_all_suites_32px_s"] = round(time.perf_counter() - t, 1)
        results["eval_keys"] = len(ev)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for k, v in results.items():
        print(f"{k:40s} {v}")
    write_result(args.out, "core", results, gpu=torch.cuda.is_available())


if __name__ == "__main__":
    main()
