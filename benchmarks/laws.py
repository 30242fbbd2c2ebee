"""Train the deeper laptop grids the scaling laws need (clipstudy/chapters.py's LAWS) and record
their runs, one JSON line each, in the file the CNN-vs-ViT and strategies pages fit laws on.

    .venv/bin/python benchmarks/laws.py [--chapters cnn_vs_vit,strategies] [--seeds 0,1,2]

Each chapter's laptop recipe (its `train` fields) on the laptop study world, through the result
store (data/runs): a repeated call trains only what is missing, and runs already stored (e.g.
the chapter's own 8,192- and 24,576-sample cells) load in milliseconds. Budgets go smallest
first, and the results file is rewritten after each, so an interrupted sweep keeps what finished.
Cost on 2 CPU cores (bf16, two runs side by side): about 30 minutes a chapter at 3 seeds. Run
nothing else that trains meanwhile.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clipstudy import scaling, study
from clipstudy.chapters import CHAPTERS, LAWS
from clipstudy.compute import describe
from clipstudy.worlds import chance, study_world


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chapters", default=",".join(LAWS), help=f"comma-separated, of {list(LAWS)}")
    ap.add_argument("--seeds", default="", help="comma-separated (default: each grid's)")
    ap.add_argument("--runs-dir", default="data/runs")
    ap.add_argument("--out", default=str(scaling.RECORDED))
    args = ap.parse_args()
    names = [n for n in args.chapters.split(",") if n]
    unknown = [n for n in names if n not in LAWS]
    if unknown or not names:
        sys.exit(f"error: --chapters {args.chapters!r}: {unknown or 'none given'}; choose from {list(LAWS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        sys.exit(f"error: --seeds {args.seeds!r} is not a comma-separated list of integers")
    world = study_world("laptop", progress=True)
    out = Path(args.out)
    rows = {r["run"]: r for r in scaling.recorded(out).to_dict("records")}
    for name in names:
        sizes = {"train": CHAPTERS[name]["laptop"]["train"], "grid": LAWS[name]["grid"],
                 "seeds": seeds or LAWS[name]["seeds"]}
        cfgs = study.configs(sizes, world)
        for budget in sorted({c.samples for c in cfgs}):
            part = [c for c in cfgs if c.samples == budget]
            runs = study.run_grid(part, args.runs_dir, world, progress=True)
            for row in study.tidy(runs).to_dict("records"):
                rows[row["run"]] = {"chapter": name, **row, "world": world.name, "chance": chance(world),
                                    "machine": describe()}
            tmp = out.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows.values()))
            tmp.replace(out)
            print(f"{name}: {budget:,} samples, {len(runs)} runs recorded in {out}", flush=True)


if __name__ == "__main__":
    main()
