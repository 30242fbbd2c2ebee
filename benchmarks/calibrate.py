"""The calibration screen (clipstudy/calibration.py): train every lever at every budget and seed,
evaluate it on its world's suites, append one JSON line per run to the results file.

    .venv/bin/python benchmarks/calibrate.py [--levers NAME,NAME] [--budgets 16384,65536] [--seeds 0,1,2]

Runs go through the result store (data/runs), so a repeated call trains only what is missing and
a row already in the results file is not written twice. Cost on 2 CPU cores (bf16): a vit-ti-8
run of 16k / 64k / 256k samples takes ~0.3 / 1 / 3.5 minutes with its evaluation; the whole
screen ~55 minutes (50 distinct runs). Run nothing else that trains meanwhile: two torch processes on 2 cores
slow each other down far more than 2x (measured: one run fell from ~1,300 to ~7 samples/s).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clipstudy import calibration
from clipstudy.compute import describe
from clipstudy.config import from_dict
from clipstudy.data import load_world_info
from clipstudy.evaluate import evaluate_world, load_templates
from clipstudy.store import load_run, train_or_load
from clipstudy.train import TrainConfig

KEEP = ["id/top1", "id/top5", "shift_mean/top1", "probe/5shot_top1", "probe/10shot_top1", "probe/linear_top1",
        "retrieval/i2t_r1", "retrieval/t2i_r1", "fit/train_i2t_r1", "fit/heldout_i2t_r1", "fit/gap"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levers", default=",".join(calibration.LEVERS), help="lever names separated by commas")
    ap.add_argument("--budgets", default="", help="samples seen, comma-separated (default: each lever's, else 16k,64k,256k)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--runs-dir", default="data/runs")
    ap.add_argument("--out", default="benchmarks/results/calibration.jsonl")
    args = ap.parse_args()
    names = [n for n in args.levers.split(",") if n]
    unknown = [n for n in names if n not in calibration.LEVERS]
    if unknown:
        sys.exit(f"error: unknown lever(s) {unknown}; levers: {list(calibration.LEVERS)}")
    out = Path(args.out)
    done = set()
    if out.is_file():
        done = {(r["lever"], r["samples"], r["seed"], r["run"]) for r in map(json.loads, out.read_text().splitlines())}
    for name in names:
        settings = calibration.resolve(name)
        world = calibration.world_for(settings)
        budgets = [int(b) for b in args.budgets.split(",") if b] or calibration.LEVERS[name].get("budgets",
                                                                                               calibration.BUDGETS)
        for samples in budgets:
            for seed in [int(s) for s in args.seeds.split(",")]:
                cfg = from_dict(TrainConfig, {**settings["train"], "samples": samples, "seed": seed, "data": str(world)})
                run = train_or_load(cfg, runs_dir=args.runs_dir, world=world, progress=True)
                key = (name, samples, seed, run["dir"].name)
                if key in done:
                    continue
                ev = run["eval"]
                if settings["prompts"] == "clip":  # the same run, zero-shot with CLIP-style templates
                    model, tokenizer, _ = load_run(run["dir"])
                    ev = {**ev, **evaluate_world(model, tokenizer, world, suites=ev_suites(world),
                                                 templates=load_templates())}
                shifts = {k: v for k, v in ev.items() if k.startswith("shift-") and k.endswith("/top1")}
                row = {"lever": name, "kind": calibration.LEVERS[name]["kind"], "samples": samples, "seed": seed,
                       "run": run["dir"].name, "world": str(world), "prompts": settings["prompts"],
                       "settings": settings, **{k: round(ev[k], 5) for k in KEEP if k in ev},
                       "best_shift": max(shifts, key=shifts.get).split("/")[0] if shifts else None,
                       "best_shift/top1": round(max(shifts.values()), 5) if shifts else None,
                       "final_loss": round(run["summary"]["final_loss"], 4), "train_seconds": run["summary"]["seconds"],
                       "samples_per_s": run["summary"]["samples_per_s"], "curve": run["curve"],
                       "machine": describe()}
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{name:32s} {samples:>7,} seed {seed}: zero-shot {100 * ev['id/top1']:5.1f}  "
                      f"shifts {100 * ev['shift_mean/top1']:5.1f}  i2t {100 * ev['retrieval/i2t_r1']:5.1f}  "
                      f"loss {run['summary']['final_loss']:.3f}", flush=True)


def ev_suites(world: Path) -> list[str]:
    """The world's classification suites that zero-shot scores (id and the shifts)."""
    return [s for s in load_world_info(world)["suites"] if s == "id" or s.startswith("shift-")]


if __name__ == "__main__":
    main()
