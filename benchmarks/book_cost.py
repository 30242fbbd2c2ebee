"""What a cold `make book` costs on this machine: each chapter's minutes predicted from measured rates.

    .venv/bin/python benchmarks/book_cost.py [--profile laptop] [--precision auto] [--steps 48]
                                             [--seeds 5] [--workers auto]

For every distinct run shape of the profile's chapters (a config less its seed, samples and
pool), one short `train()` (its second half timed: the first steps run slow) at the threads each run gets when the book trains runs side by side
(`compute.parallelism`) measures samples/s (median of the logged intervals after the first),
and one `store.evaluate_run` of that run on the chapter's suites measures the evaluation
seconds. A chapter's predicted minutes are then

    sum over its runs (samples / rate + evaluation + start) / runs side by side,

with `--seeds` seeds per point (the chapters' own by default) and each run shared by two
chapters counted once, in the first. The data-quality chapter's runs are
`chapters.quality_runs` (a cut's rows are fixed by its share of the candidates; which rows,
by the reference's scores). Prints a table and writes
benchmarks/results/book-cost-<precision>-cpu.json; predictions, not measurements of the book
(the closing notes compare them with a measured chapter). Cost: ~10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from clipstudy.chapters import CHAPTERS, PAGES, QUALITY, quality_runs
from clipstudy.compute import describe, parallelism, resolve_device, resolve_precision
from clipstudy.config import from_dict
from clipstudy.store import config_hash, evaluate_run
from clipstudy.study import configs
from clipstudy.train import TrainConfig, train
from clipstudy.worlds import study_world

from _results import write_result  # this folder: scripts run by path have it on sys.path

START_S = 2.0  # a run's own set-up: pool, model, tokenised captions, checkpoint and records written


def shape(cfg: TrainConfig) -> str:
    return json.dumps({k: v for k, v in dataclasses.asdict(cfg).items()
                       if k not in ("seed", "samples", "data_limit", "data_subset", "out")}, sort_keys=True)


def chapter_runs(profile: str, world: Path, seeds: int | None) -> dict[str, list[tuple[TrainConfig, list | None]]]:
    """page -> [(config, suites)], each run once (in the first chapter that has it)."""
    seen, out = set(), {}
    for name, by_profile in CHAPTERS.items():
        sizes = dict(by_profile[profile])
        if seeds:
            sizes["seeds"] = list(range(seeds))
        runs = []
        for cfg in configs(sizes, world):
            key = config_hash(cfg)
            if key not in seen:
                seen.add(key)
                runs.append((cfg, sizes.get("suites")))
        out[PAGES[name]] = runs
    q = dict(QUALITY[profile])
    if seeds:
        q["seeds"] = list(range(seeds))
    base = {**q["train"], "data": str(world)}
    pool = json.loads((world / "world.json").read_text())["config"]["pairs"]
    runs = [(from_dict(TrainConfig, {**base, "samples": r["samples"], "seed": r["seed"]}), r["suites"])
            for r in quality_runs(q, pool)]
    out[PAGES["data_quality"]] = runs
    return out


def rate_and_eval(cfg: TrainConfig, suites: list | None, steps: int, tmp: Path) -> tuple[float, float]:
    run = tmp / "run"
    probe = dataclasses.replace(cfg, out=str(run), overwrite=True, samples=steps * cfg.batch_size, log_every=4,
                                curve_every=0, pretrain_samples=min(cfg.pretrain_samples, 256))
    train(probe, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rate = statistics.median(r["samples_per_s"] for r in rows[len(rows) // 2:])  # the first steps run slow
    start = time.perf_counter()
    evaluate_run(run, Path(cfg.data), suites, progress=False)
    return rate, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="laptop")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--seeds", type=int, default=0, help="seeds per point (default: each chapter's own)")
    ap.add_argument("--workers", default="auto", help="runs side by side: auto (compute.parallelism) or a number")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    precision = resolve_precision(args.precision, resolve_device("cpu"))
    world = study_world(args.profile, progress=True)
    pages = chapter_runs(args.profile, world, args.seeds or None)
    cores = os.cpu_count() or 1
    workers = parallelism(10**6)[0] if args.workers == "auto" else int(args.workers)
    threads = max(1, cores // workers)
    torch.set_num_threads(threads)
    measured: dict[tuple, tuple[float, float]] = {}
    rows, shapes = [], []  # shapes: each distinct run shape's measured rate and evaluation seconds
    with tempfile.TemporaryDirectory() as tmp:
        for page, runs in pages.items():
            seconds, samples = 0.0, 0
            for cfg, suites in runs:
                cfg = dataclasses.replace(cfg, precision=precision)
                key = (shape(cfg), json.dumps(suites))
                if key not in measured:
                    measured[key] = rate_and_eval(cfg, suites, args.steps, Path(tmp))
                    shapes.append({"chapter": page, "model": cfg.model, "image_size": cfg.image_size,
                                   "shape": json.loads(key[0]), "suites": suites,
                                   "samples_per_s": round(measured[key][0], 1), "eval_s": round(measured[key][1], 1)})
                    print(f"{page:20s} {cfg.model:10s} {measured[key][0]:7.1f} samples/s, eval {measured[key][1]:5.1f} s "
                          f"({suites or 'all suites'})", flush=True)
                rate, eval_s = measured[key]
                seconds += cfg.samples / rate + eval_s + START_S
                samples += cfg.samples
            rows.append({"chapter": page, "runs": len(runs), "samples": samples,
                         "minutes": round(seconds / 60 / min(workers, max(len(runs), 1)), 1)})
    print(f"\n{precision}, {workers} runs side by side x {threads} thread(s), seeds: {args.seeds or 'the chapters own'}")
    for r in rows:
        print(f"{r['chapter']:20s} {r['runs']:4d} runs {r['samples']:>10,d} samples {r['minutes']:7.1f} min")
    print(f"{'all chapters':20s} {sum(r['runs'] for r in rows):4d} runs {sum(r['samples'] for r in rows):>10,d} samples "
          f"{sum(r['minutes'] for r in rows):7.1f} min")
    write_result(args.out, f"book-cost-{precision}", {"machine": describe(), "profile": args.profile,
                                                     "precision": precision, "workers": workers, "threads": threads,
                                                     "seeds": args.seeds or "chapters'", "rows": rows,
                                                     "shapes": shapes}, gpu=False)


if __name__ == "__main__":
    main()
