"""What runs cost: each chapter's `real` grid in GPU-hours, a profile's disk, and each strategy's
measured throughput.

    costs, basis = costs.real_costs(2_800_000)   # one row per chapter page; basis names the measurements
    costs.profile_disk("gpu")                    # GB: worlds, final checkpoints, the resumable one
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

from clipstudy.chapters import CHAPTERS, PAGES, QUALITY, quality_runs
from clipstudy.config import ConfigError, from_dict
from clipstudy.profiles import profile as get_profile
from clipstudy.study import grid_points, tower
from clipstudy.train import TrainConfig
from clipstudy.world import WorldConfig

REAL_POOL = 2_800_000  # CC3M's pairs, about (2.8M of its 3.3M URLs still resolve): the pool the real costs assume
WEIGHT_BYTES = 4  # per parameter of a final checkpoint: fp32 weights (train.py keeps no optimiser state in it)
ADAMW_BYTES = 12  # per parameter of a resumable checkpoint (or keep_optimizer): weights and AdamW's two fp32 moments
PIXEL_BYTES = 3  # a world's images: uint8 RGB

THROUGHPUT = Path(__file__).parent.parent / "benchmarks" / "results" / "strategies.jsonl"


def throughput(path: str | Path = THROUGHPUT) -> pd.DataFrame:
    """The rows of the last strategies benchmark (benchmarks/strategies.py): strategy, round,
    samples_per_s, with `ratio`, samples/s over CLIP's in the same round."""
    rows = pd.read_json(path, lines=True)
    clip = rows[rows["strategy"] == "CLIP"].set_index("round")["samples_per_s"]
    return rows.assign(ratio=rows["samples_per_s"] / rows["round"].map(clip))


def profile_runs(profile: str, pool: int, pages: list[str] | None = None) -> dict[str, list[TrainConfig]]:
    """Each chapter page's runs at `profile` (or those of `pages`) on a pool of `pool` pairs: its
    grid x seeds, and the data-quality page's reference and cuts as `quality_runs` plans them."""
    grids = {PAGES[name]: [from_dict(TrainConfig, {**point, "seed": seed}) for point, seed
                           in itertools.product(grid_points(sizes[profile], pool), sizes[profile]["seeds"])]
             for name, sizes in CHAPTERS.items() if profile in sizes and (pages is None or PAGES[name] in pages)}
    page = PAGES["data_quality"]
    if profile in QUALITY and (pages is None or page in pages):
        q = QUALITY[profile]
        if pool - q["reference"]["rows"] < 1:
            raise ConfigError(f"pool={pool:,} leaves no candidates beside the data-quality reference's "
                              f"{q['reference']['rows']:,} rows; give the pool's real size")
        grids[page] = [from_dict(TrainConfig, {**q["train"], "samples": r["samples"], "seed": r["seed"]})
                       for r in quality_runs(q, pool)]
    return grids


def gpu_rates(record: dict) -> tuple[dict[tuple[str, bool], float], dict[str, float], float]:
    """mfu-gpu.json's bf16 rows -> (achieved GFLOP/s by (tower, compiled), by tower eager, the
    eager towers' median: the rate of a tower without a row). One row per tower and mode, in any
    order: a tower's last row is not its rate (that priced vit-b-8's eager runs at its compiled
    rate, 48k samples/s against 28.5k)."""
    measured = {(r["model"], bool(r.get("compile", False))): r["achieved_gflop_s"]
                for r in record["rows"] if r["precision"] == "bf16"}
    eager = {model: v for (model, compiled), v in measured.items() if not compiled}
    return measured, eager, float(np.median(list(eager.values())))


def real_costs(pool: int = REAL_POOL, results_dir: str | Path = "benchmarks/results",
               pages: list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """What each chapter's `real` grid costs on one GPU, estimated from two measurements: the
    H200's training rate for each tower at 64 px (benchmarks/mfu.py's GPU records, data in
    memory: mfu-gpu.json, and mfu-towers-gpu.json where recorded; a tower neither timed: their median GFLOP/s over the run's GFLOPs) and one CPU
    process's JPEG decode rate (benchmarks/stream.py) times the run's `data_workers`. Each run
    goes at the slower of the two, and is priced from the row of its own mode (`compile`; a
    compiled run of a tower timed only eager: the eager row, which the sentence says). -> (one row
    per chapter page, or per page of `pages`: runs, samples seen, train PFLOPs, GPU-hours, GB of
    final checkpoints; a sentence naming the measurements, the fallbacks taken and the disk)."""
    results = Path(results_dir)
    gpu = json.loads((results / "mfu-gpu.json").read_text())
    towers = results / "mfu-towers-gpu.json"  # mfu.py's run over the CNN, Swin and Mixer towers, where recorded
    more = json.loads(towers.read_text())["rows"] if towers.is_file() else []
    decode = json.loads((results / "stream-cpu.json").read_text())
    measured, eager, median = gpu_rates({"rows": gpu["rows"] + more})
    per_process = decode["samples_per_s"]["decode"]
    no_row, eager_for_compiled = set(), set()  # towers priced from a fallback, named in the sentence

    def gflop_s(cfg: TrainConfig) -> float:
        if (cfg.model, cfg.compile) in measured:
            return measured[cfg.model, cfg.compile]
        if cfg.model in eager:  # compiled, but timed only eager: the slower rate, so hours are not understated
            eager_for_compiled.add(cfg.model)
            return eager[cfg.model]
        no_row.add(cfg.model)
        return median

    rows, largest = [], (0, "")
    for name, cfgs in sorted(profile_runs("real", pool, pages).items()):
        hours = samples = pflops = disk = 0.0
        for cfg in cfgs:
            params, g = tower(cfg, cfg.image_size)
            rate = min(gflop_s(cfg) / g, per_process * max(cfg.data_workers, 1))
            hours += cfg.samples / rate / 3600
            samples += cfg.samples
            pflops += cfg.samples * g / 1e6
            disk += params * (ADAMW_BYTES if cfg.keep_optimizer else WEIGHT_BYTES) / 1e9
            largest = max(largest, (params, f"`{cfg.model}`" + (f" with the {cfg.pretrained_text} text tower"
                                                                  if cfg.pretrained_text else "")))
        rows.append({"chapter": name, "runs": len(cfgs), "samples seen (M)": round(samples / 1e6, 1),
                     "train PFLOPs": round(pflops, 1), "GPU-hours": round(hours, 1),
                     "checkpoints (GB)": round(disk, 1)})
    fallbacks = "".join([
        f" No row for {', '.join(f'`{m}`' for m in sorted(no_row))}: priced at the timed towers' median, "
        f"{median:,.0f} GFLOP/s." if no_row else "",
        f" No compiled row for {', '.join(f'`{m}`' for m in sorted(eager_for_compiled))}: its compiled runs "
        f"priced from the eager row." if eager_for_compiled else ""])
    basis = (f"Measured: the training rate of each tower on an {gpu['machine']} at {gpu['image_size']} px, batch "
             f"{gpu['batch']} (benchmarks/results/mfu-gpu.json{', and mfu-towers-gpu.json for the towers it adds' if more else ''}); {per_process:,.0f} JPEGs/s decoded and resized to "
             f"{decode['image_size']} px by one process of {decode['machine']} (benchmarks/results/stream-cpu.json); "
             f"each run at the rate of its own mode (eager, or compiled where it compiles).{fallbacks} Pool: {pool:,} "
             f"pairs. Disk, besides the shards and the real world: each run's final checkpoint (the table's column: "
             f"fp32 weights, {WEIGHT_BYTES} B a parameter; `keep_optimizer` triples it) and the resumable one of the run in "
             f"progress (with AdamW's moments, {ADAMW_BYTES} B a parameter: {largest[0] * ADAMW_BYTES / 1e9:.2f} GB "
             f"for the largest model, {largest[1]}).")
    return pd.DataFrame(rows), basis


def profile_disk(profile: str = "gpu") -> dict[str, float]:
    """GB of disk an EmojiWorld profile's chapters fill: `worlds`, the pools of its study world and
    of the data-quality chapter's noisy copies of it, one per noise rate (pairs x px^2 x 3 B; each
    world's evaluation suites add a few percent); `checkpoints`, every run's final one (fp32
    weights, 4 B a parameter; 12 with keep_optimizer); `resumable`, the run in progress's (weights
    and AdamW's moments: 12 B a parameter of the largest tower); and `total`. A run that two
    chapters share (the same config: one folder in the store) is counted once."""
    if profile == "real":
        raise ConfigError("the real profile's data are the user's shards and real world; its checkpoints are "
                          "real_costs()'s column")
    world = from_dict(WorldConfig, get_profile(profile)["study_world"])
    noisy = len(QUALITY[profile].get("noise_rates", [])) if profile in QUALITY else 0
    worlds = (1 + noisy) * world.pairs * world.image_size ** 2 * PIXEL_BYTES / 1e9
    runs = profile_runs(profile, world.pairs)
    quality = runs.pop(PAGES["data_quality"], [])  # trained on noisy worlds' cuts: shared with no other chapter
    shared = {json.dumps(dataclasses.asdict(cfg), sort_keys=True): cfg for cfgs in runs.values() for cfg in cfgs}
    towers = [(tower(cfg, cfg.image_size or world.image_size)[0], cfg.keep_optimizer)
              for cfg in [*shared.values(), *quality]]
    checkpoints = sum(p * (ADAMW_BYTES if keep else WEIGHT_BYTES) for p, keep in towers) / 1e9
    resumable = max(p for p, _ in towers) * ADAMW_BYTES / 1e9
    return {"worlds": worlds, "checkpoints": checkpoints, "resumable": resumable,
            "total": worlds + checkpoints + resumable}
