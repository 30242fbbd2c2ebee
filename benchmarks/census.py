"""Every seed-paired contrast of the chapters' claims, from runs already in a store: half-width, n, verdict.

    .venv/bin/python benchmarks/census.py [--profile laptop] [--runs-dir data/runs] [--chapters a,b] [--seeds 3]

Trains nothing: a chapter with a run missing from the store is skipped and named (the data-quality
chapter, whose cuts depend on its reference's scores, is read only where `--chapters` names it and
its runs are stored). A claim of several parts (every rival, both retrieval directions) counts each
part as one contrast. Prints one line per contrast and, per chapter and overall, the verdict
counts and the median 95% half-width (points): the census the closing notes compare across seeds.
`--seeds k` judges each chapter on its first k seeds only (the same runs, fewer of them). The
store keys runs by the precision "auto" resolves to: read a store trained in the other precision
with CLIPSTUDY_PRECISION set to it.
"""

from __future__ import annotations

import argparse
import collections
import math
import statistics
from pathlib import Path

from clipstudy import claims
from clipstudy.chapters import CHAPTERS, QUALITY
from clipstudy.quality_chapter import main_rate, quality_table
from clipstudy.store import run_dir
from clipstudy.study import chapter, chapter_table, configs
from clipstudy.worlds import chance, study_world


def leaves(v: dict) -> list[dict]:
    """The contrasts under a verdict: its parts' leaves, or itself."""
    return [leaf for part in v["parts"] for leaf in leaves(part)] if v.get("parts") else [v]


def stored(profile: str, name: str, world: Path, runs_dir: Path) -> bool:
    return all((run_dir(cfg, runs_dir) / "eval.json").is_file() for cfg in configs(chapter(profile, name), world))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="laptop")
    ap.add_argument("--world", default="", help="study world folder (default: the profile's)")
    ap.add_argument("--runs-dir", default="data/runs")
    ap.add_argument("--chapters", default=",".join(CHAPTERS), help="comma-separated (data_quality: on request)")
    ap.add_argument("--seeds", type=int, default=0, help="judge on each chapter's first k seeds (default: all)")
    args = ap.parse_args()
    if args.seeds:
        for by_profile in (*CHAPTERS.values(), QUALITY):
            sizes = by_profile[args.profile]
            by_profile[args.profile] = {**sizes, "seeds": sizes["seeds"][:args.seeds]}
    runs_dir, world = Path(args.runs_dir), study_world(args.profile, args.world)
    widths, words = collections.defaultdict(list), collections.defaultdict(collections.Counter)
    for name in args.chapters.split(","):
        if name == "data_quality":
            _, table, _ = quality_table(args.profile, args.world, runs_dir)
            table = main_rate(table, args.profile)
        elif not stored(args.profile, name, world, runs_dir):
            print(f"{name}: skipped, not every run is in {runs_dir}")
            continue
        else:
            _, table = chapter_table(args.profile, name, args.world, runs_dir)
        for v in claims.verdicts_of(name, table, chance(world)):
            words[name][v["verdict"]] += 1
            for leaf in leaves(v):
                half = (leaf["high"] - leaf["low"]) / 2 if not math.isnan(leaf.get("low", math.nan)) else math.nan
                if not math.isnan(half):
                    widths[name].append(half)
                print(f"{name:14s} {v['key']:24s} {leaf.get('verdict', v['verdict']):15s} n={leaf.get('n', '-')} "
                      f"effect {leaf['effect']:+6.1f} ± {half:4.1f}  {leaf.get('test', '')}")
    print()
    for name in widths:
        print(f"{name:14s} {len(widths[name]):3d} contrasts, median half-width {statistics.median(widths[name]):.1f}; "
              f"verdicts: {dict(words[name])}")
    every = [w for ws in widths.values() for w in ws]
    if every:
        print(f"{'all':14s} {len(every):3d} contrasts, median half-width {statistics.median(every):.1f}, "
              f"{sum(w <= 3.5 for w in every)} at most 3.5 points")


if __name__ == "__main__":
    main()
