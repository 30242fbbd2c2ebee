"""Mean, spread and n over seeds, and seed-paired differences, as chapters tabulate them.

    stats.aggregate(table, ["model", "samples"])        # mean/std/min/max/n per group
    stats.difference(table, "zero-shot", "epochs", 1, 4, by=["pool"])
    stats.pm(3.1, 0.4, 3)                               # '+3.1 ± 0.4 (n=3)'
    stats.linear_fit(table, "zero-shot", "shifts")     # slope, intercept, r over runs
    stats.by_strategy(table)                           # aggregate per strategy, in grid order

The 95% intervals and verdicts of the papers' claims are clipstudy/verdicts.py's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipstudy.study import METRICS


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


def linear_fit(table: pd.DataFrame, x: str, y: str) -> dict:
    """Least-squares line of `y` on `x` over the table's rows (runs): slope, intercept, Pearson r, n."""
    slope, intercept = np.polyfit(table[x], table[y], 1)
    r = np.corrcoef(table[x], table[y])[0, 1]
    return {"slope": float(slope), "intercept": float(intercept), "r": float(r), "n": len(table)}


def by_strategy(table: pd.DataFrame) -> pd.DataFrame:
    """`aggregate` over seeds of each strategy, in the order the table (the grid) lists them."""
    order = list(dict.fromkeys(table["strategy"]))
    return aggregate(table, ["strategy"]).set_index("strategy").loc[order].reset_index()


def strategy_costs(table: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Each strategy's zero-shot mean, sd and n (`summary`, from by_strategy) beside its mean
    training GFLOPs per sample and training seconds."""
    cost = table.groupby("strategy")[["gflops_per_sample", "train_seconds"]].mean()
    cost.columns = ["train GFLOPs / sample", "train s"]
    return summary.set_index("strategy")[["zero-shot_mean", "zero-shot_std", "n"]].join(cost).round(3)
