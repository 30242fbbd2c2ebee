"""Claims ledger: each claim of the papers as a seed-paired contrast of runs, its 95% interval and verdict.

    v = verdicts.test(table, "more epochs help the large pool more", metric="zero-shot",
                      terms=[(+1, {"pool": 32768, "epochs": 4}), (-1, {"pool": 32768, "epochs": 1}),
                             (-1, {"pool": 2048, "epochs": 4}), (+1, {"pool": 2048, "epochs": 1})],
                      chance=1.0)
    v["verdict"]   # 'holds' | 'does not hold' | 'inconclusive' | 'untestable at this scale'
    verdicts.sentence(v)

A claim is a weighted sum of cells of a tidy run table (one row per run: config columns, `seed`,
metrics in %), computed per seed (the runs of one seed are paired), so that a positive value
means the claim holds. The effect is the mean over seeds; its 95% interval is Student's t over
the seeds (n stated). Verdict: interval above zero -> holds; below zero -> does not hold;
spanning zero -> inconclusive; every run in the cells within `margin` points of chance on the
learning indicator (`floor_metric`, zero-shot top-1) -> untestable at this scale, whatever the
interval says: among runs that learned nothing a difference is noise or a floor effect. With one
seed there is no interval: inconclusive.
"""

from __future__ import annotations

import math

import pandas as pd
from IPython.display import Markdown, display
from scipy import stats

from clipstudy import chapters
from clipstudy.plots import lower_envelope
from clipstudy.study import STRATEGY_FIELDS, arm, strategy

VERDICTS = ("holds", "does not hold", "inconclusive", "untestable at this scale")


def interval(values, confidence: float = 0.95) -> dict:
    """Mean, standard deviation, n and the two-sided Student-t interval of the mean of `values`
    (NaN bounds for n < 2)."""
    values = pd.Series(values, dtype=float).dropna()
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return {"effect": mean, "sd": sd, "n": n, "low": math.nan, "high": math.nan}
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return {"effect": mean, "sd": sd, "n": n, "low": mean - half, "high": mean + half}


def _cells(table: pd.DataFrame, where: dict) -> pd.DataFrame:
    unknown = [column for column in where if column not in table]
    if unknown:
        raise MissingCell(f"cell {where}: no column {unknown} in the table")
    mask = pd.Series(True, index=table.index)
    for column, value in where.items():
        mask &= table[column] == value
    return table[mask]


class MissingCell(KeyError):
    """A claim's cell that the table does not hold (no run, or no run scored on the metric):
    an error that names it, never a quiet "inconclusive"."""

    def __str__(self) -> str:
        return str(self.args[0])


def contrast(table: pd.DataFrame, metric: str, terms: list[tuple[float, dict]]) -> pd.Series:
    """Per seed, sum of weight x `metric` of the run matching each term's cell (a dict of column
    -> value picking one run per seed); seeds missing from some cell are dropped (the rest stay
    paired). A cell with no run, or none scored on `metric`, raises MissingCell naming it."""
    if metric not in table:
        raise MissingCell(f"no {metric!r} column in the table; it has {sorted(table.columns)}")
    parts = []
    for weight, where in terms:
        cell = _cells(table, where)
        if cell[metric].isna().all():
            raise MissingCell(f"no run in cell {where} has {metric!r} (runs in the cell: {len(cell)})")
        if cell["seed"].duplicated().any():
            raise ValueError(f"cell {where} holds several runs of one seed; add columns to pick one")
        parts.append(weight * cell.set_index("seed")[metric])
    return pd.concat(parts, axis=1).dropna().sum(axis=1)


def test(table: pd.DataFrame, claim: str, metric: str, terms: list[tuple[float, dict]], chance: float,
         margin: float = 1.0, floor_metric: str = "zero-shot", confidence: float = 0.95) -> dict:
    """The verdict of one claim (see the module docstring): a dict with claim, metric, effect,
    sd, n, low, high, verdict, and at_chance (how many of the cells' runs sit at chance, of how many)."""
    per_seed = contrast(table, metric, terms)
    out = {"claim": claim, "metric": metric, **interval(per_seed, confidence)}
    runs = pd.concat([_cells(table, where) for _, where in terms])
    near = (runs[floor_metric] - chance).abs() <= margin
    out["at_chance"], out["runs"] = int(near.sum()), len(runs)
    out["verdict"] = VERDICTS[3] if len(runs) and near.all() else _verdict(out)
    return out


def effect_text(v: dict) -> str:
    """'+3.1 points [1.2, 5.0] (95% t-interval, n=3)'."""
    unit, over = v.get("unit", "points"), v.get("over", "seeds")
    if v["n"] < 2:
        return f"{v['effect']:+.1f} {unit} (n={v['n']}: no interval)"
    return f"{v['effect']:+.1f} {unit} [{v['low']:+.1f}, {v['high']:+.1f}] (95% t-interval over {over}, n={v['n']})"


def sentence(v: dict) -> str:
    """The verdict as a page prints it."""
    floor = (f" {v['at_chance']} of the {v['runs']} runs compared sit within 1 point of chance."
             if v["at_chance"] else "")
    return f"*{v['claim']}* — **{v['verdict']}** ({v['metric']}: {effect_text(v)}).{floor}"


def show(verdicts: list[dict], note: str = "") -> Markdown:
    """A chapter's claims as its page shows them: the table of claims (displayed), then one
    sentence per claim and `note` (e.g. prose.floor_note) as the cell's output."""
    display(table_of(verdicts))
    return Markdown("\n\n".join(sentence(v) for v in verdicts) + (f"\n\n{note}" if note else ""))


def table_of(verdicts: list[dict]) -> pd.DataFrame:
    """Claims as rows: claim, metric, effect, 95% interval, n, runs at chance, verdict."""
    rows = [{"claim": v["claim"], "metric": v["metric"], "effect": f"{v['effect']:+.1f} {v.get('unit', 'points')}",
             "95% interval": "–" if v["n"] < 2 else f"[{v['low']:+.1f}, {v['high']:+.1f}]", "n": f"{v['n']} {v.get('over', 'seeds')}",
             "runs at chance": f"{v['at_chance']} of {v['runs']}", "verdict": v["verdict"]} for v in verdicts]
    return pd.DataFrame(rows)


# ---- the claims of each chapter (paper A), on the chapter's tidy table ----

def data_quantity(table: pd.DataFrame, chance: float) -> list[dict]:
    """A1: more epochs help a large pool more than a small one; on the small pool, long training
    still lifts the held-out styles. Where the grid has a pool of the small pool's samples seen,
    also why: the repeated small pool overfits more (train-vs-held-out retrieval gap, `fit gap`)."""
    small, large = table["pool"].min(), table["pool"].max()
    few, many = table["epochs"].min(), table["epochs"].max()
    gain = lambda pool: [(+1, {"pool": pool, "epochs": many}), (-1, {"pool": pool, "epochs": few})]  # noqa: E731
    flip = lambda terms: [(-w, c) for w, c in terms]  # noqa: E731
    out = [
        test(table, f"{few:g} -> {many:g} epochs gains more on {large:,} pairs than on {small:,}", "zero-shot",
             gain(large) + flip(gain(small)), chance),
        test(table, f"{few:g} -> {many:g} epochs lifts held-out styles on {small:,} pairs", "shifts", gain(small), chance),
    ]
    # why (our check, not a claim of the paper): at equal samples seen, repeating a small pool
    # fits its own pairs beyond held-out scenes more than one pass over a pool that large
    seen = int(round(small * many))  # epochs are floats (samples / pool)
    if "fit gap" in table and seen in set(table.loc[table["epochs"] == few, "pool"]) and few == 1:
        out.append(test(table, f"(why) after {seen:,} samples, {small:,} pairs x {many:g} epochs overfit more than "
                               f"{seen:,} pairs x 1", "fit gap",
                        [(+1, {"pool": small, "epochs": many}), (-1, {"pool": seen, "epochs": few})], chance))
    return out


def vit_size(table: pd.DataFrame, chance: float) -> list[dict]:
    """A3: the largest ViT is the worst below ~100M samples (and the best with enough data, a
    budget no laptop run reaches): at each one-epoch budget, the smallest tower minus the largest."""
    one = table[table["epochs"] == 1]
    order = one.groupby("model")["gflops_per_sample"].first().sort_values().index
    smallest, largest = order[0], order[-1]
    return [test(one, f"`{largest}` below `{smallest}` after {n:,} samples", "zero-shot",
                 [(+1, {"model": smallest, "samples": n}), (-1, {"model": largest, "samples": n})], chance)
            for n in sorted(one["samples"].unique())]


def cnn_vs_vit(table: pd.DataFrame, chance: float, vit: str = "vit-b-16", cnn: str = "rn50",
               mixer: str = "mixer-b-16") -> list[dict]:
    """A4: ResNet wins with few samples, ViT with more; Mixer has a strong linear probe at small
    data and poor retrieval."""
    lo, hi = table["samples"].min(), table["samples"].max()
    at = lambda model, samples: {"model": model, "samples": samples}  # noqa: E731
    out = [test(table, f"`{cnn}` above `{vit}` after {lo:,} samples", "zero-shot",
                [(+1, at(cnn, lo)), (-1, at(vit, lo))], chance),
           test(table, f"`{vit}` above `{cnn}` after {hi:,} samples", "zero-shot",
                [(+1, at(vit, hi)), (-1, at(cnn, hi))], chance)]
    if mixer in set(table["model"]):
        out += [test(table, f"`{mixer}` linear probe above `{vit}` after {lo:,} samples", "linear probe",
                     [(+1, at(mixer, lo)), (-1, at(vit, lo))], chance),
                test(table, f"`{mixer}` image→text R@1 below `{vit}` after {hi:,} samples", "i2t R@1",
                     [(+1, at(vit, hi)), (-1, at(mixer, hi))], chance)]
    return out


# The strategies the papers' claims name, as clipstudy/chapters.py defines them: a claim picks
# its cells by these config fields (`study.arm`); the names only label the claim.
CLIP, SLIP, FLIP, AUG = (arm(s) for s in (chapters.CLIP, chapters.SLIP, chapters.FLIP, chapters.CLIP_AUG))
SIGLIP, TOME = arm(chapters.SIGLIP), arm(chapters.TOME)
SIGLIP_FLIP = arm({**chapters.SIGLIP, **chapters.FLIP})  # arms are whole configs: merge the strategies, not the arms


def _name(cell: dict) -> str:
    return strategy(cell)


def strategies(table: pd.DataFrame, chance: float) -> list[dict]:
    """A5: SLIP is best at one epoch below ~1B samples but worst at equal compute, and best at
    retrieval everywhere; augmentation hurts at one epoch; CLIP + augmentation is best on the
    shifts and the linear probe after several epochs. The one-epoch cells are the table's largest
    pool at 1 epoch, the several-epoch cells its most epochs at the same samples seen, the
    equal-compute cell SLIP at half those samples on that pool."""
    one = {"pool": table["pool"].max(), "epochs": 1.0}
    samples = int(one["pool"])
    multi_pool = table.loc[(table["samples"] == samples) & (table["pool"] < one["pool"]), "pool"].max()
    several = {"pool": multi_pool, "samples": samples}
    above = lambda claim, metric, best, cell: [  # noqa: E731
        test(table, f"{claim}: {_name(best)} above {_name(other)}", metric,
             [(+1, {**best, **cell}), (-1, {**other, **cell})], chance)
        for other in (CLIP, SLIP, FLIP, AUG) if other != best]
    out = above("one epoch", "zero-shot", SLIP, one)
    half = {"pool": multi_pool, "samples": samples // 2}
    if len(_cells(table, {**SLIP, **half})):
        out.append(test(table, f"equal compute: SLIP ({samples // 2:,} samples) below CLIP ({samples:,})", "zero-shot",
                        [(+1, {**CLIP, **several}), (-1, {**SLIP, **half})], chance))
    for cell, where in ((one, "one epoch"), (several, f"{samples // multi_pool:g} epochs")):
        out += above(f"retrieval, {where}", "i2t R@1", SLIP, cell)
    out.append(test(table, "one epoch: augmentation lowers CLIP", "zero-shot",
                    [(+1, {**CLIP, **one}), (-1, {**AUG, **one})], chance))
    for metric in ("shifts", "linear probe"):
        out += above(f"{samples // multi_pool:g} epochs, {metric}", metric, AUG, several)
    return out


def tricks(table: pd.DataFrame, chance: float) -> list[dict]:
    """B2: FLIP is worse than CLIP at this scale; SigLIP is the best (+9 points over CLIP on CC3M);
    token merging lowers accuracy: on the table's largest pool. B1 (`pretrained` on the smallest
    pool, where the table has two)."""
    b2 = table[table["pool"] == table["pool"].max()]
    present = [dict(zip(STRATEGY_FIELDS, values)) for values in
               b2[list(STRATEGY_FIELDS)].drop_duplicates().itertuples(index=False)]
    out = [test(b2, "FLIP below CLIP", "zero-shot", [(+1, CLIP), (-1, FLIP)], chance),
           test(b2, "ToMe below CLIP", "zero-shot", [(+1, CLIP), (-1, TOME)], chance)]
    out += [test(b2, f"SigLIP above {_name(other)}", "zero-shot", [(+1, SIGLIP), (-1, other)], chance)
            for other in sorted((c for c in present if c != SIGLIP), key=lambda c: (c != CLIP, _name(c)))]
    if table["pool"].nunique() > 1:
        out += pretrained(table[table["pool"] == table["pool"].min()], chance)
    return out


def pretrained(table: pd.DataFrame, chance: float) -> list[dict]:
    """B1: from scratch is the weakest; a pre-trained text tower helps a little, a pre-trained
    image tower a lot, both the most; SigLIP adds more on top of both. Towers tuned unless the
    claim says locked; the locked-vs-tuned rows are our LiT check (paper B's future work)."""
    text, image = chapters.MINILM, chapters.SIMCLR
    locked_text, locked_image = {**text, "lock_text": True}, {**image, "lock_image": True}
    both, locked = arm({**text, **image}), arm({**locked_text, **locked_image})
    vs = lambda claim, a, b: test(table, claim, "zero-shot", [(+1, arm(a)), (-1, arm(b))], chance)  # noqa: E731
    out = [vs("pre-trained text above scratch", text, {}),
           vs("pre-trained image above scratch", image, {}),
           vs("pre-trained image helps more than pre-trained text", image, text),
           vs("both above pre-trained image alone", both, image),
           vs("both above pre-trained text alone", both, text),
           vs("SigLIP adds to both pre-trained towers (locked)", {**locked, **chapters.SIGLIP}, locked)]
    out += [vs(f"(LiT check) {name} locked above tuned", lock, tuned)
            for name, lock, tuned in (("text", locked_text, text), ("image", locked_image, image))]
    out.append(vs("(LiT check) both locked above both tuned", locked, both))
    return out


def throughput(rows: pd.DataFrame, claims: dict[str, tuple[str, str]] | None = None) -> list[dict]:
    """B3: samples/s gains, in % of the reference in the same benchmark round (benchmarks/strategies.py
    rows: strategy, round, samples_per_s), with a t-interval over rounds. `claims`: name -> (strategy,
    reference); by default paper B's: ToMe and FLIP faster than CLIP, SigLIP faster than CLIP and
    SigLIP+FLIP faster than FLIP."""
    # the benchmark's rows carry only each strategy's name, which study.strategy gives its config
    claims = claims or {"ToMe raises throughput (paper B: +16%)": (_name(TOME), _name(CLIP)),
                        "FLIP raises throughput (paper B: +23%)": (_name(FLIP), _name(CLIP)),
                        "SigLIP raises CLIP's throughput (paper B: +1%)": (_name(SIGLIP), _name(CLIP)),
                        "SigLIP raises FLIP's throughput (paper B: +1%)": (_name(SIGLIP_FLIP), _name(FLIP))}
    by = rows.pivot_table(index="round", columns="strategy", values="samples_per_s")
    out = []
    for claim, (faster, reference) in claims.items():
        missing = [name for name in (faster, reference) if name not in by]
        if missing:
            raise MissingCell(f"claim {claim!r}: no benchmark rows of {missing}; the rows hold {sorted(by.columns)}")
        gain = 100 * (by[faster] / by[reference] - 1)
        v = {"claim": claim, "metric": "samples/s", "unit": "%", "over": "benchmark rounds", **interval(gain),
             "at_chance": 0, "runs": 2 * len(gain)}
        out.append({**v, "verdict": _verdict(v)})
    return out


def _verdict(v: dict) -> str:
    if v["n"] < 2 or v["low"] <= 0 <= v["high"]:
        return VERDICTS[2]
    return VERDICTS[0] if v["low"] > 0 else VERDICTS[1]


def augmentation(table: pd.DataFrame, chance: float) -> list[dict]:
    """A6: each augmentation beats none (on every pool); Stacked RandAugment on half the data is
    about as good as no augmentation on all of it, tested as Stacked RA (half) - none (full): an
    interval spanning zero is what "about as good" predicts (inconclusive, by the usual rule),
    above zero is better than the claim, below it the claim fails."""
    pools = sorted(table["pool"].unique())
    out = [test(table, f"{aug} above none on {pool:,} pairs", "zero-shot",
                [(+1, {"augment": aug, "pool": pool}), (-1, {"augment": "none", "pool": pool})], chance)
           for aug in ("crop_flip", "randaugment", "stacked_randaugment") for pool in pools]
    for half, full in ((p, 2 * p) for p in pools if 2 * p in pools):
        out.append(test(table, f"Stacked RA on {half:,} pairs at least matches none on {full:,}", "zero-shot",
                        [(+1, {"augment": "stacked_randaugment", "pool": half}), (-1, {"augment": "none", "pool": full})],
                        chance))
    return out


def data_quality(table: pd.DataFrame, chance: float, noise: float | None) -> list[dict]:
    """A2, at the chapter's main noise rate (`quality_chapter.quality_table`'s `noise`, `top`, `regime`
    columns; None: every run, as on a real pool, whose noise is unknown): Top40% beats the full
    pool, in one epoch of each and at equal samples; Top20% is below Top40%; higher quality gives
    better few-shot (Top20% - the full pool, 10-shot); Top80% is the best cut at retrieval, tested
    against its neighbours (Top60% and the full pool)."""
    table = table if noise is None else table[table["noise"] == noise]
    cell = lambda top, regime="equal samples": {"top": top, "regime": regime}  # noqa: E731
    out = [test(table, f"Top40% beats the full pool ({regime})", "zero-shot",
                [(+1, cell(0.4, regime)), (-1, cell(1.0, regime))], chance) for regime in ("one epoch", "equal samples")]
    out.append(test(table, "Top20% is below Top40% (equal samples)", "zero-shot",
                    [(+1, cell(0.4)), (-1, cell(0.2))], chance))
    out.append(test(table, "higher quality gives better few-shot: Top20% above the full pool (equal samples)", "10-shot",
                    [(+1, cell(0.2)), (-1, cell(1.0))], chance))
    out += [test(table, f"Top80% beats Top{round(100 * other)}% at retrieval (equal samples)", "i2t R@1",
                 [(+1, cell(0.8)), (-1, cell(other))], chance) for other in (0.6, 1.0)]
    return out


def frontier(rows: list[dict]) -> str:
    """Paper A's conclusion that the best architecture depends on the compute budget, read off
    every recorded run (`rows`: tidy rows with `pflops`, `error` = 100 - zero-shot, `model`,
    `gflops_per_sample`): "holds" when the lower envelope of error over training compute passes
    from cheaper towers to costlier ones. Single runs, no interval: the envelope is drawn
    through individual seeds. -> the sentence the compute-frontier page prints."""
    envelope = lower_envelope(rows, "pflops", "error")  # the runs the frontier line joins
    models_on = list(dict.fromkeys(r["model"] for r in envelope))
    sizes_on = [r["gflops_per_sample"] for r in envelope]
    grows = len(models_on) > 1 and sizes_on[-1] > sizes_on[0]
    verdict = ("**holds** at this scale: cheaper towers make up the frontier at low compute and costlier ones at high compute"
               if grows else "**is not seen** at this scale: " + ("one tower" if len(models_on) == 1 else "no costlier tower")
               + " takes over the frontier as compute grows")
    pflops = [r["pflops"] for r in rows]
    return (f"The paper's conclusion that the best architecture depends on the compute budget (smaller towers for small "
            f"budgets, larger ones for large) {verdict}. {len(rows)} runs span {min(pflops):.3g}-"
            f"{max(pflops):.3g} PFLOPs ({max(pflops) / min(pflops):.0f}x). The frontier has "
            f"{len(envelope)} runs, from {envelope[0]['error']:.1f}% error at {envelope[0]['pflops']:.3g} PFLOPs to "
            f"{envelope[-1]['error']:.1f}% at {envelope[-1]['pflops']:.3g} PFLOPs; the towers on it, in order of compute: "
            + ", ".join(f"`{m}`" for m in models_on) + f" (train GFLOPs per sample {sizes_on[0]:.3f} → {sizes_on[-1]:.3f}). "
            "Single runs: the frontier is drawn through individual seeds, so it leans towards lucky runs.")
