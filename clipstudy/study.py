"""A chapter's grid -> its runs (trained or loaded from the store) -> a tidy table, one row per run.

    world, table = study.chapter_table(profile, "data_quantity", study_world, runs_dir)  # one call:
    # = sizes = study.chapter(profile, "data_quantity")    the chapter's grid (clipstudy/chapters.py)
    #   world = worlds.study_world(profile)                  built once under data/worlds/
    #   table = study.tidy(study.run_grid(study.configs(sizes, world), runs_dir, world))

A tidy table has the run's config axes (model, strategy fields, seed, pool, samples, epochs),
its cost and its metrics in % (`METRICS`' short names). Statistics over seeds are
clipstudy/stats.py's, verdicts on the papers' claims clipstudy/verdicts.py's, the sentences a
page prints clipstudy/prose.py's. Every number comes from `store.train_or_load`: a notebook
re-executed with the same profile loads its runs instead of training them again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.optimize import nnls
from tqdm.auto import tqdm

from clipstudy.chapters import CHAPTERS
from clipstudy.compute import parallelism
from clipstudy.config import ConfigError, from_dict, to_dict
from clipstudy.data import DataError, load_pairs, load_world_info
from clipstudy.losses import make_ssl_head
from clipstudy.profiles import profile as get_profile
from clipstudy.records import InvalidRun, RunFailed
from clipstudy.store import run_dir, train_or_load
from clipstudy.train import TrainConfig, make_model, text_side, train_flops
from clipstudy.world.classes import load_classes
from clipstudy.worlds import study_world

# metric keys of evaluate_world -> the short names chapters use (values in %)
METRICS = {"id/top1": "zero-shot", "shift_mean/top1": "shifts", "id/coarse_top1": "coarse",
           "probe/5shot_top1": "5-shot", "probe/10shot_top1": "10-shot", "probe/linear_top1": "linear probe",
           "retrieval/i2t_r1": "i2t R@1", "retrieval/t2i_r1": "t2i R@1", "fit/gap": "fit gap"}


def chapter(profile: str, name: str) -> dict:
    """One chapter's grid at a profile (clipstudy/chapters.py)."""
    get_profile(profile)  # an unknown profile names the valid ones
    if name not in CHAPTERS:
        raise ConfigError(f"no chapter {name!r}; chapters: {sorted(CHAPTERS)}")
    if profile not in CHAPTERS[name]:
        raise ConfigError(f"chapter {name!r} has no sizes for profile {profile!r}; it has {sorted(CHAPTERS[name])}")
    return CHAPTERS[name][profile]


def chapter_table(profile: str, name: str, world: str = "", runs_dir: str | Path = "data/runs",
                  progress: bool = False) -> tuple[Path, pd.DataFrame]:
    """The chapter's world and its tidy table of runs (trained or loaded): a chapter's first call."""
    sizes = chapter(profile, name)
    path = study_world(profile, world)
    return path, tidy(run_grid(configs(sizes, path), runs_dir, path, progress=progress, suites=sizes.get("suites")))


def page_run(profile: str, world: str) -> TrainConfig:
    """The EmojiWorld page's one run. Where the profile names a chapter (`page_run`, smoke and
    laptop): that chapter's run with the most samples, seed 0, on the study world; the page
    trains it first and the chapter then loads it, so the page costs no run of its own. Else
    (gpu, real): the profile's `train` fields on `world`."""
    prof = get_profile(profile)
    if "page_run" not in prof:
        return from_dict(TrainConfig, {**prof["train"], "data": world})
    sizes = chapter(profile, prof["page_run"])
    seed0 = [c for c in configs(sizes, study_world(profile)) if c.seed == sizes["seeds"][0]]
    return max(seed0, key=lambda c: c.samples)


_TOWERS: dict[str, tuple[int, float]] = {}  # structure of a run's model -> (parameters, train GFLOPs a sample)


def tower(cfg: TrainConfig, image_size: int) -> tuple[int, float]:
    """(parameters, train GFLOPs per sample) of the model `cfg` trains at `image_size` px: its
    structure only (no pre-training, no data). A word vocabulary is fitted to the class table's
    names: a built world's adds its caption grammar's ~150 words, a negligible share of the weights."""
    structure = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("seed", "samples", "data_limit")}
    key = json.dumps({**structure, "image_size": image_size}, sort_keys=True)
    if key not in _TOWERS:
        bare = dataclasses.replace(cfg, pretrained_image="", data="")  # data="": no world's vocabulary read from disk
        tokenizer, overrides = text_side(bare, [c.name for c in load_classes()] if cfg.vocab == "world" else [])
        if cfg.patch_dropout:
            overrides["patch_dropout"] = cfg.patch_dropout
        model = make_model(bare, image_size, overrides, torch.device("cpu"))
        head = make_ssl_head(cfg) if cfg.ssl_scale else None
        _TOWERS[key] = (sum(p.numel() for p in model.parameters()),
                        train_flops(cfg, model, head, image_size, tokenizer.context_length)["train_gflops"])
    return _TOWERS[key]


def grid_points(sizes: dict, pool: int) -> list[dict]:
    """The config fields of each grid point (`train` under the point), `epochs` turned into
    `samples` of the point's pool (`data_limit`, else the whole pool of `pool` pairs)."""
    points = []
    for point in sizes["grid"]:
        fields = {**sizes.get("train", {}), **point}
        if "epochs" in fields:
            fields["samples"] = int(fields.pop("epochs") * (fields.get("data_limit") or pool))
        points.append(fields)
    return points


def configs(sizes: dict, world: Path, **fixed) -> list[TrainConfig]:
    """One TrainConfig per point of a chapter's grid and seed. `sizes` holds `train` (fields shared
    by every run), `grid` (a list of dicts of fields, one per point) and `seeds`; `samples` may be
    given as `epochs` (of the point's pool: `data_limit`, else the whole pool)."""
    points = grid_points(sizes, len(load_pairs(world)))
    return [from_dict(TrainConfig, {**point, **fixed, "data": str(world), "seed": seed})
            for point, seed in itertools.product(points, sizes["seeds"])]


def run_grid(cfgs: list[TrainConfig], runs_dir: str | Path, world: Path, progress: bool = True,
             suites: list[str] | None = None, retrain: bool = False) -> list[dict]:
    """train_or_load every config (`train_all`), evaluated on `suites` (None = all); a run that
    failed (non-finite loss) or whose folder is invalid is reported in a warning and left out,
    never read as a result; `retrain` trains those again. Records in the order of `cfgs`."""
    runs, bad = train_all(cfgs, runs_dir, world, progress, suites, retrain)
    if bad:
        warnings.warn(f"{len(bad)} of {len(cfgs)} runs left out of this chapter:\n" + "\n".join(bad), stacklevel=2)
    return runs


def train_all(cfgs: list[TrainConfig], runs_dir: str | Path, world: Path | None, progress: bool = True,
              suites: list[str] | None = None, retrain: bool = False, workers: int | None = None,
              desc: str = "runs (train or load)") -> tuple[list[dict], list[str]]:
    """train_or_load every config, evaluated on `suites` (None = all), with a bar over runs (its
    time left: the runs still to train priced from those finished, `time_left`; stored runs load in milliseconds). Runs not
    yet stored train side by side in `workers` processes (None: `compute.parallelism`'s choice
    for this machine's cores), the costliest first, each on its share of the threads; the store's per-run locks keep
    two processes off one run; under torchrun every rank takes the runs one after another. -> (the records, in the order of `cfgs`, of the runs that
    succeeded; why each other run was left out: a failed or invalid run)."""
    if not cfgs:
        return [], []
    todo = [i for i, c in enumerate(cfgs) if retrain or not (run_dir(c, runs_dir) / "summary.json").is_file()]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun: each run data-parallel, one after another
        workers = threads = 1
    elif workers is None:
        workers, threads = parallelism(len(todo))
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
    side_by_side = workers > 1 and len(todo) > 1
    costs = dict(zip(todo, run_costs([cfgs[i] for i in todo]) or [])) if len(todo) > 1 and (side_by_side or progress) else {}
    bar = tqdm(total=len(cfgs), desc=desc, unit="run", disable=not progress,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]" if costs else None)
    records: dict[int, dict | str] = {}  # a run's record, or why it was left out
    timed: list[tuple[float, float]] = []  # (cost, seconds) of each run trained so far

    def finished(i: int, outcome: tuple[float, dict | str]) -> None:
        seconds, records[i] = outcome
        bar.update()
        if i in costs:
            timed.append((costs[i], seconds))
            left = time_left(timed, [costs[j] for j in costs if j not in records], workers if side_by_side else 1)
            bar.set_postfix_str("" if not left else
                                f"~{left / 60:.0f} min left by cost" if left >= 60 else f"~{left:.0f} s left by cost")

    if side_by_side:
        # the costliest first: in grid order a chapter's longest runs came last and one trained
        # alone while the other cores sat idle; costliest first, the short runs fill in the end
        todo.sort(key=lambda i: -costs.get(i, 0))
        spawn = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools mid-use
        with ProcessPoolExecutor(workers, mp_context=spawn, initializer=torch.set_num_threads,
                                 initargs=(threads,)) as pool:
            jobs = {pool.submit(_train_or_load_one, cfgs[i], runs_dir, world, suites, retrain): i for i in todo}
            for job in as_completed(jobs):
                finished(jobs[job], job.result())
    for i, cfg in enumerate(cfgs):  # the stored runs, or all in the grid's order (every torchrun rank alike)
        if i not in records:
            finished(i, _train_or_load_one(cfg, runs_dir, world, suites, retrain))
    bar.close()
    ordered = [records[i] for i in range(len(cfgs))]
    return [r for r in ordered if not isinstance(r, str)], [r for r in ordered if isinstance(r, str)]


def run_costs(cfgs: list[TrainConfig]) -> list[float] | None:
    """Each config's training cost in GFLOPs: samples x training GFLOPs per sample (`tower`); None
    where an image size cannot be read (a world folder without world.json). What orders the runs
    side by side and estimates the time left."""
    try:
        sizes = {c.data: c.image_size or load_world_info(c.data)["config"]["image_size"] for c in cfgs}
    except (DataError, OSError, KeyError):
        return None
    return [c.samples * tower(c, c.image_size or sizes[c.data])[1] for c in cfgs]


def time_left(timed: list[tuple[float, float]], pending: list[float], workers: int) -> float | None:
    """Seconds until the `pending` runs (their training costs, `run_costs`) are done, `workers` side
    by side: each priced by a line through the finished runs' (cost, seconds), fitted with
    non-negative slope and intercept, whose slope pays for training and intercept for what every
    run pays whatever its size (start-up, evaluation). A pace of runs misleads when the costliest
    come first, and a pace of cost alone reads short as the small runs, mostly overhead, come last.
    While the finished runs share one cost, the intercept is taken as 0. None before any run ends."""
    if not timed:
        return None
    cost, seconds = (np.asarray(v, dtype=float) for v in zip(*timed))
    if np.ptp(cost) > 0:
        (slope, intercept), _ = nnls(np.stack([cost, np.ones_like(cost)], 1), seconds)
    else:
        slope, intercept = seconds.sum() / max(cost.sum(), 1e-12), 0.0
    each = [slope * c + intercept for c in pending]
    return max(sum(each) / max(workers, 1), max(each, default=0.0))


def _train_or_load_one(cfg: TrainConfig, runs_dir: str | Path, world: Path, suites: list[str] | None,
                       retrain: bool) -> tuple[float, dict | str]:
    """(seconds it took, one run's record or why it was left out: a string): run_grid's unit of
    work, in this process or a worker's."""
    start = time.perf_counter()
    try:
        outcome = train_or_load(cfg, runs_dir=runs_dir, world=world, progress=False, suites=suites, retrain=retrain)
    except (RunFailed, InvalidRun) as e:
        outcome = f"{run_dir(cfg, runs_dir).name}: {e}"
    return time.perf_counter() - start, outcome


def tidy(runs: list[dict]) -> pd.DataFrame:
    """One row per run: its config axes (`config`: a key shared by the runs that differ only in
    seed), cost, and metrics (in %). Cost: `pflops` of its training,
    `pretrain_pflops` of the SimCLR pre-training its image tower needed (NaN for a run stored
    before it was recorded), and `uncounted`, the pre-training compute that is not ours to count
    (a downloaded text tower's)."""
    rows = []
    for r in runs:
        cfg, s = r["config"]["train"], r["summary"]
        same = json.dumps({k: v for k, v in cfg.items() if k not in ("seed", "out")}, sort_keys=True)
        row = {"run": Path(r["dir"]).name, "config": hashlib.sha256(same.encode()).hexdigest()[:12],
               "model": cfg["model"], "strategy": strategy(cfg),
               **{k: cfg.get(k, STRATEGY_DEFAULTS[k]) for k in STRATEGY_FIELDS}, "seed": cfg["seed"], "pool": s["pool_pairs"],
               "samples": s["samples"], "epochs": s["samples"] / s["pool_pairs"], "batch_size": cfg["batch_size"],
               "gflops_per_sample": s["train_gflops_per_sample"], "pflops": s["total_pflops"],
               "pretrain_pflops": s.get("pretrain_pflops", math.nan if cfg.get("pretrained_image") else 0.0),
               "uncounted": f"{cfg['pretrained_text']}'s pre-training" if cfg.get("pretrained_text") else "",
               "image_size": s["image_size"], "precision": s.get("precision", "fp32"), "train_seconds": s["seconds"]}
        row.update({name: 100 * r["eval"][key] for key, name in METRICS.items() if key in r["eval"]})
        rows.append(row)
    return pd.DataFrame(rows)


# The TrainConfig fields that make a training strategy (clipstudy/chapters.py names each mix of
# them: CLIP, SLIP, FLIP, ...): tidy tables carry them, and claims pick their cells by them.
STRATEGY_FIELDS = ("loss", "patch_dropout", "tome_r", "tome_schedule", "ssl_scale", "augment",
                   "pretrained_image", "pretrained_text", "lock_image", "lock_text", "logit_bias")
STRATEGY_DEFAULTS = {k: v for k, v in to_dict(TrainConfig()).items() if k in STRATEGY_FIELDS}


def arm(fields: dict) -> dict:
    """Every strategy field of a run trained with `fields` (a strategy of clipstudy/chapters.py,
    e.g. `chapters.SLIP`), the others at their defaults: the cell of a tidy table that holds
    that strategy's runs, picked by config, not by its display name."""
    unknown = set(fields) - set(STRATEGY_FIELDS)
    if unknown:
        raise ConfigError(f"{sorted(unknown)} are not strategy fields; they are {list(STRATEGY_FIELDS)}")
    return {**STRATEGY_DEFAULTS, **fields}


def strategy(train: dict) -> str:
    """A run's training strategy as the papers name it, from its config's `train` fields:
    'CLIP', 'SLIP', 'FLIP', 'CLIP+Aug(randaugment)', 'SigLIP+ToMe(r=2)', 'CLIP+text:minilm(locked)', ..."""
    get = lambda key, default=None: train.get(key, default)  # noqa: E731  (runs stored before a field existed)
    slip = get("ssl_scale", 0) > 0
    name = "SLIP" if slip else "SigLIP" if get("loss") == "siglip" else "CLIP"
    if slip and get("loss") == "siglip":
        name += "+SigLIP"
    if get("logit_bias", -10.0) != -10.0:
        name += f"(bias from {get('logit_bias'):g})"
    parts = [name]
    if get("patch_dropout", 0):
        parts.append("FLIP" if get("patch_dropout") == 0.5 else f"FLIP({get('patch_dropout'):g})")
    if get("tome_r", 0):
        parts.append(f"ToMe(r={get('tome_r')}{', decreasing' if get('tome_schedule') == 'decreasing' else ''})")
    if parts[0] == "CLIP" and len(parts) > 1:  # FLIP is CLIP with patch dropout; ToMe, CLIP with merging
        parts = parts[1:]
    if get("augment", "none") != "none" and not (slip and get("augment") == "crop_flip"):
        parts.append(f"Aug({get('augment')})")
    for tower in ("image", "text"):
        if get(f"pretrained_{tower}"):
            parts.append(f"{tower}:{get(f'pretrained_{tower}')}" + ("(locked)" if get(f"lock_{tower}") else ""))
    return "+".join(parts)
