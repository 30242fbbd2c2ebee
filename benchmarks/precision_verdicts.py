"""Does a chapter's verdict change between fp32 and bf16? One chapter trained both ways, its claims judged on each.

    .venv/bin/python benchmarks/precision_verdicts.py [--chapter augmentation] [--profile laptop]
                                                      [--runs-dir data/runs-precision]

Trains (or reads back from the result store) the chapter's runs at `--profile` twice: forced to
fp32 and to bf16 (`CLIPSTUDY_PRECISION`, which the side-by-side worker processes inherit), each
into its own store, `<runs-dir>/<precision>` (the store keys "auto" by what it resolves to, so the
two never share a run; apart, neither mixes with the book's own store).
The chapter's claims (clipstudy/claims.py, our own checks included) are judged on each table, and
benchmarks/results/precision-verdicts-cpu.json records, per claim and precision, the effect, its
95% interval, n and the verdict, and whether the verdict changed. Cost of the augmentation
chapter at laptop on 2 cores (40 runs): ~20 min in bf16, ~33 in fp32; runs already stored cost
nothing. A CPU without native bf16 emulates it, far slower.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

from clipstudy import claims
from clipstudy.chapters import CHAPTERS
from clipstudy.compute import PRECISION_ENV, describe
from clipstudy.study import chapter_table
from clipstudy.worlds import chance

from _results import write_result  # this folder: scripts run by path have it on sys.path

PRECISIONS = ("bf16", "fp32")
FIELDS = ("effect", "low", "high", "n", "verdict")


def _num(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def judge(chapter: str, profile: str, world: str, runs_dir: Path, precision: str) -> tuple[list[dict], dict]:
    """The chapter trained (or read back) at `precision` -> (its claims' verdicts, the runs' facts)."""
    before = os.environ.get(PRECISION_ENV)
    os.environ[PRECISION_ENV] = precision
    try:
        start = time.perf_counter()
        path, table = chapter_table(profile, chapter, world, runs_dir / precision, progress=True)
        wall = time.perf_counter() - start
    finally:
        if before is None:
            os.environ.pop(PRECISION_ENV, None)
        else:
            os.environ[PRECISION_ENV] = before
    used = sorted(table["precision"].unique())
    if used != [precision]:
        raise SystemExit(f"error: the {precision} store holds runs in {used}: give a fresh --runs-dir")
    verdicts = claims.verdicts_of(chapter, table, chance(path))
    facts = {"runs": len(table), "seeds": int(table["seed"].nunique()), "train_minutes": round(table["train_seconds"].sum() / 60, 1),
             "wall_minutes_this_call": round(wall / 60, 1)}
    return verdicts, facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chapter", default="augmentation", choices=sorted(CHAPTERS))
    ap.add_argument("--profile", default="laptop")
    ap.add_argument("--world", default="", help="study world folder (default: the profile's)")
    ap.add_argument("--runs-dir", default="data/runs-precision", help="<runs-dir>/fp32 and <runs-dir>/bf16 are the stores")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()

    judged, facts = {}, {}
    for precision in PRECISIONS:
        judged[precision], facts[precision] = judge(args.chapter, args.profile, args.world, Path(args.runs_dir), precision)
    rows = []
    for by_precision in zip(*(judged[p] for p in PRECISIONS)):
        key = by_precision[0]["key"]
        assert all(v["key"] == key for v in by_precision)
        row = {"key": key, "claim": by_precision[0]["claim"]}
        for precision, v in zip(PRECISIONS, by_precision):
            row[precision] = {k: _num(v.get(k)) for k in FIELDS}
        row["verdict changed"] = len({row[p]["verdict"] for p in PRECISIONS}) > 1
        rows.append(row)
    print(f"\n{args.chapter} at {args.profile}: " + "; ".join(f"{p}: {f['runs']} runs, {f['seeds']} seeds, "
                                                            f"{f['train_minutes']} min of training" for p, f in facts.items()))
    for r in rows:
        cells = "  ".join(f"{p} {r[p]['verdict']:>15s} {r[p]['effect'] or math.nan:+6.1f} "
                          f"[{r[p]['low'] if r[p]['low'] is not None else math.nan:+.1f}, "
                          f"{r[p]['high'] if r[p]['high'] is not None else math.nan:+.1f}]" for p in PRECISIONS)
        print(f"{r['key']:24s} {cells}{'  CHANGED' if r['verdict changed'] else ''}")
    changed = sum(r["verdict changed"] for r in rows)
    print(f"{changed} of {len(rows)} verdicts change between {' and '.join(PRECISIONS)}")
    path = write_result(args.out, "precision-verdicts", {"machine": describe(), "chapter": args.chapter,
                                                         "profile": args.profile, "runs": facts, "claims": rows,
                                                         "changed": changed}, gpu=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
