"""What runs cost: each chapter's `real` grid in GPU-hours, and each strategy's measured throughput.

    costs, basis = costs.real_costs(2_800_000)   # one row per chapter page; basis names the measurements
    costs.throughput()                           # benchmarks/strategies.py's rows, ratio to CLIP

Both read measurement records in benchmarks/results/ (written by benchmarks/mfu.py,
benchmarks/stream.py and benchmarks/strategies.py); none of them measures anything itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clipstudy.chapters import CHAPTERS, PAGES, QUALITY, quality_runs
from clipstudy.config import ConfigError, from_dict
from clipstudy.losses import make_ssl_head
from clipstudy.study import grid_points
from clipstudy.train import TrainConfig, make_model, text_side, train_flops

REAL_POOL = 2_800_000  # CC3M's pairs, about (2.8M of its 3.3M URLs still resolve): the pool the real costs assume

THROUGHPUT = Path(__file__).parent.parent / "benchmarks" / "results" / "strategies.jsonl"


def throughput(path: str | Path = THROUGHPUT) -> pd.DataFrame:
    """The rows of the last strategies benchmark (benchmarks/strategies.py): strategy, round,
    samples_per_s, with `ratio`, samples/s over CLIP's in the same round."""
    rows = pd.read_json(path, lines=True)
    clip = rows[rows["strategy"] == "CLIP"].set_index("round")["samples_per_s"]
    return rows.assign(ratio=rows["samples_per_s"] / rows["round"].map(clip))


def real_costs(pool: int = REAL_POOL, results_dir: str | Path = "benchmarks/results",
               pages: list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """What each chapter's `real` grid costs on one GPU, estimated from two measurements: the
    H200's training rate for each tower at 64 px (benchmarks/mfu.py's GPU record, data in
    memory; a tower it did not time: their median GFLOP/s over the run's GFLOPs) and one CPU
    process's JPEG decode rate (benchmarks/stream.py) times the run's `data_workers`. Each run
    goes at the slower of the two. -> (one row per chapter page, or per page of `pages`: runs,
    samples seen, train PFLOPs, GPU-hours; a sentence naming the measurements)."""
    results = Path(results_dir)
    gpu = json.loads((results / "mfu-gpu.json").read_text())
    decode = json.loads((results / "stream-cpu.json").read_text())
    # the row of the run's own mode: compiled runs go ~1.7x faster (vit-b-8), so pricing an eager
    # run from the compiled row (the last one per model) understated its hours
    measured = {(r["model"], r.get("compile", False)): r["achieved_gflop_s"] for r in gpu["rows"] if r["precision"] == "bf16"}
    eager = {model: v for (model, compiled), v in measured.items() if not compiled}
    fallback = float(np.median(list(eager.values())))
    per_process = decode["samples_per_s"]["decode"]
    flops: dict[str, float] = {}
    params: dict[str, int] = {}

    def gflop_s(cfg: TrainConfig) -> float:
        return measured.get((cfg.model, cfg.compile)) or eager.get(cfg.model) or fallback

    def train_gflops(cfg: TrainConfig) -> float:
        key = json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("seed", "samples", "data_limit")},
                         sort_keys=True)
        if key not in flops:  # structure only: no pre-training, no data
            bare = dataclasses.replace(cfg, pretrained_image="")
            tokenizer, overrides = text_side(bare, [])
            if cfg.patch_dropout:
                overrides["patch_dropout"] = cfg.patch_dropout
            model = make_model(bare, cfg.image_size, overrides, torch.device("cpu"))
            head = make_ssl_head(cfg) if cfg.ssl_scale else None
            flops[key] = train_flops(cfg, model, head, cfg.image_size, tokenizer.context_length)["train_gflops"]
            params[cfg.model] = sum(p.numel() for p in model.parameters())
        return flops[key]

    grids = {PAGES[name]: [from_dict(TrainConfig, {**point, "seed": seed})
                                   for point, seed in itertools.product(grid_points(sizes["real"], pool), sizes["real"]["seeds"])]
             for name, sizes in CHAPTERS.items() if "real" in sizes and (pages is None or PAGES[name] in pages)}
    if "real" in QUALITY and (pages is None or "15_data_quality" in pages):
        # a reference on the pool's first rows (unless one is given), then each cut of the rest
        q = QUALITY["real"]
        ref, candidates = q["reference"], pool - q["reference"]["rows"]
        if candidates < 1:
            raise ConfigError(f"pool={pool:,} leaves no candidates beside the data-quality reference's "
                              f"{ref['rows']:,} rows; give the pool's real size")
        grids["15_data_quality"] = [from_dict(TrainConfig, {**q["train"], "samples": r["samples"], "seed": r["seed"]})
                                    for r in quality_runs(q, pool)]
    rows = []
    for name, cfgs in sorted(grids.items()):
        hours = samples = pflops = disk = 0.0
        for cfg in cfgs:
            g = train_gflops(cfg)
            rate = min(gflop_s(cfg) / g, per_process * max(cfg.data_workers, 1))
            hours += cfg.samples / rate / 3600
            samples += cfg.samples
            pflops += cfg.samples * g / 1e6
            disk += params[cfg.model] * 4 * (3 if cfg.keep_optimizer else 1) / 1e9  # fp32 weights (+ AdamW's two moments)
        rows.append({"chapter": name, "runs": len(cfgs), "samples seen (M)": round(samples / 1e6, 1),
                     "train PFLOPs": round(pflops, 1), "GPU-hours": round(hours, 1),
                     "checkpoints (GB)": round(disk, 1)})
    basis = (f"Measured: the training rate of each tower on an {gpu['machine']} at {gpu['image_size']} px, batch "
             f"{gpu['batch']} (benchmarks/results/mfu-gpu.json); {per_process:,.0f} JPEGs/s decoded and resized to "
             f"{decode['image_size']} px by one process of {decode['machine']} (benchmarks/results/stream-cpu.json); "
             f"each run at the rate of its own mode (eager, or compiled where it compiles; a tower without a row: "
             f"the towers' median). Pool: {pool:,} pairs. Checkpoints: each run's final one, fp32 weights only "
             f"(`keep_optimizer` triples it), besides the shards and the resumable checkpoint of the run in progress.")
    return pd.DataFrame(rows), basis
