"""What a chapter notebook calls: its sizes, its world, its grid of runs, and tidy tables of them.

    world, table = study.chapter_table(profile, "data_quantity", study_world, runs_dir)  # one call:
    # = sizes = study.chapter(profile, "data_quantity")    the chapter's grid (clipstudy/chapters.py)
    #   world = study.study_world(profile)                   built once under data/worlds/
    #   table = study.tidy(study.run_grid(study.configs(sizes, world), runs_dir, world))
    summary = study.aggregate(table, ["model", "samples"])  # mean, spread and n over seeds

Verdicts on the papers' claims come from clipstudy.verdicts (seed-paired 95% intervals).

Every number a chapter shows comes from `runs.train_or_load` (the result store): a notebook
re-executed with the same profile loads its runs instead of training them again.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from clipstudy.chapters import CHAPTERS
from clipstudy.config import ConfigError, from_dict
from clipstudy.profiles import profile as get_profile
from clipstudy.runs import config_hash, recorded_eval, run_record, train_or_load
from clipstudy.train import TrainConfig

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
    from clipstudy import distributed
    from clipstudy.runs import InvalidRun, RunFailed, config_hash, evaluate_run, run_problem
    from clipstudy.train import train

    i, n = shard
    if not 0 <= i < n:
        raise ConfigError(f"shard={i}/{n} is out of range; use i/n with 0 <= i < n")
    if name == QUALITY_CHAPTER:
        return _train_quality(profile, world, runs_dir, shard, progress)
    sizes = chapter(profile, name)
    rank, world_size = distributed.setup()
    path = study_world(profile, world) if rank == 0 else None
    path = Path(distributed.broadcast(str(path), world_size))  # built once, by rank 0
    cfgs = configs(sizes, path)[i::n]
    done, failed = [], []
    for cfg in tqdm(cfgs, desc=f"{name} runs, shard {i}/{n}", unit="run", disable=not progress or rank > 0):
        run = Path(runs_dir) / f"{cfg.model}-{config_hash(cfg)}"
        try:
            if world_size == 1:
                done.append(train_or_load(cfg, runs_dir, path, progress=False, suites=sizes.get("suites"))["dir"])
                continue
            problem = distributed.broadcast(run_problem(run) if run.exists() else "absent", world_size)
            if problem not in (None, "absent"):
                raise InvalidRun(f"run folder {run} is not a complete run ({problem}); delete it to train it again")
            if problem == "absent":
                train(dataclasses.replace(cfg, out=str(run)), progress=False)
            if rank == 0 and recorded_eval(run, path, sizes.get("suites")) is None:
                evaluate_run(run, path, sizes.get("suites"), progress=False)
            distributed.barrier(world_size)
            done.append(run)
        except (RunFailed, InvalidRun) as e:
            failed.append(f"{run.name}: {e}")
    if failed:
        raise RunFailed(f"{len(failed)} of {len(cfgs)} runs failed:\n" + "\n".join(failed))
    return done


QUALITY_CHAPTER = "data_quality"  # A2's name for `chapter train`: its runs are cuts (quality_table), not a grid


def _train_quality(profile: str, world: str, runs_dir: str | Path, shard: tuple[int, int],
                   progress: bool) -> list[Path]:
    """The data-quality chapter's runs trained (or found) into the store by `quality_table`, in
    this one process: which rows each run trains on is decided by the reference's scores, so the
    chapter cannot be split into shards ahead of time, nor spread over torchrun's processes.
    A run left out (failed, or an invalid folder) is a RunFailed naming it, as other chapters'."""
    from clipstudy.runs import RunFailed

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


REAL_PROFILE = "real"  # the profile whose chapters run on a real world (clipstudy.real.build_real_world)
REAL_WORLD_COMMAND = ("python -m clipstudy world real --out data/worlds/real --pool /data/cc3m/shards --image-size 64 "
                      "--eval id=imagenet1k:/data/imagenet/val --eval probe=imagenet1k:/data/imagenet/train-subset "
                      "--eval shift-imagenet-r=imagenet-r:/data/imagenet-r --eval retrieval=mscoco_captions:/data/coco")


def study_world(profile: str, world: str = "", root: str | Path = "data/worlds", progress: bool = False,
                noise: float = 0.0) -> Path:
    """The world the chapters train and evaluate on: `world` if given, else the profile's study
    world, built once into `<root>/study-<profile>` (rebuilt if the profile's settings changed).
    `noise` > 0: the same world with that share of its pool captions noisy (the data-quality
    chapter's mix, `quality.noise_mix`), in `<root>/study-<profile>-noise<percent>`. The real
    profile has no world to build: it needs `world`, a real world folder."""
    from clipstudy import quality
    from clipstudy.world import WorldConfig, build_world

    if world and not noise:
        return Path(world)
    if world:
        raise ConfigError(f"a noisy variant of a given world ({world}) cannot be built here; build it with "
                          f"`python -m clipstudy world build` and the noise_* options, or leave world empty")
    if profile == REAL_PROFILE:
        raise ConfigError(f"the {REAL_PROFILE} profile needs study_world= a real world folder, built with "
                          f"`{REAL_WORLD_COMMAND}`")
    cfg = from_dict(WorldConfig, {**get_profile(profile)["study_world"], **quality.noise_mix(noise)})
    path = Path(root) / (f"study-{profile}" + (f"-noise{round(100 * noise)}" if noise else ""))
    info = path / "world.json"
    built = json.loads(info.read_text())["config"] if info.is_file() else None
    if built != json.loads(json.dumps(dataclasses.asdict(cfg))):  # tuples -> lists, as world.json holds them
        build_world(cfg, path, overwrite=True, progress=progress)
    return path


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
    from clipstudy import quality

    from clipstudy.chapters import QUALITY

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
        regimes = sizes["regimes"] if rate == sizes.get("noise") else sizes["sweep_regimes"]
        for top in sizes["tops"]:
            keep = quality.top_fraction(score, top, candidates)
            subset = str(quality.save_subset(keep, runs_dir))
            measured = {"kept": float(len(keep))} if labels is None else quality.cut_quality(keep, labels, candidates)
            cuts.append({"noise": rate, "top": top, **measured})
            for regime in regimes:
                samples = len(keep) if regime == "one epoch" else len(candidates)
                for seed in sizes["seeds"]:
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
        run = by_dir.get(str(Path(runs_dir) / f"{cfg.model}-{config_hash(cfg)}"))
        if run is not None:
            rows.append({**cell, **tidy([run]).iloc[0].to_dict()})
    return real or study_world(profile, noise=sizes["noise"]), pd.DataFrame(rows), pd.DataFrame(cuts)


def _points(sizes: dict, pool: int) -> list[dict]:
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
    from clipstudy.data import load_pairs

    points = _points(sizes, len(load_pairs(world)))
    return [from_dict(TrainConfig, {**point, **fixed, "data": str(world), "seed": seed})
            for point, seed in itertools.product(points, sizes["seeds"])]


def run_grid(cfgs: list[TrainConfig], runs_dir: str | Path, world: Path, progress: bool = True,
             suites: list[str] | None = None, retrain: bool = False) -> list[dict]:
    """train_or_load every config, evaluated on `suites` (None = all; a progress bar over runs;
    stored runs load in milliseconds). A run that failed (non-finite loss) or whose folder is
    invalid is reported in a warning and left out, never read as a result; `retrain` trains those again."""
    from clipstudy.runs import InvalidRun, RunFailed

    bar = tqdm(cfgs, desc="runs (train or load)", unit="run", disable=not progress)
    done, bad = [], []
    for cfg in bar:
        try:
            done.append(train_or_load(cfg, runs_dir=runs_dir, world=world, progress=False, suites=suites, retrain=retrain))
        except (RunFailed, InvalidRun) as e:
            bad.append(str(e))
    if bad:
        warnings.warn(f"{len(bad)} of {len(cfgs)} runs left out of this chapter:\n" + "\n".join(bad), stacklevel=2)
    return done


def tidy(runs: list[dict]) -> pd.DataFrame:
    """One row per run: its config axes, cost, and metrics (in %)."""
    rows = []
    for r in runs:
        cfg, s = r["config"]["train"], r["summary"]
        row = {"run": Path(r["dir"]).name, "model": cfg["model"], "strategy": strategy(cfg),
               "augment": cfg.get("augment", "none"), "seed": cfg["seed"], "pool": s["pool_pairs"],
               "samples": s["samples"], "epochs": s["samples"] / s["pool_pairs"], "batch_size": cfg["batch_size"],
               "gflops_per_sample": s["train_gflops_per_sample"], "pflops": s["total_pflops"],
               "image_size": s["image_size"], "train_seconds": s["seconds"]}
        row.update({name: 100 * r["eval"][key] for key, name in METRICS.items() if key in r["eval"]})
        rows.append(row)
    return pd.DataFrame(rows)


def strategy(train: dict) -> str:
    """A run's training strategy as the papers name it, from its config's `train` fields:
    'CLIP', 'SLIP', 'FLIP', 'CLIP+Aug(randaugment)', 'SigLIP+ToMe(r=2)', 'CLIP+text:minilm(locked)', ..."""
    get = lambda key, default=None: train.get(key, default)  # noqa: E731  (runs stored before a field existed)
    slip = get("ssl_scale", 0) > 0
    name = "SLIP" if slip else "SigLIP" if get("loss") == "siglip" else "CLIP"
    if slip and get("loss") == "siglip":
        name += "+SigLIP"
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


def aggregate(table: pd.DataFrame, by: list[str], metrics: list[str] | None = None) -> pd.DataFrame:
    """Mean, standard deviation (0 for n=1), min, max and n over the rows (seeds) of each group."""
    metrics = metrics or [m for m in METRICS.values() if m in table]
    grouped = table.groupby(by, sort=True)
    out = grouped[metrics].agg(["mean", "std", "min", "max"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out = out.fillna({c: 0.0 for c in out.columns if c.endswith("_std")})
    out["n"] = grouped.size()
    out["pflops"] = grouped["pflops"].mean()
    return out.reset_index()


def recorded_runs(runs_dir: str | Path, world: Path) -> list[dict]:
    """Every finished run in the store with a current evaluation on `world` (the compute frontier
    reads them all): the same dicts as train_or_load, without training anything."""
    out = []
    for summary in sorted(Path(runs_dir).glob("*/summary.json")):
        ev = recorded_eval(summary.parent, world, suites=["id"])  # any evaluation that scored zero-shot
        if ev is not None:
            out.append(run_record(summary.parent, ev))
    return out


def difference(table: pd.DataFrame, metric: str, axis: str, lo, hi, by: list[str] | None = None) -> pd.DataFrame:
    """`metric` at axis == hi minus at axis == lo, paired by seed (and by the `by` columns):
    mean, std (0 for n=1) and n of the differences, one row per group."""
    keys = [*(by or []), "seed"]
    a = table[table[axis] == lo].set_index(keys)[metric]
    b = table[table[axis] == hi].set_index(keys)[metric]
    d = (b - a).dropna().rename("diff").reset_index()
    if not by:
        d["all"] = "all"
    out = d.groupby(by or ["all"])["diff"].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    return out.fillna({"std": 0.0}).reset_index()


def pm(mean: float, std: float, n: int) -> str:
    """'3.1 ± 0.4 (n=2)': a number as chapters print it."""
    n = int(n)
    return f"{mean:+.1f} ± {std:.1f} (n={n})" if n > 1 else f"{mean:+.1f} (n=1)"


def scale(profile: str, world: Path, table: pd.DataFrame) -> str:
    """The sentence every chapter opens its results with: at what scale, with how many seeds."""
    from clipstudy.data import load_world_info

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
            f"{n} seed(s) per point; {len(runs)} runs, {runs['train_seconds'].sum() / 60:.1f} minutes of "
            f"training in all. Chance is {chance(world):.1f}% zero-shot top-1.")


CHAPTER_PAGES = {"data_quantity": "10_data_quantity", "vit_size": "20_vit_size", "cnn_vs_vit": "30_cnn_vs_vit",
                 "strategies": "40_strategies", "augmentation": "50_augmentation", "tricks": "60_tricks"}
THROUGHPUT = Path(__file__).parent.parent / "benchmarks" / "results" / "strategies.jsonl"


def throughput(path: str | Path = THROUGHPUT) -> pd.DataFrame:
    """The rows of the last strategies benchmark (benchmarks/strategies.py): strategy, round,
    samples_per_s, with `ratio`, samples/s over CLIP's in the same round."""
    rows = pd.read_json(path, lines=True)
    clip = rows[rows["strategy"] == "CLIP"].set_index("round")["samples_per_s"]
    return rows.assign(ratio=rows["samples_per_s"] / rows["round"].map(clip))


def plan(profile: str, pool: int | None = None) -> str:
    """A markdown table of what each chapter trains at `profile`: towers, pools, samples, seeds,
    runs (the landing page includes it; the runner writes it for the profile it executed).
    `pool`: the study world's training pairs (default: the profile's EmojiWorld's; a real world's
    pool is the user's, so give it at the real profile)."""
    from clipstudy.world import WorldConfig

    pool = pool or from_dict(WorldConfig, get_profile(profile)["study_world"]).pairs
    lines = ["| chapter | image towers | strategies | pools (pairs) | samples seen | seeds | runs |",
             "|---|---|---|---|---|---|---|"]
    for name, by_profile in CHAPTERS.items():
        if profile not in by_profile:
            continue
        sizes = by_profile[profile]
        points = [{**p, "data_limit": p.get("data_limit") or pool} for p in _points(sizes, pool)]
        models = ", ".join(f"`{m}`" for m in dict.fromkeys(p.get("model", "vit-s-8") for p in points))
        pools = ", ".join(f"{v:,}" for v in sorted({p["data_limit"] for p in points}))
        samples = sorted({p["samples"] for p in points})
        strategies = ", ".join(dict.fromkeys(strategy(p) for p in points))
        lines.append(f"| {{doc}}`{CHAPTER_PAGES.get(name, name)}` | {models} | {strategies} | {pools} | {samples[0]:,}-{samples[-1]:,} "
                     f"| {len(sizes['seeds'])} | {len(points) * len(sizes['seeds'])} |")
    from clipstudy.chapters import QUALITY

    if profile in QUALITY:  # cuts of a noisy pool, not a grid of fields
        q = QUALITY[profile]
        candidates = pool - q["reference"]["rows"]
        sweep = max(len(q.get("noise_rates", [])) - 1, 0)  # real data has no noise sweep
        cells = len(q["tops"]) * len(q["regimes"]) + len(q["tops"]) * len(q.get("sweep_regimes", [])) * sweep
        lines.append(f"| {{doc}}`15_data_quality` | `{q['train']['model']}` | CLIP on top 20-100% cuts | "
                     f"{round(min(q['tops']) * candidates):,}-{candidates:,} | {round(min(q['tops']) * candidates):,}-"
                     f"{candidates:,} | {len(q['seeds'])} | {cells * len(q['seeds'])} + a reference |")
    return "\n".join(lines)


def chance(world: Path) -> float:
    """Zero-shot top-1 of a random guess on the world's `id` suite, in %: one over the world's
    classes (a real world's are its `id` set's: ImageNet's 1,000 with only a part of its folders)."""
    from clipstudy.data import load_world_info

    classes = len(load_world_info(world)["classes"]["names"])
    if not classes:
        raise ConfigError(f"{world} has no classification suite, so no zero-shot chance level")
    return 100 / classes


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


REAL_POOL = 2_800_000  # CC3M's pairs, about (2.8M of its 3.3M URLs still resolve): the pool the real costs assume


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


def real_costs(pool: int = REAL_POOL, results_dir: str | Path = "benchmarks/results",
               pages: list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """What each chapter's `real` grid costs on one GPU, estimated from two measurements: the
    H200's training rate for each tower at 64 px (benchmarks/mfu.py's GPU record, data in
    memory; a tower it did not time: their median GFLOP/s over the run's GFLOPs) and one CPU
    process's JPEG decode rate (benchmarks/stream.py) times the run's `data_workers`. Each run
    goes at the slower of the two. -> (one row per chapter page, or per page of `pages`: runs,
    samples seen, train PFLOPs, GPU-hours; a sentence naming the measurements)."""
    import torch

    from clipstudy.chapters import QUALITY
    from clipstudy.train import make_model, make_ssl_head, text_side, train_flops

    results = Path(results_dir)
    gpu = json.loads((results / "mfu-gpu.json").read_text())
    decode = json.loads((results / "stream-cpu.json").read_text())
    gflop_s = {r["model"]: r["achieved_gflop_s"] for r in gpu["rows"] if r["precision"] == "bf16"}
    fallback = float(np.median(list(gflop_s.values())))
    per_process = decode["samples_per_s"]["decode"]
    flops: dict[str, float] = {}

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
        return flops[key]

    grids = {CHAPTER_PAGES[name]: [from_dict(TrainConfig, {**point, "seed": seed})
                                   for point, seed in itertools.product(_points(sizes["real"], pool), sizes["real"]["seeds"])]
             for name, sizes in CHAPTERS.items() if "real" in sizes and (pages is None or CHAPTER_PAGES[name] in pages)}
    if "real" in QUALITY and (pages is None or "15_data_quality" in pages):
        # a reference on the pool's first rows (unless one is given), then each cut of the rest
        q = QUALITY["real"]
        ref, candidates = q["reference"], pool - q["reference"]["rows"]
        if candidates < 1:
            raise ConfigError(f"pool={pool:,} leaves no candidates beside the data-quality reference's "
                              f"{ref['rows']:,} rows; give the pool's real size")
        grids["15_data_quality"] = [from_dict(TrainConfig, {**q["train"], "samples": ref["rows"] * ref["epochs"]})] + [
            from_dict(TrainConfig, {**q["train"], "seed": seed,
                                    "samples": round(top * candidates) if regime == "one epoch" else candidates})
            for top, regime, seed in itertools.product(q["tops"], q["regimes"], q["seeds"])]
    rows = []
    for name, cfgs in sorted(grids.items()):
        hours = samples = pflops = 0.0
        for cfg in cfgs:
            g = train_gflops(cfg)
            rate = min(gflop_s.get(cfg.model, fallback) / g, per_process * max(cfg.data_workers, 1))
            hours += cfg.samples / rate / 3600
            samples += cfg.samples
            pflops += cfg.samples * g / 1e6
        rows.append({"chapter": name, "runs": len(cfgs), "samples seen (M)": round(samples / 1e6, 1),
                     "train PFLOPs": round(pflops, 1), "GPU-hours": round(hours, 1)})
    basis = (f"Measured: the training rate of each tower on an {gpu['machine']} at {gpu['image_size']} px, batch "
             f"{gpu['batch']} (benchmarks/results/mfu-gpu.json); {per_process:,.0f} JPEGs/s decoded and resized to "
             f"{decode['image_size']} px by one process of {decode['machine']} (benchmarks/results/stream-cpu.json). "
             f"Pool: {pool:,} pairs.")
    return pd.DataFrame(rows), basis
