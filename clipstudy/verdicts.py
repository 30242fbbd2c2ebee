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
from scipy import stats

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
    mask = pd.Series(True, index=table.index)
    for column, value in where.items():
        mask &= table[column] == value
    return table[mask]


def contrast(table: pd.DataFrame, metric: str, terms: list[tuple[float, dict]]) -> pd.Series:
    """Per seed, sum of weight x `metric` of the run matching each term's cell (a dict of column
    -> value picking one run per seed); seeds missing a cell are dropped."""
    parts = []
    for weight, where in terms:
        cell = _cells(table, where)
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
    if len(runs) and near.all():
        out["verdict"] = VERDICTS[3]
    elif out["n"] < 2 or out["low"] <= 0 <= out["high"]:
        out["verdict"] = VERDICTS[2]
    else:
        out["verdict"] = VERDICTS[0] if out["low"] > 0 else VERDICTS[1]
    return out


def effect_text(v: dict) -> str:
    """'+3.1 points [1.2, 5.0] (95% t-interval, n=3)'."""
    if v["n"] < 2:
        return f"{v['effect']:+.1f} points (n={v['n']}: no interval)"
    return f"{v['effect']:+.1f} points [{v['low']:+.1f}, {v['high']:+.1f}] (95% t-interval over seeds, n={v['n']})"


def sentence(v: dict) -> str:
    """The verdict as a page prints it."""
    floor = (f" {v['at_chance']} of the {v['runs']} runs compared sit within 1 point of chance."
             if v["at_chance"] else "")
    return f"*{v['claim']}* — **{v['verdict']}** ({v['metric']}: {effect_text(v)}).{floor}"


def table_of(verdicts: list[dict]) -> pd.DataFrame:
    """Claims as rows: claim, metric, effect, 95% interval, n, runs at chance, verdict."""
    rows = [{"claim": v["claim"], "metric": v["metric"], "effect (points)": round(v["effect"], 1),
             "95% interval": "–" if v["n"] < 2 else f"[{v['low']:+.1f}, {v['high']:+.1f}]", "n seeds": v["n"],
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
