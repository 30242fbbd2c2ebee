"""Training throughput of each strategy (paper B's B3), everything else equal, in one run:
samples/s of the same trainer on the same machine, and each one's ratio to CLIP in the same round.

    .venv/bin/python benchmarks/strategies.py [--rounds 3] [--steps 40] [--world data/worlds/study-laptop]

For each round and each strategy of clipstudy.chapters.STRATEGIES, in a fresh order per round:
`train()` of the chapters' laptop recipe (vit-ti-8, batch 64, 32 px) for `--steps` steps into a
temporary store, throughput = the median samples/s of its logged intervals after the first
(which holds the one-off start). Rows go to benchmarks/results/strategies.jsonl (the file is
replaced: one benchmark run, one set of ratios); the tricks page reads it and
clipstudy.verdicts.throughput turns the rounds into intervals. Cost: ~5 minutes on 2 CPU cores
(the MiniLM tower steps ~6x slower than the native one). Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from clipstudy.chapters import LAPTOP_TRAIN, STRATEGIES
from clipstudy.study import strategy
from clipstudy.compute import describe
from clipstudy.train import TrainConfig, train


def throughput(world: str, fields: dict, steps: int, runs_dir: Path) -> float:
    cfg = TrainConfig(data=world, out=str(runs_dir / "run"), model="vit-ti-8", overwrite=True, log_every=5,
                      samples=steps * LAPTOP_TRAIN["batch_size"], pretrain_samples=64, **{**LAPTOP_TRAIN, **fields})
    train(cfg, progress=False)
    rows = [json.loads(line) for line in (runs_dir / "run" / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["samples_per_s"] for r in rows[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--world", default="data/worlds/study-laptop")
    ap.add_argument("--out", default="benchmarks/results/strategies.jsonl")
    args = ap.parse_args()
    stamp, machine, rows = time.strftime("%Y-%m-%dT%H:%M:%S"), describe(), []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = list(STRATEGIES)
            random.Random(round_).shuffle(order)  # no strategy always runs first (or on a cold cache)
            for fields in order:
                name = strategy(fields)  # as the chapters' tables name it
                sps = throughput(args.world, fields, args.steps, Path(tmp))
                rows.append({"strategy": name, "round": round_, "samples_per_s": round(sps, 1), "steps": args.steps,
                             "model": "vit-ti-8", "batch_size": LAPTOP_TRAIN["batch_size"], "world": args.world,
                             "machine": machine, "run": stamp})
                print(f"round {round_} {name:22s} {sps:8.1f} samples/s", flush=True)
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    clip = {r["round"]: r["samples_per_s"] for r in rows if r["strategy"] == "CLIP"}
    print("\nratio to CLIP in the same round (mean over rounds):")
    for name in map(strategy, STRATEGIES):
        ratios = [r["samples_per_s"] / clip[r["round"]] for r in rows if r["strategy"] == name]
        print(f"  {name:22s} {statistics.mean(ratios):.3f}")


if __name__ == "__main__":
    main()
