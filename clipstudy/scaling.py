"""Saturating power laws of error against compute, fitted per arm (e.g. per tower) on seed means,
checked on a budget the fit did not see, and crossed with each other.

    fits = scaling.fit_all(table, by="model", x="samples", metric="zero-shot", chance=1.0)
    fits["vit-s-8"]["params"]    # E_inf, A, alpha: the fit on every budget, each with a 95% interval
    fits["vit-s-8"]["holdout"]   # fitted without the largest budget: predicted vs measured there
    scaling.crossover(fits["vit-ti-8"], fits["vit-b-8"])  # samples where the larger's error falls below

The law is E(C) = E_inf + A * (C / C0)^-alpha: E the error in points (100 - the metric in %), C
samples seen (or training PFLOPs), C0 the smallest budget fitted (Cherti et al. 2023, "Reproducible
scaling laws for contrastive language-image learning"). It is fitted by least squares
(scipy.optimize.curve_fit) to the mean over seeds at each budget. Intervals come from a bootstrap
over seeds: seeds drawn with replacement, the same draw at every budget and for every arm (runs of
one seed are paired), the law refitted to each draw's means. With 5 seeds the bootstrap's
percentiles are too narrow (a resample of 5 holds ~3 distinct seeds), so a 95% interval is the
estimate +- Student's t (n - 1 degrees of freedom, as the book's other intervals) x the bootstrap's
standard deviation x sqrt(n / (n - 1)); a crossover's, the same on log samples.

A budget whose mean sits within `margin` points of chance is left out (named in `floor`): a run at
chance has not begun to learn, and no power law describes the plateau before learning. A fit needs
`MIN_BUDGETS` budgets above chance: three to fit three parameters, one more to check it. The check
fits the smaller budgets alone and predicts the largest; it *fails* when the 95% interval of
(predicted - measured) over the bootstrap excludes zero, and a failed fit is reported as failed,
and its extrapolations are not used.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

from clipstudy.verdicts import interval

MIN_BUDGETS = 4  # three to fit E_inf, A, alpha; one held out to check the fit
BOOT = 1000  # bootstrap draws over seeds
# The deeper laptop grids' runs (clipstudy/chapters.py's LAWS), recorded by benchmarks/laws.py
RECORDED = Path("benchmarks/results/laws-cpu.jsonl")
OK, FAILED, TOO_FEW = "fits its held-out budget", "fails its held-out budget", "too few budgets above chance"


def recorded(path: str | Path | None = None, chapter: str | None = None) -> pd.DataFrame:
    """The recorded runs of the deeper laptop grids (benchmarks/laws.py), one row per run with
    study.tidy's columns and `chapter`; only `chapter`'s when given. Empty where none are recorded.
    `path`: default RECORDED."""
    path = Path(path or RECORDED)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []
    table = pd.DataFrame(rows)
    if chapter is not None and len(table):
        table = table[table["chapter"] == chapter].reset_index(drop=True)
    return table


def law(c, e_inf: float, a: float, alpha: float):
    """E(c) = e_inf + a * c^-alpha, with c in units of the smallest budget fitted."""
    return e_inf + a * np.power(c, -alpha)


def _fit(c: np.ndarray, e: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """(e_inf, a, alpha) by bounded least squares; NaNs when it does not converge. Bounds: an
    error floor between 0 and the smallest error seen, a >= 0, 0 <= alpha <= 3. `start`: where the
    search begins (a bootstrap draw starts from the fit on the means: the same optimum, ~3x fewer
    steps), else from the data."""
    floor = float(np.min(e))
    if start is None or not np.all(np.isfinite(start)):
        start = (max(floor - 1.0, 0.0), max(float(e[0] - floor), 1e-3) + 1.0, 0.5)
    start = np.clip(start, [0.0, 0.0, 0.0], [floor, np.inf, 3.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(law, c, e, p0=start, bounds=([0.0, 0.0, 0.0], [floor, np.inf, 3.0]), maxfev=20_000)
        return params
    except (RuntimeError, ValueError):
        return np.full(3, np.nan)


def _errors(runs: pd.DataFrame, x: str, metric: str) -> pd.DataFrame:
    """seed x budget table of errors (100 - metric), seeds missing a budget dropped."""
    table = runs.assign(error=100.0 - runs[metric]).pivot_table(index="seed", columns=x, values="error")
    return table.dropna()


def _draws(seeds: int, boot: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, seeds, size=(boot, seeds))


def fit(runs: pd.DataFrame, x: str = "samples", metric: str = "zero-shot", chance: float = 0.0,
        margin: float = 1.0, draws: np.ndarray | None = None, boot: int = BOOT, seed: int = 0) -> dict:
    """The law fitted to one arm's runs (one row per run: `x`, `seed`, `metric` in %). -> a dict:
    budgets (fitted), floor (left out, at chance), n (seeds), status (OK, FAILED or TOO_FEW), params
    {name: {value, low, high}}, holdout {budget, predicted, measured (each value, low, high), error
    (predicted - measured: value, low, high)}, and `boot` (the bootstrap's parameter draws, for
    `predict` and `crossover`). `draws` (draw x seed indices) pairs several arms' bootstraps."""
    errors = _errors(runs, x, metric)
    every = {b: errors[b].to_numpy() for b in errors.columns}  # for the figure, at chance too
    means = errors.mean()
    floor = [b for b in errors.columns if abs(100.0 - means[b] - chance) <= margin]
    errors = errors.drop(columns=floor)
    budgets = [b for b in errors.columns]
    out = {"x": x, "metric": metric, "budgets": budgets, "floor": floor, "n": len(errors), "params": {},
           "holdout": None, "boot": None, "c0": budgets[0] if budgets else math.nan, "errors": every}
    if len(budgets) < MIN_BUDGETS or len(errors) < 2:
        return {**out, "status": TOO_FEW}
    e = errors.to_numpy()  # seed x budget
    c = np.asarray(budgets, dtype=float) / budgets[0]
    if draws is None:
        draws = _draws(len(e), boot, np.random.default_rng(seed))
    draws = draws[:, :len(e)] % len(e)
    whole = _fit(c, e.mean(0))
    boot_all = np.array([_fit(c, e[d].mean(0), whole) for d in draws])
    n = len(e)
    bounds = ((0.0, float(e.mean(0).min())), (0.0, math.inf), (0.0, 3.0))  # as `_fit`'s: no interval beyond them
    for i, name in enumerate(("E_inf", "A", "alpha")):
        span = _spread(whole[i], boot_all[:, i], n)
        out["params"][name] = {"value": float(whole[i]), "low": max(span["low"], bounds[i][0]),
                               "high": min(span["high"], bounds[i][1])}
    # held-out check: fit the smaller budgets, predict the largest, per draw
    head = _fit(c[:-1], e[:, :-1].mean(0))
    boot_head = np.array([_fit(c[:-1], e[d][:, :-1].mean(0), head) for d in draws])
    pred = law(c[-1], *boot_head.T)
    measured = np.array([e[d][:, -1].mean() for d in draws])
    gap = pred - measured
    measured_ci = interval(e[:, -1])
    predicted, error = float(law(c[-1], *head)), float(law(c[-1], *head) - e[:, -1].mean())
    out["holdout"] = {
        "budget": budgets[-1], "fitted_on": budgets[:-1],
        "predicted": {"value": predicted, **_spread(predicted, pred, n)},
        "measured": {"value": measured_ci["effect"], "low": measured_ci["low"], "high": measured_ci["high"]},
        "error": {"value": error, **_spread(error, gap, n)}}
    passed = out["holdout"]["error"]["low"] <= 0 <= out["holdout"]["error"]["high"]
    return {**out, "status": OK if passed else FAILED, "boot": boot_all, "whole": whole}


def _spread(value: float, draws: np.ndarray, n: int, confidence: float = 0.95) -> dict:
    """{low, high}: `value` +- t(n-1) x the draws' standard deviation x sqrt(n / (n-1)) (NaN draws,
    fits that did not converge, left out)."""
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if n < 2 or len(draws) < 2:
        return {"low": math.nan, "high": math.nan}
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * draws.std(ddof=1) * math.sqrt(n / (n - 1))
    return {"low": float(value - half), "high": float(value + half)}


def fit_all(table: pd.DataFrame, by: str = "model", boot: int = BOOT, seed: int = 0, **kw) -> dict[str, dict]:
    """`fit` for each value of `by`, with one bootstrap draw of seeds shared by every arm (paired)."""
    seeds = table["seed"].nunique()
    draws = _draws(seeds, boot, np.random.default_rng(seed))
    return {arm: fit(runs, draws=draws, **kw) for arm, runs in table.groupby(by, sort=False)}


def predict(f: dict, budget: float) -> dict:
    """The fitted error at `budget` (value, low, high over the bootstrap); `extrapolated` when
    beyond the largest budget fitted. NaNs for a fit that failed its check or could not be made."""
    if f["status"] != OK:
        return {"value": math.nan, "low": math.nan, "high": math.nan, "extrapolated": True}
    c = budget / f["c0"]
    value = float(law(c, *f["whole"]))
    return {"value": value, **_spread(value, law(c, *f["boot"].T), f["n"]),
            "extrapolated": bool(budget > max(f["budgets"]))}


def crossover(small: dict, large: dict, up_to: float = 1e4, names: tuple[str, str] = ("smaller", "larger")) -> dict:
    """The budget beyond which `large`'s fitted error stays below `small`'s (e.g. a larger tower
    overtaking a smaller one), per bootstrap draw (paired by `fit_all`), searched on a log grid from
    the smallest budget fitted to `up_to` times the largest. -> value (the fit on the means), low,
    high (95%, see the module's note; the low end, where fewer than half the draws cross, is the
    earliest draw's), share_crossing
    (the draws that do; the interval is unbounded above unless 97.5% do), already (large below small at the smallest budget, on the means),
    extrapolated (the value beyond the largest budget measured), status (why not, when none, naming
    each arm as `names` does)."""
    if small["status"] != OK or large["status"] != OK:
        bad = [f"{name}: {f['status']}" for name, f in zip(names, (small, large)) if f["status"] != OK]
        return {"value": math.nan, "low": math.nan, "high": math.nan, "share_crossing": math.nan,
                "already": False, "extrapolated": True, "status": "; ".join(bad)}
    lo_c = max(min(small["budgets"]), min(large["budgets"]))
    hi_c = up_to * max(max(small["budgets"]), max(large["budgets"]))
    grid = np.geomspace(lo_c, hi_c, 2_000)

    def where(ps: np.ndarray, pl: np.ndarray) -> float:
        diff = law(grid / large["c0"], *pl) - law(grid / small["c0"], *ps)  # < 0: the larger is better
        if np.any(np.isnan(diff)):
            return math.nan
        above = np.nonzero(diff >= 0)[0]  # the last budget where the larger is not yet better
        if len(above) == 0:
            return float(grid[0])
        return float(grid[above[-1] + 1]) if above[-1] + 1 < len(grid) else math.inf

    value = where(small["whole"], large["whole"])
    per_draw = np.array([where(ps, pl) for ps, pl in zip(small["boot"], large["boot"])])
    per_draw = per_draw[~np.isnan(per_draw)]
    share = float(np.mean(np.isfinite(per_draw))) if len(per_draw) else math.nan
    if math.isfinite(value) and share > 0.5:  # on log samples; unbounded above when draws miss the range
        span = _spread(math.log(value), np.log(per_draw[np.isfinite(per_draw)]), min(small["n"], large["n"]))
        low, high = math.exp(span["low"]), (math.exp(span["high"]) if share >= 0.975 else math.inf)
    else:
        low, high = (float(np.min(per_draw)) if len(per_draw) else math.nan), math.inf
    measured = max(max(small["budgets"]), max(large["budgets"]))
    return {"value": value, "low": float(low), "high": float(high), "share_crossing": share,
            "already": value == grid[0], "extrapolated": bool(value > measured), "status": "fitted",
            "range": (float(lo_c), float(hi_c))}


def curves(fits: dict[str, dict], up_to: float, points: int = 60) -> tuple[list[dict], list[dict]]:
    """Tidy rows for plots.fitted_laws: each arm's measured mean error with its 95% t-interval at
    every budget (those at chance too), and its fitted curve with 95% band from its smallest budget
    fitted to `up_to` (arms whose fit failed or could not be made: points only)."""
    measured, fitted = [], []
    for arm, f in fits.items():
        for budget, errors in f["errors"].items():
            ci = interval(errors)
            measured.append({"arm": arm, f["x"]: budget, "value": ci["effect"], "low": ci["low"], "high": ci["high"]})
        if f["status"] == OK:
            for budget in np.geomspace(f["budgets"][0], up_to, points):
                fitted.append({"arm": arm, f["x"]: float(budget), **predict(f, float(budget))})
    return measured, fitted


def _num(value: float) -> str:
    """Samples with thousands separators; PFLOPs (small) with three significant digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def crossover_text(cross: dict, later: str = "the larger") -> str:
    """'1,234,567 [412,000, 9,800,000] (extrapolated)', or why there is none (`later`: the arm that
    overtakes, as the sentence names it)."""
    if cross["status"] != "fitted":
        return f"no fit ({cross['status']})"
    if cross["already"]:
        return f"{later} is ahead from the smallest budget fitted"
    if math.isinf(cross["value"]):
        return f"none up to {_num(cross['range'][1])} ({100 * cross['share_crossing']:.0f}% of bootstrap draws cross)"
    high = "no upper bound" if math.isinf(cross["high"]) else _num(cross["high"])
    return (f"{_num(cross['value'])} [{_num(cross['low'])}, {high}]"
            + (" (extrapolated)" if cross["extrapolated"] else " (within the grid)"))


def crossover_table(fits: dict[str, dict], order: list[str] | None = None, pairs: list[tuple[str, str]] | None = None,
                    columns: tuple[str, str] = ("smaller", "larger"), paper: str = "") -> pd.DataFrame:
    """Where the second arm's fitted error falls below the first's, with its 95% interval, or why no
    crossover is given: for each pair of arms in `order` (smaller first), or for the given `pairs`
    (e.g. (the arm ahead at first, the arm the paper says overtakes it)); `columns` name the two.
    `paper`: where the paper saw the crossover, a column beside ours."""
    pairs = pairs if pairs is not None else [(a, b) for i, a in enumerate(order) for b in order[i + 1:]]
    rows = []
    for first, second in pairs:
        cross = crossover(fits[first], fits[second], names=(first, second))
        rows.append({columns[0]: first, columns[1]: second,
                     f"crossover ({fits[first]['x']})": crossover_text(cross, later=second),
                     **({"paper": paper} if paper else {})})
    return pd.DataFrame(rows)


def check_note(fits: dict[str, dict]) -> str:
    """A sentence on the held-out checks: each arm whose law failed it, and which way it missed
    (error at the largest budget below the prediction: it fell faster than the law allows, as in
    the onset of learning, before the saturating regime the law describes)."""
    failed = {arm: f["holdout"] for arm, f in fits.items() if f["status"] == FAILED}
    fitted = [arm for arm, f in fits.items() if f["status"] in (OK, FAILED)]
    if not fitted:
        return "No arm has enough budgets above chance for a law."
    if not failed:
        return f"Every law fitted ({', '.join(f'`{a}`' for a in fitted)}) predicts its held-out budget."
    parts = [f"`{arm}` measured {h['measured']['value']:.1f} [{h['measured']['low']:.1f}, {h['measured']['high']:.1f}] "
             f"at {_num(h['budget'])} where its law predicted {h['predicted']['value']:.1f} "
             f"[{h['predicted']['low']:.1f}, {h['predicted']['high']:.1f}]" for arm, h in failed.items()]
    faster = [arm for arm, h in failed.items() if h["measured"]["value"] < h["predicted"]["value"]]
    return (f"{len(failed)} of {len(fitted)} laws fail their held-out check and are not used (error, points): "
            + "; ".join(parts) + "."
            + (f" The error of {', '.join(f'`{a}`' for a in faster)} fell faster than its law allows: the onset "
               "of learning, before the saturating regime a power law describes." if faster else ""))


def params_table(fits: dict[str, dict]) -> pd.DataFrame:
    """One row per arm: budgets fitted (and at chance), seeds, E_inf / A / alpha with intervals, the
    held-out check (predicted vs measured error at the largest budget) and its status."""
    rows = []
    for arm, f in fits.items():
        row = {"arm": arm, "budgets fitted": ", ".join(_num(b) for b in f["budgets"]),
               "at chance (left out)": ", ".join(_num(b) for b in f["floor"]) or "none", "seeds": f["n"]}
        for name, p in f["params"].items():
            row[name] = f"{p['value']:.3g} [{p['low']:.3g}, {p['high']:.3g}]"
        h = f["holdout"]
        if h:
            row["held out"] = _num(h["budget"])
            row["predicted error"] = f"{h['predicted']['value']:.1f} [{h['predicted']['low']:.1f}, {h['predicted']['high']:.1f}]"
            row["measured error"] = f"{h['measured']['value']:.1f} [{h['measured']['low']:.1f}, {h['measured']['high']:.1f}]"
        row["fit"] = f["status"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm")
