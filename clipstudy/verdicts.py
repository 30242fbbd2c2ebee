"""Tests of claims on tidy run tables: seed-paired contrasts, their 95% intervals and verdicts.

    v = verdicts.test(table, "more epochs help the large pool more", metric="zero-shot",
                      terms=[(+1, {"pool": 32768, "epochs": 4}), (-1, {"pool": 32768, "epochs": 1}),
                             (-1, {"pool": 2048, "epochs": 4}), (+1, {"pool": 2048, "epochs": 1})],
                      chance=1.0)
    v["verdict"]   # one of VERDICTS
    verdicts.sentence(v)

A contrast is a weighted sum of cells of a tidy run table (one row per run: config columns, `seed`,
metrics in %), computed per seed (the runs of one seed are paired), so that a positive value means
the claim holds. The effect is the mean over seeds; its 95% interval is Student's t over the seeds
(n stated), its p-value the two-sided one-sample t-test. Verdicts:

- *holds* / *does not hold*: the interval lies above / below zero;
- *inconclusive*: it spans zero (or n < 2: no interval);
- *equivalent*: an equivalence claim ("about as good") whose 90% interval lies inside the stated
  margin (two one-sided tests at 5%, TOST);
- *floor-limited*: some cell compared sits within `margin` points of chance on the learning
  indicator (`floor_metric`, zero-shot top-1), whatever the interval says: a run that learned
  nothing cannot show a gain or a loss, so the contrast measures the floor (the cells are named);
- *beyond our scale*: the claim is about a regime our grid does not reach (clipstudy/claims.py).

The kinds of test (each -> one verdict dict): `test` (a difference), `best_among` (the named arm
above every rival, each rival a difference), `equivalence`, `trend` (per-seed slope), `linearity`
(per-seed Pearson r against a stated threshold), `frontier` (per-seed growth of the compute-optimal
tower), `throughput` (per-round % gain), and `all_of` (a claim of several parts).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from scipy import stats

from clipstudy.plots import lower_envelope
from clipstudy.study import STRATEGY_FIELDS, strategy

VERDICTS = ("holds", "does not hold", "inconclusive", "equivalent", "floor-limited", "beyond our scale")
HOLDS, FAILS, INCONCLUSIVE, EQUIVALENT, FLOOR, BEYOND = VERDICTS
DECISIVE = (HOLDS, FAILS, EQUIVALENT)


class MissingCell(KeyError):
    """A claim's cell that the table does not hold (no run, or no run scored on the metric):
    an error that names it, never a quiet "inconclusive"."""

    def __str__(self) -> str:
        return str(self.args[0])


def interval(values, confidence: float = 0.95) -> dict:
    """Mean, standard deviation, n, the two-sided Student-t interval of the mean of `values` and the
    two-sided p-value of "mean = 0" (NaN bounds and p for n < 2)."""
    values = pd.Series(values, dtype=float).dropna()
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return {"effect": mean, "sd": sd, "n": n, "low": math.nan, "high": math.nan, "p": math.nan}
    se = sd / math.sqrt(n)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    p = 2 * stats.t.sf(abs(mean) / se, n - 1) if se > 0 else float(mean == 0)
    return {"effect": mean, "sd": sd, "n": n, "low": mean - half, "high": mean + half, "p": float(p)}


def select(table: pd.DataFrame, where: dict) -> pd.DataFrame:
    """The runs of `table` in the cell `where` (column: value, every one equal): cells are picked by config."""
    unknown = [column for column in where if column not in table]
    if unknown:
        raise MissingCell(f"cell {where}: no column {unknown} in the table")
    mask = pd.Series(True, index=table.index)
    for column, value in where.items():
        mask &= table[column] == value
    return table[mask]


def contrast(table: pd.DataFrame, metric: str, terms: list[tuple[float, dict]]) -> pd.Series:
    """Per seed, sum of weight x `metric` of the run matching each term's cell (a dict of column
    -> value picking one run per seed); seeds missing from some cell are dropped (the rest stay
    paired). A cell with no run, or none scored on `metric`, raises MissingCell naming it."""
    if metric not in table:
        raise MissingCell(f"no {metric!r} column in the table; it has {sorted(table.columns)}")
    parts = []
    for weight, where in terms:
        cell = select(table, where)
        if cell[metric].isna().all():
            raise MissingCell(f"no run in cell {label(where)} has {metric!r} (runs in the cell: {len(cell)})")
        if cell["seed"].duplicated().any():
            raise ValueError(f"cell {where} holds several runs of one seed; add columns to pick one")
        parts.append(weight * cell.set_index("seed")[metric])
    return pd.concat(parts, axis=1).dropna().sum(axis=1)


def label(where: dict) -> str:
    """A cell as a reader reads it: its strategy (when it names strategy fields) and other fields,
    e.g. 'SLIP, pool 8,192, samples 16,384'."""
    def text(value) -> str:
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
            return f"{value:,}"
        return f"{value:g}" if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) else str(value)
    parts = [strategy(where)] if set(where) & set(STRATEGY_FIELDS) else []
    parts += [f"{key} {text(value)}" for key, value in where.items() if key not in STRATEGY_FIELDS]
    return ", ".join(parts)


def at_chance(table: pd.DataFrame, cells: list[dict], chance: float, margin: float = 1.0,
              floor_metric: str = "zero-shot") -> list[str]:
    """The cells (labels) whose runs' mean `floor_metric` lies within `margin` points of chance."""
    out = []
    for where in cells:
        runs = select(table, where)
        if floor_metric in runs and len(runs) and abs(runs[floor_metric].mean() - chance) <= margin:
            out.append(label(where))
    return list(dict.fromkeys(out))


def _verdict(v: dict) -> str:
    if v["n"] < 2 or v["low"] <= 0 <= v["high"]:
        return INCONCLUSIVE
    return HOLDS if v["low"] > 0 else FAILS


def test(table: pd.DataFrame, claim: str, metric: str, terms: list[tuple[float, dict]], chance: float,
         margin: float = 1.0, floor_metric: str = "zero-shot", confidence: float = 0.95) -> dict:
    """A difference (any weighted contrast of cells): the claim holds when the contrast is above
    zero. -> a dict with test (the claim as tested), metric, effect, sd, n, low, high, p, verdict,
    floor (the cells at chance), runs (how many runs the cells hold)."""
    out = {"test": claim, "metric": metric, **interval(contrast(table, metric, terms), confidence)}
    return _judged(out, table, [where for _, where in terms], chance, margin, floor_metric)


def _judged(out: dict, table: pd.DataFrame, cells: list[dict], chance: float, margin: float = 1.0,
            floor_metric: str = "zero-shot") -> dict:
    """`out` (an effect and its interval) with the cells at chance, the runs they hold, and its
    verdict: floor-limited when some cell sits at chance, else from the interval."""
    out["floor"] = at_chance(table, cells, chance, margin, floor_metric)
    out["runs"] = sum(len(select(table, where)) for where in cells)
    out["verdict"] = FLOOR if out["floor"] else _verdict(out)
    return out


def all_of(claim: str, parts: list[dict]) -> dict:
    """A claim of several parts (e.g. "above every rival", "on both retrieval directions"): holds
    when every part holds, does not hold when some part does not, floor-limited when some part is;
    else inconclusive. Its effect, interval and n are those of the weakest part (smallest effect),
    its p the largest of the parts' (every part must be decided: intersection-union)."""
    verdicts_ = [p["verdict"] for p in parts]
    weakest = min(parts, key=lambda p: p["effect"] if not math.isnan(p["effect"]) else -math.inf)
    floor = list(dict.fromkeys(c for p in parts for c in p.get("floor", [])))
    if floor:
        verdict = FLOOR
    elif FAILS in verdicts_:
        verdict = FAILS
    elif all(v in (HOLDS, EQUIVALENT) for v in verdicts_):
        verdict = HOLDS
    else:
        verdict = INCONCLUSIVE
    if verdict == FAILS:  # decided by its failing parts: the strongest of them
        p = min(part["p"] for part in parts if part["verdict"] == FAILS)
    else:
        p = max((part["p"] for part in parts), default=math.nan)
    keep = ("effect", "sd", "n", "low", "high", "metric", "unit", "over")
    return {"test": claim, **{k: weakest[k] for k in keep if k in weakest}, "p": p, "floor": floor,
            "runs": sum(part.get("runs", 0) for part in parts), "verdict": verdict, "parts": parts}


def any_of(claim: str, parts: list[dict]) -> dict:
    """A claim that one counter-example settles ("not consistently"): holds when some part holds,
    does not hold when every part does not, floor-limited when some part is; else inconclusive. Its
    effect is the strongest part's, its p the holding parts' smallest (else the largest)."""
    v = all_of(claim, parts)
    verdicts_ = [p["verdict"] for p in parts]
    strongest = max(parts, key=lambda p: p["effect"] if not math.isnan(p["effect"]) else -math.inf)
    v.update({k: strongest[k] for k in ("effect", "sd", "n", "low", "high", "metric", "unit", "over") if k in strongest})
    if v["verdict"] != FLOOR:
        v["verdict"] = HOLDS if HOLDS in verdicts_ else FAILS if all(x == FAILS for x in verdicts_) else INCONCLUSIVE
        v["p"] = min(p["p"] for p in parts if p["verdict"] == HOLDS) if v["verdict"] == HOLDS else max(p["p"] for p in parts)
    return v


def best_among(table: pd.DataFrame, claim: str, metric: str, best: dict, rivals: list[dict], chance: float,
               at: dict | None = None, worst: bool = False, **kw) -> dict:
    """`best` (a cell, e.g. an arm) above every one of `rivals` (below each, with `worst`), all at
    the cell `at`: one difference per rival, joined by all_of (the effect shown: the closest rival)."""
    at = at or {}
    sign = -1 if worst else +1
    parts = [test(table, f"{label(best)} {'below' if worst else 'above'} {label(rival)}", metric,
                  [(sign, {**best, **at}), (-sign, {**rival, **at})], chance, **kw) for rival in rivals]
    return all_of(claim, parts)


def equivalence(table: pd.DataFrame, claim: str, metric: str, terms: list[tuple[float, dict]], chance: float,
                margin: float, floor_margin: float = 1.0, floor_metric: str = "zero-shot") -> dict:
    """"About as good": the contrast lies within +-`margin` points. Two one-sided t-tests at 5%
    (TOST: the 90% interval inside the margin) -> equivalent; else the 95% interval off zero ->
    does not hold; else inconclusive. The 95% interval is what the table shows; p is TOST's."""
    per_seed = contrast(table, metric, terms)
    out = {"test": f"{claim} (within ±{margin:g} points)", "metric": metric, **interval(per_seed), "margin": margin}
    tost = interval(per_seed, confidence=0.90)
    _judged(out, table, [where for _, where in terms], chance, floor_margin, floor_metric)
    if out["n"] >= 2 and out["sd"] > 0:
        se = out["sd"] / math.sqrt(out["n"])
        out["p"] = float(max(stats.t.sf((out["effect"] + margin) / se, out["n"] - 1),
                             stats.t.sf((margin - out["effect"]) / se, out["n"] - 1)))
    if out["floor"]:
        out["verdict"] = FLOOR
    elif out["n"] >= 2 and -margin < tost["low"] and tost["high"] < margin:
        out["verdict"] = EQUIVALENT
    else:
        out["verdict"] = FAILS if _verdict(out) in (HOLDS, FAILS) else INCONCLUSIVE
    return out


def trend(table: pd.DataFrame, claim: str, metric: str, x: str, cells: list[dict], chance: float,
          sign: float = +1, **kw) -> dict:
    """A monotone trend: per seed, the least-squares slope of `metric` on column `x` over the runs of
    `cells` (one per x value), times `sign` (the claim holds when it is positive). Effect in points
    per unit of x."""
    runs = pd.concat([select(table, where) for where in cells])
    if metric not in runs or runs[metric].isna().all():
        raise MissingCell(f"no run in the cells {[label(c) for c in cells]} has {metric!r}")
    slopes = runs.groupby("seed").apply(lambda r: sign * np.polyfit(r[x], r[metric], 1)[0] if r[x].nunique() > 1
                                        else math.nan, include_groups=False)
    out = {"test": claim, "metric": metric, **interval(slopes), "unit": f"points per unit of {x}"}
    return _judged(out, table, cells, chance, **kw)


def linearity(table: pd.DataFrame, claim: str, x: str, y: str, threshold: float = 0.9) -> dict:
    """"Roughly linear": per seed, Pearson r of `y` on `x` over that seed's runs; holds when the 95%
    interval over seeds lies above `threshold`, does not hold when below it."""
    r = table.groupby("seed").apply(lambda s: s[x].corr(s[y]) if len(s) > 2 else math.nan, include_groups=False)
    out = {"test": f"{claim} (Pearson r over each seed's runs above {threshold:g})", "metric": f"r({y}, {x})",
           **interval(r - threshold), "unit": f"r - {threshold:g}", "floor": [], "runs": len(table)}
    out["verdict"] = _verdict(out)
    return out


def effective_robustness(table: pd.DataFrame, x: str = "zero-shot", y: str = "shifts") -> pd.Series:
    """Each run's `y` above the least-squares line of `y` on `x` fitted through every run of the table
    (Taori et al. 2020): shift accuracy beyond what its in-distribution accuracy predicts."""
    slope, intercept = np.polyfit(table[x], table[y], 1)
    return table[y] - (slope * table[x] + intercept)


def frontier(table: pd.DataFrame, claim: str, chance: float, **kw) -> dict:
    """The compute-optimal tower grows with compute: per seed, the lower envelope of zero-shot error
    over training PFLOPs through that seed's runs (towers differing in size only); the effect is
    log2 of the train GFLOPs per sample of the tower on the envelope at the most compute over that at
    the least. Holds when above zero (a larger tower takes over the frontier)."""
    def growth(runs: pd.DataFrame) -> float:
        env = lower_envelope(runs.assign(error=100 - runs["zero-shot"]).to_dict("records"), "pflops", "error")
        return math.log2(env[-1]["gflops_per_sample"] / env[0]["gflops_per_sample"])
    per_seed = table.groupby("seed").apply(growth, include_groups=False)
    out = {"test": claim, "metric": "zero-shot error", **interval(per_seed), "unit": "log2 GFLOPs/sample"}
    return _judged(out, table, [{"model": m} for m in table["model"].unique()], chance, **kw)


def frontier_points(table: pd.DataFrame, kind: str = "run kind") -> pd.DataFrame:
    """The compute frontier over seed means: one row per configuration (a tidy table's runs that
    differ only in seed: its `config` key), with its mean zero-shot error and 95% t-interval over seeds (`low`,
    `high`, `n`), its compute in PFLOPs (`compute`: training plus the SimCLR pre-training its
    image tower needed), what pre-training is not counted (`uncounted`), and `on_frontier`: on the
    lower envelope of mean error over compute, with `gain` [`gain_low`, `gain_high`]: the error
    a frontier point saves over the frontier point before it, paired by seed (95% t-interval over
    the seeds both ran). `kind` names the configuration's tower and strategy."""
    keys = [kind, "samples", "pool", "image_size", *STRATEGY_FIELDS]
    runs = table.assign(error=100 - table["zero-shot"], compute=table["pflops"] + table["pretrain_pflops"])
    rows = []
    for _, group in runs.groupby("config", sort=False):
        ci = interval(group["error"])
        rows.append({**group.iloc[0][keys].to_dict(), "error": ci["effect"], "low": ci["low"], "high": ci["high"],
                     "n": ci["n"], "compute": group["compute"].mean(), "uncounted": group["uncounted"].iloc[0],
                     "_errors": group.set_index("seed")["error"]})
    # at equal compute only the best configuration can be on the envelope: ties meet it best first
    env = lower_envelope(sorted((r for r in rows if math.isfinite(r["compute"])), key=lambda r: r["error"]),
                         "compute", "error")
    for r in rows:
        r.update(on_frontier=False, gain=math.nan, gain_low=math.nan, gain_high=math.nan)
    for before, r in zip(env, env[1:]):  # each step along the frontier: error saved, paired by seed
        gain = interval((before["_errors"] - r["_errors"]).dropna())
        r.update(gain=gain["effect"], gain_low=gain["low"], gain_high=gain["high"])
    for r in env:
        r["on_frontier"] = True
    out = pd.DataFrame([{k: v for k, v in r.items() if k != "_errors"} for r in rows])
    return out.sort_values(["compute", "error"], ignore_index=True)


def throughput(rows: pd.DataFrame, claim: str, faster: str, reference: str) -> dict:
    """Samples/s of strategy `faster` above `reference`, in % of the reference in the same benchmark
    round (benchmarks/strategies.py rows: strategy, round, samples_per_s), t-interval over rounds."""
    by = rows.pivot_table(index="round", columns="strategy", values="samples_per_s")
    missing = [name for name in (faster, reference) if name not in by]
    if missing:
        raise MissingCell(f"claim {claim!r}: no benchmark rows of {missing}; the rows hold {sorted(by.columns)}")
    gain = 100 * (by[faster] / by[reference] - 1)
    v = {"test": claim, "metric": "samples/s", "unit": "%", "over": "benchmark rounds", **interval(gain),
         "floor": [], "runs": 2 * len(gain)}
    return {**v, "verdict": _verdict(v)}


def beyond(claim: str, proxy: dict | None = None) -> dict:
    """A claim about a regime our grid does not reach: verdict *beyond our scale*, whatever the
    `proxy` (the nearest test inside our range, shown for what it is) says."""
    keep = ("effect", "sd", "n", "low", "high", "metric", "unit", "runs", "floor")
    base = {"effect": math.nan, "sd": math.nan, "n": 0, "low": math.nan, "high": math.nan, "metric": "–", "runs": 0,
            "floor": []}
    return {**base, **{k: proxy[k] for k in keep if proxy and k in proxy}, "test": claim, "p": math.nan,
            "verdict": BEYOND, "proxy": proxy}


# ---- how pages print verdicts ----

def effect_text(v: dict) -> str:
    """'+3.1 points [1.2, 5.0] (95% t-interval over seeds, n=3)'."""
    unit, over = v.get("unit", "points"), v.get("over", "seeds")
    if v["n"] < 1 or math.isnan(v["effect"]):
        return "no effect measured in our range"
    if v["n"] < 2:
        return f"{v['effect']:+.2f} {unit} (n={v['n']}: no interval)"
    return f"{v['effect']:+.2f} {unit} [{v['low']:+.2f}, {v['high']:+.2f}] (95% t-interval over {over}, n={v['n']})"


def sentence(v: dict) -> str:
    """The verdict as a page prints it."""
    name = v.get("claim", v["test"])
    tested = f" Tested as: {v['test']}." if v.get("claim") and v["test"] != v["claim"] else ""
    floor = f" At chance: {'; '.join(v['floor'])}." if v.get("floor") else ""
    proxy = " (nearest test in our range; the paper's regime lies beyond it)" if v["verdict"] == BEYOND and v.get("proxy") else ""
    words = f" (“{v['quote']}”, {v['source']})" if v.get("quote") and not v.get("ours") else ""
    return f"*{name}*{words} — **{v['verdict']}** ({v['metric']}: {effect_text(v)}{proxy}).{tested}{floor}"


def show(verdicts: list[dict], note: str = "") -> Markdown:
    """A chapter's claims as its page shows them: the table of claims (displayed), then one
    sentence per claim and `note` (e.g. prose.floor_note) as the cell's output."""
    display(table_of(verdicts))
    return Markdown("\n\n".join(sentence(v) for v in verdicts) + (f"\n\n{note}" if note else ""))


def table_of(verdicts: list[dict], parts: bool = True) -> pd.DataFrame:
    """Claims as rows (with `parts`, each part of a several-part claim as an indented row below it):
    claim, test, metric, effect, 95% interval, n, cells at chance, verdict."""
    def row(v: dict, indent: str = "") -> dict:
        unit = v.get("unit", "points")
        measured = v["n"] >= 1 and not math.isnan(v["effect"])
        return {"claim": indent + v.get("claim", v["test"]), "test": v["test"], "metric": v["metric"],
                "effect": f"{v['effect']:+.2f} {unit}" if measured else "–",
                "95% interval": f"[{v['low']:+.2f}, {v['high']:+.2f}]" if v["n"] >= 2 else "–",
                "n": f"{v['n']} {v.get('over', 'seeds')}" if measured else "–",
                "at chance": "; ".join(v.get("floor", [])) or "–", "verdict": v["verdict"]}
    rows = []
    for v in verdicts:
        rows.append(row(v))
        if parts:
            rows += [row({**p, "claim": p["test"]}, "  ↳ ") for p in v.get("parts", [])]
    return pd.DataFrame(rows)
