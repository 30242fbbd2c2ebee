"""What makes a tiny CLIP learn: the calibration screen of the laptop study world, as data.

    .venv/bin/python benchmarks/calibrate.py                     # every lever, 1 seed, 3 budgets
    .venv/bin/python benchmarks/calibrate.py --levers "temperature 0.03" --budgets 16384,65536

Each lever is one row: a change of world (WorldConfig fields), of recipe (TrainConfig fields) or
of zero-shot prompts, on top of the row it names as its `base`. The `path` rows are cumulative
(issue-4 recipe -> today's reference recipe); the `side` rows each try one more change on the
last path row (one seed each; none was adopted into the reference). Every
(lever, budget, seed) is one run of the result store (`store.train_or_load`), so a re-run of the
screen trains only what is missing; `benchmarks/calibrate.py` appends one JSON line per run to
`benchmarks/results/calibration.jsonl`, which the book's calibration page reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd

from clipstudy import verdicts
from clipstudy.chapters import LAPTOP_TRAIN
from clipstudy.config import from_dict
from clipstudy.profiles import PROFILES
from clipstudy.world import WorldConfig, build_world

# The laptop study world as the screen ran on it (100 classes, 32,768 pairs at 32 px; 10,000-image
# suites, where the chapters' world now has 3,000 in id and 1,000 in each shift: the same training
# pool, the evaluation sized to the seed spread) and the chapters' laptop recipe with the
# data-quantity chapter's tower; the levers change them.
STUDY_WORLD = {**{k: v for k, v in PROFILES["laptop"]["study_world"].items() if k != "shift_per_class"},
               "eval_per_class": 100}
BASE_TRAIN = {**LAPTOP_TRAIN, "model": "vit-ti-8", "lr": 1e-3, "curve_every": 4_096}
BUDGETS = [16_384, 65_536, 262_144]

LEVERS: dict[str, dict] = {
    # ---- the path: each row adds one change to the row before ----
    "issue-4 recipe": {"kind": "path", "base": None, "prompts": "clip",
                       "world": {"p_background": 0.75}, "train": {"vocab": "bpe", "context_length": 32},
                       "why": "the world and recipe the chapters ran on before calibration"},
    "background named in 25%": {"kind": "path", "base": "issue-4 recipe", "world": {"p_background": 0.25},
                                "why": "a background named in most captions lets a batch be matched by colour and texture alone"},
    "prompts in the grammar's forms": {"kind": "path", "base": "background named in 25%", "prompts": "world",
                                       "why": "zero-shot prompts worded as the training captions are"},
    "word vocabulary + 16 tokens": {"kind": "path", "base": "prompts in the grammar's forms",
                                   "train": {"vocab": "world", "context_length": 16},
                                   "budgets": [16_384, 32_768, 65_536, 262_144],
                                   "why": "a token per word of the world (~300) instead of 49k BPE; paper A's 16-token text"},
    # ---- side rows: one more change each, on the last path row ----
    "temperature 0.03": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"temperature": 0.03},
                         "why": "the learnable logit scale barely moves in a few hundred AdamW steps"},
    "lr 2e-3": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"lr": 2e-3},
                "why": "more steps' worth of progress per sample"},
    "batch 128": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"batch_size": 128},
                  "why": "more negatives per step, half the steps"},
    "batch 32": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"batch_size": 32, "warmup": 512},
                 "why": "twice the steps, fewer negatives"},
    "two training styles": {"kind": "side", "base": "word vocabulary + 16 tokens",
                            "world": {"train_styles": ["twemoji", "openmoji"],
                                      "shift_styles": [s for s in STUDY_WORLD["shift_styles"] if s != "openmoji"]},
                            "why": "a pool mixing two artists, as web data mixes renditions: can shifts show?"},
    "at most 2 emoji a scene": {"kind": "side", "base": "word vocabulary + 16 tokens", "world": {"max_objects": 2},
                                "why": "more single-emoji scenes: larger sprites, one name per caption more often",
                                "note": "three seeds agree, so it is not one stalled run; no world bug found: its "
                                        "zero-shot, probe and shift suites, class names and prompts are the base "
                                        "world's own (built from their own streams), and its captions match their "
                                        "images. Why it learns so slowly is open; a candidate: with half the scenes "
                                        "single-emoji, a batch of 64 holds about twice as many pairs of the same "
                                        "content, which the contrastive loss pushes apart"},
    "48 px images": {"kind": "side", "base": "word vocabulary + 16 tokens", "world": {"image_size": 48},
                     "why": "sprites 1.5x larger (a 0.3-scale emoji is 14 px, not 10); 2.25x the image tokens (time: the train s column)"},
    "64 px images": {"kind": "side", "base": "word vocabulary + 16 tokens", "world": {"image_size": 64},
                     "why": "sprites twice as large; the size every tower family accepts (rn50 needs a multiple of 32)"},
    "lr 5e-4": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"lr": 5e-4},
                "why": "lr 2e-3 collapsed: is 1e-3 at the edge, so that half of it is steadier across seeds?"},
    "2k pool x 16 epochs": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"data_limit": 2_048},
                           "budgets": [32_768], "check": "fit/gap",
                           "why": "small pools overfit: the train-vs-held-out gap against the whole pool at the same 32k samples"},
    "rn50 tower": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"model": "rn50"},
                   "budgets": [32_768], "why": "the CNN chapter's ResNet: at 32 px its last stage sees a 1x1 map"},
    "rn50 fed 64 px": {"kind": "side", "base": "rn50 tower", "train": {"image_size": 64}, "budgets": [32_768],
                       "why": "the same 32 px pool upsampled to 64 px: a 2x2 last stage, no new pixels, ~3.7x the image FLOPs"},
    "vit-b-16 tower": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"model": "vit-b-16"},
                       "budgets": [32_768], "why": "the CNN chapter's ViT: at 32 px it sees 2x2 patches"},
    "vit-b-16 fed 64 px": {"kind": "side", "base": "vit-b-16 tower", "train": {"image_size": 64}, "budgets": [32_768],
                           "why": "4x4 patches of the upsampled pool, ~3.4x the FLOPs"},
    "mixer-b-16 fed 64 px": {"kind": "side", "base": "word vocabulary + 16 tokens",
                             "train": {"model": "mixer-b-16", "image_size": 64}, "budgets": [24_576],
                             "why": "the CNN chapter's Mixer as the other towers train it: does it learn at lr 1e-3?"},
    "mixer-b-16 fed 64 px at lr 3e-4": {"kind": "side", "base": "mixer-b-16 fed 64 px", "train": {"lr": 3e-4},
                                      "budgets": [24_576],
                                      "why": "a third of the lr: does the Mixer learn with gentler steps?"},
    "overfit 128 pairs": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"data_limit": 128}, "budgets": [16_384], "check": "final_loss",
                          "why": "sanity check: can the recipe memorise 128 pairs? (final loss near 0)"},
}


def resolve(name: str) -> dict:
    """A lever's full settings: its base's, with its own changes on top."""
    if name not in LEVERS:
        raise KeyError(f"unknown lever {name!r}; levers: {list(LEVERS)}")
    lever = LEVERS[name]
    base = resolve(lever["base"]) if lever["base"] else {"world": dict(STUDY_WORLD), "train": dict(BASE_TRAIN),
                                                          "prompts": "world"}
    return {"world": {**base["world"], **lever.get("world", {})}, "train": {**base["train"], **lever.get("train", {})},
            "prompts": lever.get("prompts", base["prompts"])}


def world_for(settings: dict, root: str | Path = "data/worlds") -> Path:
    """The world of a lever's settings, built once under `<root>/calib-<hash of its config>`."""
    cfg = from_dict(WorldConfig, settings["world"])
    fields = json.loads(json.dumps(dataclasses.asdict(cfg)))
    path = Path(root) / f"calib-{hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]}"
    if not (path / "world.json").is_file():
        build_world(cfg, path, progress=False, overwrite=True)
    return path


# ---- reading the screen back (the book's calibration page) ----
RESULTS = Path("benchmarks/results/calibration.jsonl")
COLUMNS = {"id/top1": "zero-shot", "shift_mean/top1": "shift mean", "best_shift/top1": "best shift",
           "retrieval/i2t_r1": "i2t R@1", "probe/linear_top1": "linear probe", "probe/5shot_top1": "5-shot",
           "fit/gap": "fit gap"}


def load_results(path: str | Path = RESULTS) -> pd.DataFrame:
    """One row per screened run (metrics in %), in LEVERS order; empty if nothing was screened.
    Rows screened under other settings than a lever's today (an older study world, a changed
    lever) stay in the file as history and are left out."""
    path = Path(path)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []
    current = {name: json.loads(json.dumps(resolve(name))) for name in LEVERS}
    rows = [r for r in rows if r["lever"] in current and r.get("settings") in (None, current[r["lever"]])]
    if not rows:
        return pd.DataFrame(columns=["lever", "kind", "samples", "seed", *COLUMNS.values()])
    table = pd.DataFrame(rows).drop_duplicates(["lever", "samples", "seed"], keep="last")
    for key, name in COLUMNS.items():  # rows screened before a metric existed lack it
        table[name] = 100 * table[key] if key in table else float("nan")
    order = {name: i for i, name in enumerate(LEVERS)}
    return table.sort_values(["lever", "samples", "seed"], key=lambda c: c.map(order) if c.name == "lever" else c)


def ablation_table(results: pd.DataFrame) -> pd.DataFrame:
    """Lever x samples: mean over seeds of each metric, the seeds, the change over the lever's
    base at the same samples (zero-shot, points), the final training loss and the training time."""
    metrics = list(COLUMNS.values())
    g = results.groupby(["lever", "samples"], sort=False)
    out = g[metrics + ["final_loss", "train_seconds"]].mean().round(2).rename(columns={"train_seconds": "train s"})
    out.insert(0, "seeds", g["seed"].nunique())
    out.insert(1, "best shift style", g["best_shift"].agg(lambda s: s.mode().iat[0]))
    means = out["zero-shot"].to_dict()
    out.insert(3, "vs base", [means[(LEVERS[lever]["base"], samples)] if (LEVERS[lever]["base"], samples) in means
                              else float("nan") for lever, samples in out.index])
    out["vs base"] = (out["zero-shot"] - out["vs base"]).round(1)
    return out.reset_index()


def curves(results: pd.DataFrame, samples: int | None = None) -> list[dict]:
    """Learning-curve points (samples, zero-shot % on the curve subset, lever) of each lever's
    runs at `samples` (default: the largest budget each lever has), seed 0."""
    points = []
    for lever, runs in results[results["seed"] == results["seed"].min()].groupby("lever", sort=False):
        run = runs[runs["samples"] == (samples or runs["samples"].max())]
        for row in (run["curve"].iloc[0] if len(run) else []):
            points.append({"lever": lever, "samples": row["samples"], "zero-shot (curve subset)": 100 * row["id_top1"]})
    return points


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per lever and samples: `<metric>_mean`, `<metric>_std` (0 for one seed) and n, as plots.mean_lines takes."""
    metrics = list(COLUMNS.values())
    g = results.groupby(["lever", "samples"], sort=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out = out.fillna(0.0)
    out["n"] = g.size()
    return out.reset_index()


def scale(results: pd.DataFrame) -> str:
    """The page's scale sentence."""
    if results.empty:
        return ("**No calibration results yet**: run `.venv/bin/python benchmarks/calibrate.py` "
                "(~55 minutes on 2 CPU cores) to write them.")
    distinct = results.drop_duplicates("run")  # a prompts-only lever re-reads its base's runs
    minutes = distinct["train_seconds"].sum() / 60
    seeds = results.groupby(["lever", "samples"])["seed"].nunique()
    n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    return (f"**Scale:** study world of {STUDY_WORLD['classes']} classes, {STUDY_WORLD['pairs']:,} training pairs at "
            f"32 px, {100 * STUDY_WORLD['eval_per_class']:,} images in the in-distribution suite and in each held-out "
            f"style (standard error of an accuracy p: 100·sqrt(p(1-p)/n), at most 0.5 points with n = 10,000; "
            f"image→text R@1 over {STUDY_WORLD['retrieval_images']:,} scenes: at most 1.6 points); "
            f"`{BASE_TRAIN['model']}`; {len(distinct)} distinct runs of {results['samples'].min():,}-{results['samples'].max():,} "
            f"samples, {n} seed(s) per point, {minutes:.0f} minutes of training as recorded (runs that shared the CPU record longer) on "
            f"{results['machine'].iloc[0]}. Chance is 1.0% zero-shot top-1.")


# The targets for the reference recipe: (metric, samples, threshold in %, what it checks)
TARGETS = [("zero-shot", 16_384, 20.0, "learns within a minute"), ("zero-shot", 65_536, 50.0, "learns well at 64k"),
           ("shift mean", 65_536, 5.0, "held-out styles >= 5x chance"),
           ("best shift", 65_536, 10.0, "one held-out style >= 10x chance"),
           ("i2t R@1", 65_536, 25.0, "retrieval is a real task")]


def confirmed(results: pd.DataFrame, seeds: int = 3) -> list[str]:
    """Side rows screened with at least `seeds` seeds at every budget they ran (e.g. image size)."""
    side = results[(results["kind"] == "side") & ~results["lever"].map(lambda name: "check" in LEVERS[name])]
    n = side.groupby(["lever", "samples"], sort=False)["seed"].nunique().groupby("lever", sort=False).min()
    return [name for name in n.index if n[name] >= seeds]


def time_ratio(results: pd.DataFrame, lever: str, samples: int = 65_536) -> float:
    """A row's mean training time over the reference recipe's, at the same samples seen, from runs
    timed on the same machine (a row screened later on a slower CPU would read as a slower
    recipe); NaN where the two share no machine."""
    t = results[results["samples"] == samples]
    ref, row = t[t["lever"] == reference()], t[t["lever"] == lever]
    shared = set(ref["machine"]) & set(row["machine"])
    if not shared:
        return float("nan")
    return float(row[row["machine"].isin(shared)]["train_seconds"].mean() / ref[ref["machine"].isin(shared)]["train_seconds"].mean())


def reference() -> str:
    """The last path lever: today's defaults."""
    return [name for name, lever in LEVERS.items() if lever["kind"] == "path"][-1]


def targets(results: pd.DataFrame, lever: str | None = None) -> pd.DataFrame:
    """A row's runs (default: the reference recipe) against the targets: reached (mean over
    seeds), sd, n, met. The small-pool target is the reference recipe's alone."""
    ref = results[results["lever"] == (lever or reference())]
    rows = []
    for metric, samples, threshold, what in TARGETS:
        vals = ref.loc[ref["samples"] == samples, metric]
        rows.append({"target": f"{metric} at {samples:,} >= {threshold:g}%", "why": what,
                     "reached": round(vals.mean(), 1) if len(vals) else None,
                     "sd": round(vals.std(), 1) if len(vals) > 1 else None, "n": len(vals),
                     "met": bool(len(vals) and vals.mean() >= threshold)})
    small = [(name, row) for name, row in LEVERS.items() if row.get("check") == "fit/gap" and lever is None]
    for name, row in small:  # small pools overfit: the gap of the small pool minus the whole pool's, per seed
        at = row["budgets"][0]
        ci = verdicts.interval(verdicts.contrast(results, "fit gap", [(+1, {"lever": name, "samples": at}),
                                                                      (-1, {"lever": reference(), "samples": at})]))
        rows.append({"target": f"fit gap, {row['train']['data_limit']:,}-pair pool - whole pool, at {at:,} > 0",
                     "why": "small pools overfit (train-vs-held-out i2t R@1, points; 95% t-interval "
                            f"[{ci['low']:.1f}, {ci['high']:.1f}])" if ci["n"] > 1 else "small pools overfit",
                     "reached": round(ci["effect"], 1) if ci["n"] else None,
                     "sd": round(ci["sd"], 1) if ci["n"] > 1 else None, "n": ci["n"],
                     "met": bool(ci["n"] > 1 and ci["low"] > 0)})
    by = ref.groupby("samples")["zero-shot"].mean()
    if {65_536, 262_144} <= set(by.index):
        rows.append({"target": "zero-shot at 256k - at 64k >= 8 points", "why": "headroom for bigger budgets",
                     "reached": round(by[262_144] - by[65_536], 1), "sd": None, "n": len(ref),
                     "met": bool(by[262_144] - by[65_536] >= 8)})
    return pd.DataFrame(rows)


def findings(results: pd.DataFrame) -> str:
    """What the screen found, in sentences computed from it."""
    if results.empty:
        return "No results to read yet."
    mean = results.groupby(["lever", "samples"])[["zero-shot", "final_loss", "linear probe"]].mean()
    lines = []
    first, ref = next(iter(LEVERS)), reference()
    at = 65_536 if (first, 65_536) in mean.index else int(results["samples"].max())
    if (first, at) in mean.index:
        r = mean.loc[(first, at)]
        lines.append(f"- **The symptom.** With the recipe of before, {at:,} samples drive the training loss to "
                     f"{r['final_loss']:.2f} (chance 4.16) while zero-shot top-1 stays at {r['zero-shot']:.1f}% and "
                     f"the linear probe reaches {r['linear probe']:.1f}%: the contrastive task is being solved by "
                     f"something other than the emoji (backgrounds named in three captions of four).")
        ref_at = mean.loc[(ref, at)] if (ref, at) in mean.index else None
        if ref_at is not None:
            lines.append(f"- **Is the text side the bottleneck?** The linear probe on frozen image features beats "
                         f"zero-shot by {r['linear probe'] - r['zero-shot']:.1f} points before and by "
                         f"{ref_at['linear probe'] - ref_at['zero-shot']:.1f} after the levers (the open_clip maintainers' "
                         f"check: a probe far above zero-shot points at the text side or the prompts).")
    for name, lever in LEVERS.items():
        base = lever["base"]
        if lever.get("check") == "final_loss":
            rows = results[results["lever"] == name]
            if len(rows):
                first_row = rows.iloc[0]
                pool = lever["train"]["data_limit"]
                lines.append(f"- {name} (sanity check): final training loss {first_row['final_loss']:.3f} after "
                             f"{first_row['samples']:,} samples ({first_row['samples'] // pool:,} epochs of {pool} pairs; "
                             f"chance 4.16): the recipe can memorise a small pool.")
            continue
        shared = sorted(n for lev, n in mean.index if lev == name and (base, n) in mean.index)
        if not shared:
            continue
        n_at = at if at in shared else shared[-1]  # the chapters' 64k, else the lever's largest budget
        gain = mean.loc[(name, n_at), "zero-shot"] - mean.loc[(base, n_at), "zero-shot"]
        extra = ""
        if lever.get("check") == "fit/gap":
            fit = results[results["samples"] == n_at].groupby("lever")["fit gap"].mean()
            extra = (f"; train-vs-held-out gap {fit[name]:.1f} points of i2t R@1 against {fit[base]:.1f} for the whole "
                     f"pool ({n_at // lever['train']['data_limit']} epochs of {lever['train']['data_limit']:,} pairs)")
        seeds = results[(results["lever"] == name) & (results["samples"] == n_at)].sort_values("seed")
        if len(seeds) > 1:  # screened with several seeds: each one, as a stalled seed drags a mean far down
            extra += "; per seed " + ", ".join(f"{v:.1f}%" for v in seeds["zero-shot"])
        note = f" Checked: {lever['note']}." if "note" in lever else ""
        lines.append(f"- {'**' + name + '**' if lever['kind'] == 'path' else name} ({lever['kind']} row): "
                     f"{gain:+.1f} points zero-shot at {n_at:,} samples over *{base}*{extra} — {lever['why']}.{note}")
    if (ref, at) in mean.index and (first, at) in mean.index:
        lines.append(f"- **Together** the path levers take zero-shot top-1 at {at:,} samples from "
                     f"{mean.loc[(first, at), 'zero-shot']:.1f}% to {mean.loc[(ref, at), 'zero-shot']:.1f}% "
                     f"(*{ref}* is today's default recipe and world).")
    lines.append("\nOne seed per screened row: a difference of a few points between rows is within seed noise "
                 "(the reference recipe's spread over three seeds is in the targets table below). Learning here has "
                 "an onset: a run's zero-shot accuracy stays near chance, then climbs steeply (the curves above), so a "
                 "side row far below its base at one seed may have started late rather than learned worse. Side rows "
                 "were not adopted into the reference recipe.")
    return "\n".join(lines)
