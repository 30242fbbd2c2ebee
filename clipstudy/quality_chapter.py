"""The data-quality chapter (A2): a reference CLIP scores noisy pools, their top fractions are cut
and trained on, and each cut is measured against the ground-truth noise.

    world, table, cuts = quality_chapter.quality_table("laptop")   # what notebooks/15 shows
    quality_chapter.best_cuts(table, "one epoch")                  # zero-shot by noise rate and cut
    quality_chapter.reference_note("laptop")                       # which reference, how noisy the pool

The cut machinery (scores, top fractions, noise labels) is clipstudy/quality.py's; the grid's
sizes are `chapters.QUALITY`, its runs counted before any score by `chapters.quality_runs`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipstudy import quality
from clipstudy.chapters import QUALITY, quality_regimes, quality_seeds
from clipstudy.config import ConfigError, from_dict
from clipstudy.profiles import profile as get_profile
from clipstudy.store import run_dir, train_or_load
from clipstudy.study import run_grid, tidy
from clipstudy.train import TrainConfig
from clipstudy.worlds import REAL_PROFILE, study_world


def quality_table(profile: str, world: str = "", runs_dir: str | Path = "data/runs",
                  progress: bool = False, reference: str = "") -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """The data-quality chapter (A2): a reference CLIP scores the noisy worlds' pools, and the
    candidates are cut to their top fractions and trained on (one epoch of the cut, or as many
    samples as the whole candidate pool). The reference is, by default, one trained on the clean
    study world's first `reference.rows` pairs, whose rows the candidates then exclude; or
    `reference` (`quality.parse_reference`: a run folder or `open_clip:<model>:<checkpoint file or
    pretrained tag>`), taken to have never seen the pool, so every pair is a candidate. Scores of an
    open_clip reference are cached in `<runs_dir>/scores/`. -> (the main noisy world, tidy runs with
    `noise`, `top`, `regime` columns, the cuts' precision and recall against the ground-truth noise
    labels).

    At the real profile `world` is a real world (required): its pool as it is is the one set of
    candidates, the reference's rows left out. Real data has no ground-truth noise labels, so the
    `noise` columns are None, the cuts table holds only `noise`, `top` and `kept`, and there is no
    noise sweep."""
    get_profile(profile)  # an unknown profile names the valid ones
    if profile not in QUALITY:
        raise ConfigError(f"the data-quality chapter has no sizes for profile {profile!r}; it has {sorted(QUALITY)}")
    sizes = QUALITY[profile]
    # a real world's pool is cut as it is; none given: a ConfigError saying how to build one
    real = study_world(profile, world) if profile == REAL_PROFILE else None
    if reference:
        quality.parse_reference(reference)  # a bad one fails here, before any world is built
        first = 0
    else:
        clean = study_world(profile, world)
        ref = sizes["reference"]
        ref_cfg = from_dict(TrainConfig, {**sizes["train"], "data": str(clean), "data_limit": ref["rows"],
                                          "samples": ref["rows"] * ref["epochs"], "seed": 0})
        reference = train_or_load(ref_cfg, runs_dir=runs_dir, world=clean, progress=False, suites=["id"])["dir"]
        first = ref["rows"]  # the reference saw the first rows' images: they are no candidates
    cfgs, cells, cuts = [], [], []
    for rate in sizes.get("noise_rates", [None]):  # None: the real pool, whose noise is unknown
        noisy = real or study_world(profile, noise=rate, progress=progress)
        score = quality.scores(reference, noisy, progress=progress, cache_dir=Path(runs_dir) / quality.SCORES)
        if len(score) <= first:
            raise ConfigError(f"the pool of {noisy} holds {len(score):,} pairs and the reference trained on the first "
                              f"{first:,}, so no pair is left to cut; give a larger pool or a reference= of your own")
        candidates = np.arange(first, len(score))  # the reference never saw these images
        labels = None if real else quality.noise_labels(noisy)  # real data has no ground truth
        for top in sizes["tops"]:
            keep = quality.top_fraction(score, top, candidates)
            subset = str(quality.save_subset(keep, runs_dir))
            measured = {"kept": float(len(keep))} if labels is None else quality.cut_quality(keep, labels, candidates)
            cuts.append({"noise": rate, "top": top, **measured})
            for regime in quality_regimes(sizes, rate):
                samples = len(keep) if regime == "one epoch" else len(candidates)
                for seed in quality_seeds(sizes, rate):
                    cfgs.append(from_dict(TrainConfig, {**sizes["train"], "data": str(noisy), "data_subset": subset,
                                                        "samples": samples, "seed": seed}))
                    cells.append({"noise": rate, "top": top, "regime": regime})
    main = [cell["noise"] == sizes.get("noise") for cell in cells]  # the sweep's runs may be scored on fewer suites
    runs = run_grid([c for c, m in zip(cfgs, main) if m], runs_dir, None, progress=progress, suites=sizes.get("suites"))
    runs += run_grid([c for c, m in zip(cfgs, main) if not m], runs_dir, None, progress=progress,
                     suites=sizes.get("sweep_suites", sizes.get("suites")))
    by_dir = {str(r["dir"]): r for r in runs}
    rows = []
    for cfg, cell in zip(cfgs, cells):  # a run in two cells (the whole pool: one epoch = equal samples) is in both
        run = by_dir.get(str(run_dir(cfg, runs_dir)))
        if run is not None:
            rows.append({**cell, **tidy([run]).iloc[0].to_dict()})
    return real or study_world(profile, noise=sizes["noise"]), pd.DataFrame(rows), pd.DataFrame(cuts)


def main_rate(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The runs the chapter's claims read: those at the profile's main noise rate (on a real pool,
    whose noise is unknown, every run); the sweep's other rates feed a figure only."""
    noise = QUALITY[profile].get("noise")
    return table if noise is None else table[table["noise"] == noise]


def best_cuts(table: pd.DataFrame, regime: str, metric: str = "zero-shot") -> pd.DataFrame:
    """Mean `metric` over seeds of each noise rate (rows) and cut (columns: top %), in `regime`,
    with the best cut of each rate: where the best cut lies as the noise rate changes."""
    runs = table[table["regime"] == regime]
    by_rate = runs.groupby(["noise", (100 * runs["top"]).round().astype(int).rename("top %")])[metric].mean()
    by_rate = by_rate.unstack("top %").round(1)
    by_rate["best cut (top %)"] = by_rate.idxmax(axis=1)
    return by_rate


def reference_note(profile: str, reference: str = "") -> str:
    """What the page says of its reference and candidates: which reference scored the pool, and
    how noisy the candidates are (unknown on real data)."""
    sizes = QUALITY[profile]
    noise, ref = sizes.get("noise"), sizes["reference"]  # noise None at real: a real pool's noise is unknown
    seen = f"{ref['rows']:,} clean pairs" if noise is not None else f"the pool's first {ref['rows']:,} pairs"
    about = (f"The reference is `{reference}`, which never saw the pool: every pair is a candidate" if reference else
             f"The reference CLIP trained on {seen} for {ref['epochs']} epochs; the candidates are the other pairs")
    mix = f"{round(100 * noise)}% of them noisy on this page's main world" if noise is not None else "their noise unknown (real data)"
    return f"{about}, {mix}."
