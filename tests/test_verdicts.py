"""Verdicts from seed-paired contrasts: the t-interval and p, the six verdicts, the floor rule, and each kind
of test (difference, best among, equivalence, trend, linearity, compute frontier, throughput, parts)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clipstudy import chapters, plots, prose, study, verdicts


def _table(a: list[float], b: list[float]) -> pd.DataFrame:
    rows = [{"seed": s, "arm": "a", "zero-shot": v} for s, v in enumerate(a)]
    rows += [{"seed": s, "arm": "b", "zero-shot": v} for s, v in enumerate(b)]
    return pd.DataFrame(rows)


B_OVER_A = [(+1, {"arm": "b"}), (-1, {"arm": "a"})]


def test_interval_is_students_t_over_seeds_and_p_the_one_sample_t_test():
    v = verdicts.interval([1.0, 2.0, 4.0])
    half = stats.t.ppf(0.975, 2) * pd.Series([1.0, 2.0, 4.0]).std() / math.sqrt(3)
    assert v["n"] == 3 and v["effect"] == pytest.approx(7 / 3)
    assert (v["low"], v["high"]) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert v["p"] == pytest.approx(stats.ttest_1samp([1.0, 2.0, 4.0], 0).pvalue)
    assert math.isnan(verdicts.interval([5.0])["low"]) and math.isnan(verdicts.interval([5.0])["p"])


@pytest.mark.parametrize("a, b, expected", [
    ([10, 11, 12], [20, 22, 21], "holds"),            # b - a clearly above zero
    ([20, 22, 21], [10, 11, 12], "does not hold"),    # clearly below
    ([10, 20, 15], [15, 12, 16], "inconclusive"),     # interval spans zero
    ([1.2, 0.5, 1.8], [1.5, 1.9, 0.4], "floor-limited"),  # every run within 1 point of chance (1%)
    ([1.2, 0.5, 1.8], [20, 22, 21], "floor-limited"),     # one arm at chance is enough: its gain is a floor
    ([10], [20], "inconclusive"),                      # one seed: no interval
])
def test_verdicts(a, b, expected):
    v = verdicts.test(_table(a, b), "b beats a", "zero-shot", B_OVER_A, chance=1.0)
    assert v["verdict"] == expected
    assert v["n"] == len(a)
    assert expected in verdicts.sentence(v) and "b beats a" in verdicts.sentence(v)


def test_floor_limited_names_the_cells_at_chance():
    v = verdicts.test(_table([1.2, 0.5, 1.8], [20, 22, 21]), "b beats a", "zero-shot", B_OVER_A, chance=1.0)
    assert v["floor"] == ["arm a"] and "At chance: arm a." in verdicts.sentence(v)
    assert verdicts.table_of([v]).loc[0, "at chance"] == "arm a"
    assert v["effect"] == pytest.approx(21 - 7 / 6)  # the effect is still shown


def test_contrast_pairs_by_seed_and_drops_unpaired():
    t = _table([1, 2, 3], [5, 7])  # seed 2 has no `b` run
    assert verdicts.contrast(t, "zero-shot", B_OVER_A).to_dict() == {0: 4, 1: 5}


def test_difference_of_differences_and_ambiguous_cells():
    rows = [{"seed": s, "pool": p, "epochs": e, "zero-shot": v}
            for s in range(3) for (p, e, v) in [(1, 1, 5), (1, 4, 6 + s), (9, 1, 10), (9, 4, 20 + s)]]
    t = pd.DataFrame(rows)
    terms = [(+1, {"pool": 9, "epochs": 4}), (-1, {"pool": 9, "epochs": 1}),
             (-1, {"pool": 1, "epochs": 4}), (+1, {"pool": 1, "epochs": 1})]
    assert verdicts.contrast(t, "zero-shot", terms).tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match="several runs of one seed"):
        verdicts.contrast(t, "zero-shot", [(+1, {"pool": 9})])
    v = verdicts.test(t, "c", "zero-shot", terms, chance=1.0)
    assert v["verdict"] == "holds" and v["p"] == 0.0 and v["runs"] == 12  # no spread: the interval is a point
    assert verdicts.table_of([v]).loc[0, "at chance"] == "–"


def test_a_missing_cell_is_an_error_that_names_it_not_an_inconclusive_verdict():
    rows = [{"seed": s, "pool": p, "epochs": e, "zero-shot": 10.0 + p + e + s, "shifts": 3.0 + e + s}
            for s in range(3) for p, e in ((2, 1.0), (2, 4.0), (8, 1.0), (8, 4.0))]
    table = pd.DataFrame(rows).query("pool != 8 or epochs != 1")
    with pytest.raises(verdicts.MissingCell, match=r"cell pool 8, epochs 1 has 'zero-shot' \(runs in the cell: 0\)"):
        verdicts.test(table, "c", "zero-shot", [(+1, {"pool": 8, "epochs": 1.0})], chance=1.0)
    with pytest.raises(verdicts.MissingCell, match="no 'shifts' column"):
        verdicts.test(pd.DataFrame(rows).drop(columns="shifts"), "c", "shifts", [(+1, {"pool": 2})], chance=1.0)
    with pytest.raises(verdicts.MissingCell, match=r"no column \['augment'\]"):
        verdicts.test(pd.DataFrame(rows), "c", "zero-shot", [(+1, {"augment": "none"})], chance=1.0)


def _arms(scores: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"arm": arm, "seed": s, "zero-shot": v} for arm, vs in scores.items() for s, v in enumerate(vs)])


def test_best_among_needs_every_rival_and_reports_the_closest():
    t = _arms({"x": [30, 31, 32], "y": [20, 21, 22], "z": [27, 28, 29.5]})
    v = verdicts.best_among(t, "x best", "zero-shot", {"arm": "x"}, [{"arm": "y"}, {"arm": "z"}], chance=1.0)
    assert v["verdict"] == "holds" and v["effect"] == pytest.approx(17 / 6)  # the closest rival, z: 3, 3, 2.5
    assert [p["test"] for p in v["parts"]] == ["arm x above arm y", "arm x above arm z"]
    assert v["p"] == pytest.approx(max(p["p"] for p in v["parts"]))
    rows = verdicts.table_of([v])
    assert len(rows) == 3 and rows.loc[1, "claim"].startswith("  ↳ ")
    # one rival above: does not hold; one rival level: inconclusive
    above = _arms({"x": [30, 31, 32], "y": [20, 21, 22], "z": [35, 36, 36]})
    level = _arms({"x": [30, 31, 32], "y": [20, 21, 22], "z": [31, 30, 32.5]})
    pick = lambda t: verdicts.best_among(t, "x best", "zero-shot", {"arm": "x"}, [{"arm": "y"}, {"arm": "z"}], 1.0)  # noqa: E731
    assert pick(above)["verdict"] == "does not hold" and pick(level)["verdict"] == "inconclusive"
    worst = verdicts.best_among(t, "y worst", "zero-shot", {"arm": "y"}, [{"arm": "x"}, {"arm": "z"}], 1.0, worst=True)
    assert worst["verdict"] == "holds" and worst["effect"] == pytest.approx(43 / 6)  # z - y: 7, 7, 7.5


@pytest.mark.parametrize("b, expected", [
    ([10.2, 9.9, 10.1], "equivalent"),      # within +-2 points, tightly
    ([15, 16, 15.5], "does not hold"),      # clearly apart
    ([4, 16, 11], "inconclusive"),          # too noisy to say either
])
def test_equivalence_is_two_one_sided_tests_with_a_stated_margin(b, expected):
    v = verdicts.equivalence(_table([10, 10, 10], b), "b matches a", "zero-shot", B_OVER_A, chance=1.0, margin=2.0)
    assert v["verdict"] == expected and "within ±2 points" in v["test"]
    if expected == "equivalent":
        d = np.array(b) - 10
        se = d.std(ddof=1) / math.sqrt(3)
        assert v["p"] == pytest.approx(max(stats.t.sf((d.mean() + 2) / se, 2), stats.t.sf((2 - d.mean()) / se, 2)))


def test_trend_is_the_per_seed_slope():
    rows = [{"seed": s, "top": top, "zero-shot": 50 - 0.2 * top + s * (top == 100)} for s in range(3) for top in (20, 60, 100)]
    v = verdicts.trend(pd.DataFrame(rows), "falls", "zero-shot", "top", [{"top": t} for t in (20, 60, 100)], 1.0, sign=-1)
    slopes = [-np.polyfit([20, 60, 100], [50 - 0.2 * t + s * (t == 100) for t in (20, 60, 100)], 1)[0] for s in range(3)]
    assert v["effect"] == pytest.approx(np.mean(slopes)) and v["verdict"] == "holds" and v["n"] == 3


def test_linearity_against_a_threshold():
    x = np.array([10, 20, 30, 40, 50, 60.0])
    line = pd.DataFrame([{"seed": s, "zero-shot": xi, "shifts": 0.5 * xi + s + 0.1 * (i % 2)} for s in range(3)
                         for i, xi in enumerate(x)])
    bent = pd.DataFrame([{"seed": s, "zero-shot": xi, "shifts": (xi - 35) ** 2 + s} for s in range(3) for xi in x])
    assert verdicts.linearity(line, "linear", "zero-shot", "shifts")["verdict"] == "holds"
    assert verdicts.linearity(bent, "linear", "zero-shot", "shifts")["verdict"] == "does not hold"


def test_effective_robustness_is_the_residual_from_the_line_through_every_run():
    t = pd.DataFrame({"zero-shot": [10.0, 20, 30, 40], "shifts": [5.0, 11, 15, 19]})
    er = verdicts.effective_robustness(t)
    slope, intercept = np.polyfit(t["zero-shot"], t["shifts"], 1)
    assert er.tolist() == pytest.approx((t["shifts"] - slope * t["zero-shot"] - intercept).tolist())
    assert er.sum() == pytest.approx(0.0, abs=1e-9)


def test_frontier_measures_the_growth_of_the_compute_optimal_tower():
    # per seed: the small tower (0.1 GFLOPs) wins at low compute, the large (0.8) at high compute
    rows = [{"seed": s, "model": m, "gflops_per_sample": g, "pflops": g * n, "zero-shot": z + s}
            for s in range(3) for m, g, n, z in (("small", 0.1, 1, 20), ("small", 0.1, 8, 25), ("large", 0.8, 1, 10),
                                                 ("large", 0.8, 8, 40))]
    v = verdicts.frontier(pd.DataFrame(rows), "grows", chance=1.0)
    assert v["effect"] == pytest.approx(3.0) and v["verdict"] == "holds" and v["unit"] == "log2 GFLOPs/sample"
    flat = pd.DataFrame(rows).assign(**{"zero-shot": lambda t: np.where(t["model"] == "large", 5.0, 30.0) + t["seed"]})
    assert verdicts.frontier(flat, "grows", chance=1.0)["effect"] == 0.0


def test_frontier_points_average_seeds_and_pair_each_step():
    # three configurations x 3 seeds: cheap and poor, costly and better (by 10 points, seed-paired),
    # a third as costly but no better; SimCLR pre-training adds to one's compute
    rows = [{"seed": s, "config": k, "run kind": k, "samples": n, "pool": n, "image_size": 32, **study.STRATEGY_DEFAULTS,
             "pflops": c, "pretrain_pflops": pre, "uncounted": u, "zero-shot": z + s}
            for s in range(3) for k, n, c, pre, u, z in (("small", 100, 1.0, 0.0, "", 20.0),
                                                         ("large", 100, 8.0, 0.0, "", 30.0),
                                                         ("large+text", 100, 4.0, 4.0, "minilm's pre-training", 25.0),
                                                         ("tied", 100, 8.0, 0.0, "", 27.0))]
    points = verdicts.frontier_points(pd.DataFrame(rows))
    assert points["run kind"].tolist() == ["small", "large", "tied", "large+text"]  # by compute (1, 8, 8, 8), then error
    assert points["n"].tolist() == [3] * 4 and points["error"].tolist() == pytest.approx([79.0, 69.0, 72.0, 74.0])
    assert points["compute"].tolist() == [1.0, 8.0, 8.0, 8.0]
    assert points["on_frontier"].tolist() == [True, True, False, False]  # at equal compute only the best
    large = points.iloc[1]
    assert large["gain"] == pytest.approx(10.0) and large["gain_low"] == pytest.approx(10.0)  # the same gain every seed
    assert math.isnan(points.iloc[0]["gain"])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # seeds 0, 1, 2 add 0, 1, 2 points: sd 1
    assert (large["low"], large["high"]) == pytest.approx((69.0 - half, 69.0 + half))
    note = prose.frontier_note(points)
    assert "| 8 | large, 100 samples of 100 pairs at 32 px | 69.0 [" in note and "| +10.0 [+10.0, +10.0] |" in note
    assert "1 of 4 configurations use a pre-trained text tower" in note
    fig = plots.frontier_means(points, "run kind")
    assert [t.name for t in fig.data] == ["small", "large", "tied", "large+text", "frontier (means)"]
    assert fig.data[3].marker.symbol == ("circle-open",) and list(fig.data[4].x) == [1.0, 8.0]


def test_throughput_pairs_each_round():
    rows = pd.DataFrame([{"strategy": s, "round": r, "samples_per_s": base * f}
                         for r, base in enumerate([100.0, 90.0, 110.0]) for s, f in (("CLIP", 1.0), ("ToMe", 1.2))])
    v = verdicts.throughput(rows, "ToMe faster", "ToMe", "CLIP")
    assert v["effect"] == pytest.approx(20.0) and v["verdict"] == "holds" and v["n"] == 3
    assert "% [" in verdicts.sentence(v) and "benchmark rounds" in verdicts.sentence(v)
    with pytest.raises(verdicts.MissingCell, match="no benchmark rows of \\['FLIP'\\]"):
        verdicts.throughput(rows, "FLIP faster", "FLIP", "CLIP")


def test_parts_and_beyond():
    holds = verdicts.test(_table([10, 11, 12], [20, 22, 21]), "h", "zero-shot", B_OVER_A, chance=1.0)
    fails = verdicts.test(_table([20, 22, 21], [10, 11, 12]), "f", "zero-shot", B_OVER_A, chance=1.0)
    floor = verdicts.test(_table([1.2, 0.5, 1.8], [20, 22, 21]), "fl", "zero-shot", B_OVER_A, chance=1.0)
    assert verdicts.all_of("both", [holds, holds])["verdict"] == "holds"
    assert verdicts.all_of("both", [holds, fails])["verdict"] == "does not hold"
    assert verdicts.all_of("both", [holds, floor])["verdict"] == "floor-limited"
    rows = pd.DataFrame([{"strategy": s, "round": r, "samples_per_s": 100.0 * f} for r in range(3) for s, f in (("a", 1.0), ("b", 1.1))])
    speed = verdicts.all_of("faster", [verdicts.throughput(rows, "b faster", "b", "a")] * 2)
    assert speed["unit"] == "%" and speed["over"] == "benchmark rounds"  # the parts' unit, not points
    b = verdicts.beyond("after 1B samples", proxy=holds)
    assert b["verdict"] == "beyond our scale" and math.isnan(b["p"]) and b["effect"] == holds["effect"]
    assert "nearest test in our range" in verdicts.sentence(b)
    assert verdicts.table_of([verdicts.beyond("no proxy")]).loc[0, "effect"] == "–"


def test_cells_are_labelled_by_strategy_and_fields():
    assert verdicts.label({**study.arm(chapters.SLIP), "pool": 8_192, "samples": 16_384}) == "SLIP, pool 8,192, samples 16,384"
    assert verdicts.label({"top": 0.4, "regime": "one epoch"}) == "top 0.4, regime one epoch"
