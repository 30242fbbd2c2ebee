"""Runs side by side x threads each: how a chapter's grid should share this machine's cores.

    .venv/bin/python benchmarks/workers.py [--runs 4] [--samples 4096] [--models vit-ti-8]
                                           [--precision auto] [--world data/worlds/study-laptop]

For each way of splitting the cores (W runs side by side x T threads each, W x T = cores, and
one run on every core), `study.run_grid` trains `--runs` runs of the chapters' laptop recipe
(batch 64, 32 px; seeds 0..runs-1) into a fresh temporary store and evaluates each on the
world's `id` suite, exactly as a chapter does. Throughput is the samples trained over the
grid's wall time (evaluation and process start included); each split's ratio is to one run on
every core in the same benchmark run. `compute.parallelism` picks the split the chapters use.
Writes benchmarks/results/workers-<precision>-cpu.json. Cost: ~1 minute per split and model on 2 cores
(vit-ti-8); run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from clipstudy.chapters import LAPTOP_TRAIN
from clipstudy.compute import describe, parallelism, resolve_device, resolve_precision
from clipstudy.study import run_grid
from clipstudy.train import TrainConfig

from _results import write_result  # this folder: scripts run by path have it on sys.path


def splits(cores: int) -> list[tuple[int, int]]:
    """(workers, threads) pairs that use every core: 1 x cores first (the reference)."""
    return [(cores // t, t) for t in sorted({t for t in range(1, cores + 1) if cores % t == 0}, reverse=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--samples", type=int, default=4_096)
    ap.add_argument("--models", default="vit-ti-8")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--world", default="data/worlds/study-laptop")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    if not (Path(args.world) / "world.json").is_file():
        raise SystemExit(f"error: --world {args.world} is not a world folder (make book builds data/worlds/study-laptop)")
    cores = os.cpu_count() or 1
    precision = resolve_precision(args.precision, resolve_device("cpu"))
    rows = []
    for model in args.models.split(","):
        for workers, threads in splits(cores):
            cfgs = [TrainConfig(data=args.world, model=model, samples=args.samples, seed=seed, precision=precision,
                                **LAPTOP_TRAIN) for seed in range(args.runs)]
            with tempfile.TemporaryDirectory() as store:
                os.environ["CLIPSTUDY_WORKERS"] = f"{workers}x{threads}"  # the serial path's threads too
                start = time.perf_counter()
                runs = run_grid(cfgs, store, Path(args.world), progress=False, suites=["id"])
                wall = time.perf_counter() - start
            train_s = sum(r["summary"]["seconds"] for r in runs)
            rows.append({"model": model, "workers": workers, "threads": threads, "runs": args.runs,
                         "samples_per_s": round(args.runs * args.samples / wall, 1), "wall_s": round(wall, 1),
                         "train_s_per_run": round(train_s / len(runs), 1),
                         "eval_and_start_s_per_run": round((wall * workers - train_s) / len(runs), 1)})
            print(rows[-1], flush=True)
    for row in rows:
        ref = next(r for r in rows if r["model"] == row["model"] and r["workers"] == 1)
        row["ratio"] = round(row["samples_per_s"] / ref["samples_per_s"], 2)
    os.environ.pop("CLIPSTUDY_WORKERS")
    chosen = parallelism(args.runs, cores)
    print(f"\n{'model':10s} {'runs x threads':>14s} {'samples/s':>10s} {'ratio':>6s}   ({precision}; "
          f"compute.parallelism picks {chosen[0]}x{chosen[1]})")
    for r in rows:
        print(f"{r['model']:10s} {r['workers']:>7d} x {r['threads']:<4d} {r['samples_per_s']:10.1f} {r['ratio']:6.2f}")
    write_result(args.out, f"workers-{precision}", {"machine": describe(), "precision": precision, "samples": args.samples,
                                       "recipe": LAPTOP_TRAIN, "chosen": list(chosen), "rows": rows}, gpu=False)


if __name__ == "__main__":
    main()
