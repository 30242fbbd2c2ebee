"""A chapter's runs trained into the store ahead of its notebook: over machines (shards) or,
under torchrun, data-parallel over GPUs.

    python -m clipstudy chapter train --name strategies --profile gpu --shard 0/4
    torchrun --nproc_per_node 8 -m clipstudy chapter train --name vit_size --profile gpu

Each run goes through `store.train_or_load`, so the run locks make overlapping shards safe and
the notebook afterwards only loads. The book's "Re-run at scale" page shows the commands.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from clipstudy import distributed
from clipstudy.chapters import PAGES
from clipstudy.config import ConfigError
from clipstudy.quality_chapter import quality_table
from clipstudy.records import RunFailed
from clipstudy.study import chapter, configs, train_all
from clipstudy.worlds import study_world

QUALITY_CHAPTER = "data_quality"  # A2's name for `chapter train`: its runs are cuts (quality_table), not a grid


def train_chapter(profile: str, name: str, world: str = "", runs_dir: str | Path = "data/runs",
                  shard: tuple[int, int] = (0, 1), progress: bool = True) -> list[Path]:
    """Train (or find) shard `i` of `n` of a chapter's runs into the store, each evaluated on the
    chapter's suites, so that its notebook then only loads them: the way to spread a chapter over
    machines (one shard each; the run locks make overlaps safe) or, under torchrun, to train each
    run data-parallel over several GPUs or nodes. Returns the run folders; a failed run is
    reported and skipped (RunFailed is raised at the end, naming them).

    `data_quality` (A2) trains its reference and cuts through `quality_table` with its default
    reference, as its notebook does: one process, one run after another. Its cuts depend on the
    reference's scores, so it has no shards and no torchrun (a ConfigError says so)."""
    i, n = shard
    if not 0 <= i < n:
        raise ConfigError(f"shard={i}/{n} is out of range; use i/n with 0 <= i < n")
    if name not in PAGES:
        raise ConfigError(f"no chapter {name!r}; chapters: {sorted(PAGES)}")
    if name == QUALITY_CHAPTER:
        return _train_quality(profile, world, runs_dir, shard, progress)
    sizes = chapter(profile, name)
    rank, world_size = distributed.setup(sizes.get("train", {}).get("device", "auto"))
    path = study_world(profile, world) if rank == 0 else None
    path = Path(distributed.broadcast(str(path), world_size))  # built once, by rank 0
    cfgs = configs(sizes, path)[i::n]
    desc = f"{name}: runs" + (f", shard {i}/{n}" if n > 1 else "")
    runs, failed = train_all(cfgs, runs_dir, path, progress and rank == 0, sizes.get("suites"), desc=desc)
    done = [r["dir"] for r in runs]
    if failed:
        raise RunFailed(f"{len(failed)} of {len(cfgs)} runs failed:\n" + "\n".join(failed))
    return done


def _train_quality(profile: str, world: str, runs_dir: str | Path, shard: tuple[int, int],
                   progress: bool) -> list[Path]:
    """The data-quality chapter's runs trained (or found) into the store by `quality_table`, in
    this one process: which rows each run trains on is decided by the reference's scores, so the
    chapter cannot be split into shards ahead of time, nor spread over torchrun's processes.
    A run left out (failed, or an invalid folder) is a RunFailed naming it, as other chapters'."""
    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    if tuple(shard) != (0, 1) or ranks > 1:
        how = f"--shard {shard[0]}/{shard[1]}" if tuple(shard) != (0, 1) else f"torchrun ({ranks} processes)"
        raise ConfigError(f"chapter {QUALITY_CHAPTER!r} cannot run with {how}: its cuts depend on the reference "
                          f"model's scores, so it trains as one process (shard 0/1, no torchrun)")
    with warnings.catch_warnings(record=True) as caught:  # run_grid reports runs it left out as a warning
        warnings.simplefilter("always")
        _, table, _ = quality_table(profile, world, runs_dir, progress=progress)
    failed = [str(w.message) for w in caught if "left out of this chapter" in str(w.message)]
    for w in caught:
        if str(w.message) not in failed:  # any other warning, passed on
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if failed:
        raise RunFailed("\n".join(failed))
    return [Path(runs_dir) / run for run in dict.fromkeys(table["run"])] if len(table) else []
