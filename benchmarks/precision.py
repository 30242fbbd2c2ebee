"""Does bf16 change what the laptop run learns? The default run in fp32 and bf16, several seeds.

    .venv/bin/python benchmarks/precision.py [--seeds 0,1] [--world data/worlds/default] [--runs-dir data/runs]

Trains (or reads back from the result store) the default TrainConfig on `--world` once per seed
and precision, evaluates each run on every suite, and prints per precision the mean and range
over seeds of the headline metrics, next to the training throughput (median per-step samples/s,
which a busy machine disturbs less than wall time). Writes the rows as JSON.
Cost on 2 CPU cores: ~13 minutes per fp32 run and ~5 per bf16 run, plus ~30 s of evaluation
each; runs already in the store cost nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from clipstudy.compute import describe, resolve_device
from clipstudy.store import train_or_load
from clipstudy.train import TrainConfig

from _results import write_result  # this folder: scripts run by path have it on sys.path

HERE = Path(__file__).resolve().parent
METRICS = ["id/top1", "id/top5", "shift_mean/top1", "probe/10shot_top1", "probe/linear_top1",
           "retrieval/i2t_r1", "retrieval/t2i_r1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--world", default="data/worlds/default")
    ap.add_argument("--runs-dir", default="data/runs")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()

    rows = []
    for precision in ("fp32", "bf16"):
        for seed in [int(s) for s in args.seeds.split(",")]:
            run = train_or_load(TrainConfig(data=args.world, seed=seed, precision=precision), args.runs_dir)
            steps = [r["samples_per_s"] for r in run["metrics"][1:]]
            rows.append({"precision": precision, "seed": seed, "run": run["dir"].name,
                         "final_loss": run["summary"]["final_loss"], "train_seconds": run["summary"]["seconds"],
                         "median_step_samples_per_s": round(statistics.median(steps), 1),
                         "eval_seconds": round(run["eval"]["eval_seconds"], 1),
                         **{m: run["eval"][m] for m in METRICS}})
            print(json.dumps(rows[-1]), flush=True)

    print(f"\n{'metric (%)':28s} " + "  ".join(f"{p:>20s}" for p in ("fp32", "bf16")))
    for metric in METRICS:
        cells = []
        for precision in ("fp32", "bf16"):
            values = [100 * r[metric] for r in rows if r["precision"] == precision]
            cells.append(f"{statistics.mean(values):6.2f} [{min(values):5.2f}, {max(values):5.2f}]")
        print(f"{metric:28s} " + "  ".join(f"{c:>20s}" for c in cells))
    for precision in ("fp32", "bf16"):
        rates = [r["median_step_samples_per_s"] for r in rows if r["precision"] == precision]
        print(f"{precision} training: median step {statistics.mean(rates):.0f} samples/s")
    device = resolve_device("auto")
    write_result(args.out, "precision", {"machine": describe(device), "world": args.world,
                                         "config": "TrainConfig() defaults", "rows": rows},
                 gpu=device.type == "cuda")


if __name__ == "__main__":
    main()
