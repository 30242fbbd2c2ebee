"""The sentences and tables a page prints about itself: its scale, its floor, its real-data cost,
and the landing page's plan of every chapter.

    Markdown(prose.scale(profile, world, table))  # "**Scale:** profile `laptop`; world ...; 3 seed(s) per point; ..."
    Markdown(prose.floor_note(table, world))      # how many runs sit at chance
    Markdown(prose.real_line("10_data_quantity")) # what the chapter costs on real data, one GPU
    prose.plan("laptop")                          # a markdown table of what each chapter trains
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipstudy.chapters import CHAPTERS, PAGES, QUALITY, quality_runs
from clipstudy.config import ConfigError, from_dict
from clipstudy.costs import REAL_POOL, real_costs
from clipstudy.data import load_world_info
from clipstudy.profiles import profile as get_profile
from clipstudy.study import grid_points, strategy
from clipstudy.world import WorldConfig
from clipstudy.worlds import chance


def scale(profile: str, world: Path, table: pd.DataFrame) -> str:
    """The sentence every chapter opens its results with: at what scale, with how many seeds."""
    info = load_world_info(world)
    runs = table.drop_duplicates("run")  # a run in two cells of a chapter counts once
    seeds = table.groupby([c for c in ("model", "pool", "samples") if c in table])["seed"].nunique()
    n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    models = ", ".join(f"`{m}`" for m in dict.fromkeys(table["model"]))
    size = info["config"]["image_size"]
    fed = sorted(set(table["image_size"]) - {size}) if "image_size" in table else []
    fed = f", fed to the towers at {', '.join(map(str, fed))} px (resized on the fly)" if fed else ""
    if info.get("kind") == "real":  # its pool is a source it names, counted by the runs
        data = (f"{len(info['classes']['names'])} classes in `id`, training pool `{info['pool']['source']}` "
                f"(runs on up to {table['pool'].max():,} of its pairs), evaluation images at {size} px{fed}")
    else:
        data = f"{info['counts']['classes']} classes, {info['counts']['train']:,} training pairs at {size} px{fed}"
    return (f"**Scale:** profile `{profile}`; world `{world}` ({data}); {models}; "
            f"batch {', '.join(map(str, sorted(table['batch_size'].unique())))}; "
            f"{table['samples'].min():,}-{table['samples'].max():,} samples seen; "
            f"{n} seed(s) per point; {len(runs)} runs in {'/'.join(sorted(runs['precision'].unique()))}, "
            f"{runs['train_seconds'].sum() / 60:.1f} minutes of training summed over runs (runs side by side each "
            f"count their own). Chance is {chance(world):.1f}% zero-shot top-1.")


def recorded_scale(table: pd.DataFrame) -> str:
    """The scale sentence of runs recorded by benchmarks/laws.py (the deeper laptop grids,
    scaling.recorded), or how to record them where none are."""
    if not len(table):
        return ("Not recorded: `.venv/bin/python benchmarks/laws.py` trains the deeper laptop grids (about an hour "
                "on 2 cores) and records their runs in `benchmarks/results/laws-cpu.jsonl`.")
    seeds = table.groupby("config")["seed"].nunique()
    n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    arms = ", ".join(f"`{a}`" for a in dict.fromkeys(table["model"] + " " + table["strategy"]))
    return (f"**Scale (recorded by `benchmarks/laws.py`, not trained by `make book`):** world `{table['world'].iloc[0]}`; "
            f"{arms}; batch {', '.join(map(str, sorted(table['batch_size'].unique())))}; fed at "
            f"{', '.join(map(str, sorted(table['image_size'].unique())))} px; {table['samples'].min():,}-"
            f"{table['samples'].max():,} samples seen; {n} seed(s) per point; {len(table)} runs in "
            f"{'/'.join(sorted(table['precision'].unique()))}, {table['train_seconds'].sum() / 60:.1f} minutes of "
            f"training summed over runs, on {table['machine'].iloc[0]}. Chance is {table['chance'].iloc[0]:.1f}% zero-shot top-1.")


def floor_note(table: pd.DataFrame, world: Path, metric: str = "zero-shot", margin: float = 1.0) -> str:
    """A sentence on how many runs score within `margin` points of chance: a comparison among
    such runs is a floor effect (nothing learned yet), not evidence for or against a claim."""
    c = chance(world)
    near = (table[metric] - c).abs() <= margin
    if not near.any():
        return f"Every run scores more than {margin:g} point above chance ({c:.1f}%)."
    learned = table.loc[~near, "samples"]
    above = f"; the fewest samples that lift a run above it: {learned.min():,}" if len(learned) else ""
    return (f"{near.sum()} of {len(table)} runs score within {margin:g} point of chance ({c:.1f}%) in {metric} top-1"
            f"{above}. Among runs at chance a comparison says nothing learned yet, not that a claim fails.")


def crop_note(damage: pd.DataFrame, summary: pd.DataFrame) -> str:
    """The augmentation page's reading of `crops.caption_damage` (one row per augmentation) beside
    each augmentation's zero-shot change against none on the largest pool (stats.aggregate rows)."""
    pool = summary["pool"].max()
    at = summary[summary["pool"] == pool].set_index("augment")["zero-shot_mean"]
    if "none" not in at:
        return ""
    parts = [f"{name}: {100 * row['named emoji cut']:.0f}% of pairs cut, zero-shot {at[name] - at['none']:+.1f} points"
             for name, row in damage.iterrows() if name != "none" and name in at]
    flipped = damage["relation flipped"].max()
    text = (f"On the {pool:,}-pair pool, against no augmentation: {'; '.join(parts)}. A flip reverses the relation of "
            f"{100 * flipped:.1f}% of captions (those saying left or right). RandAugment crops nothing (its geometric "
            f"ops shift and rotate); crop & flip differs from no augmentation only by its crop and flip, and Stacked "
            f"RandAugment from RandAugment by its crop, colour jitter and grayscale: those gaps bound what the cut "
            f"captions can explain.")
    nocrop, stacked = "stacked_randaugment_nocrop", "stacked_randaugment"
    if nocrop not in at or stacked not in at:
        return text + " The causal check (Stacked RandAugment without its crop and flip) has no runs at this profile."
    harm, crop_part = at["none"] - at[stacked], at[nocrop] - at[stacked]
    share = (f" ({100 * crop_part / harm:.0f}% of it)" if harm > 0 and crop_part > 0 else
             " (none of it: without them it scores no better)" if harm > 0 else "")
    return (text + f" The causal check trains Stacked RandAugment without its crop and flip: on this pool it scores "
            f"{at[nocrop] - at['none']:+.1f} points against none and {crop_part:+.1f} against Stacked RandAugment, so "
            f"the crop and flip account for {crop_part:+.1f} of Stacked RandAugment's {-harm:+.1f}{share} in the seed "
            f"means; the verdict row (crops) below tests it on every pool, paired by seed.")


def frontier_note(points: pd.DataFrame, kind: str = "run kind") -> str:
    """The frontier of verdicts.frontier_points in words: each configuration on it, in order of
    compute, with its error and interval, and the error it saves over the one before (paired by
    seed); then how many configurations lean on pre-training compute we do not count."""
    env = points[points["on_frontier"]]
    lines = ["| compute (PFLOPs) | configuration | zero-shot error (%) | error saved over the point before |",
             "|---|---|---|---|"]
    for r in env.to_dict("records"):
        saved = ("–" if pd.isna(r["gain"]) else
                 f"{r['gain']:+.1f} [{r['gain_low']:+.1f}, {r['gain_high']:+.1f}]"
                 + (" (within noise)" if r["gain_low"] <= 0 else ""))
        lines.append(f"| {r['compute']:.3g} | {r[kind]}, {r['samples']:,} samples of {r['pool']:,} pairs at "
                     f"{r['image_size']} px | {r['error']:.1f} "
                     f"[{r['low']:.1f}, {r['high']:.1f}], n={r['n']} | {saved} |")
    uncounted = points[points["uncounted"] != ""]
    tail = (f"\n\n{len(uncounted)} of {len(points)} configurations use a pre-trained text tower whose "
            f"pre-training is not ours to count (open markers); the SimCLR image towers' pre-training is "
            f"counted in their compute." if len(uncounted) else "")
    return "\n".join(lines) + tail


def real_line(page: str, pool: int = REAL_POOL, results_dir: str | Path = "benchmarks/results") -> str:
    """The sentence a chapter page ends with: what its `real` grid trains and costs on one GPU."""
    costs, _ = real_costs(pool, results_dir, pages=[page])
    if costs.empty:
        raise ConfigError(f"page {page!r} has no real sizes; pages that do: {sorted(real_costs(pool, results_dir)[0]['chapter'])}")
    row = costs.iloc[0]
    return (f"**At the `real` profile** (your shards and ImageNet-style evaluation sets; grid in "
            f"`clipstudy/chapters.py`): {row['runs']} runs, {row['samples seen (M)']:.1f}M samples seen at a pool "
            f"of {pool:,} pairs, about {row['GPU-hours']:.1f} hours on one GPU, estimated from measured rates; "
            f"how to run it: {{doc}}`95_real_data`.")


def plan(profile: str, pool: int | None = None) -> str:
    """A markdown table of what each chapter trains at `profile`: towers, pools, samples, seeds,
    runs (the landing page includes it; the runner writes it for the profile it executed).
    `pool`: the study world's training pairs (default: the profile's EmojiWorld's; a real world's
    pool is the user's, so give it at the real profile)."""
    pool = pool or from_dict(WorldConfig, get_profile(profile)["study_world"]).pairs
    lines = ["| chapter | image towers | strategies | pools (pairs) | samples seen | seeds | runs |",
             "|---|---|---|---|---|---|---|"]
    for name, by_profile in CHAPTERS.items():
        if profile not in by_profile:
            continue
        sizes = by_profile[profile]
        points = [{**p, "data_limit": p.get("data_limit") or pool} for p in grid_points(sizes, pool)]
        models = ", ".join(f"`{m}`" for m in dict.fromkeys(p.get("model", "vit-s-8") for p in points))
        pools = ", ".join(f"{v:,}" for v in sorted({p["data_limit"] for p in points}))
        samples = sorted({p["samples"] for p in points})
        strategies = ", ".join(dict.fromkeys(strategy(p) for p in points))
        lines.append(f"| {{doc}}`{PAGES[name]}` | {models} | {strategies} | {pools} | {samples[0]:,}-{samples[-1]:,} "
                     f"| {len(sizes['seeds'])} | {len(points) * len(sizes['seeds'])} |")
    if profile in QUALITY:  # cuts of a noisy pool, not a grid of fields
        q = QUALITY[profile]
        runs = quality_runs(q, pool)[1:]  # the reference apart
        samples = sorted({r["samples"] for r in runs})
        seeds = f"{len(q['seeds'])}" + (f" ({len(q['sweep_seeds'])} in the noise sweep)" if "sweep_seeds" in q else "")
        lines.append(f"| {{doc}}`15_data_quality` | `{q['train']['model']}` | CLIP on top 20-100% cuts | "
                     f"{samples[0]:,}-{pool - q['reference']['rows']:,} | {samples[0]:,}-{samples[-1]:,} | {seeds} "
                     f"| {len(runs)} + a reference |")
    return "\n".join(lines)
