"""Saturating power-law fits (clipstudy/scaling.py) on synthetic runs drawn from known laws."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from clipstudy import scaling

BUDGETS = [4_096, 8_192, 16_384, 32_768, 65_536]


def runs(e_inf, a, alpha, noise=0.3, seeds=5, budgets=BUDGETS, model="m", seed=0, bend=0.0):
    """One row per (budget, seed): zero-shot = 100 - law(budget / budgets[0]) + noise; `bend` points
    more error at the largest budget (a curve the law does not describe)."""
    rng = np.random.default_rng(seed)
    rows = []
    for b in budgets:
        err = scaling.law(b / budgets[0], e_inf, a, alpha) + (bend if b == budgets[-1] else 0.0)
        rows += [{"model": model, "samples": b, "seed": s, "zero-shot": 100 - err + rng.normal(0, noise)}
                 for s in range(seeds)]
    return pd.DataFrame(rows)


def test_the_fit_recovers_a_known_law_and_passes_its_held_out_budget():
    f = scaling.fit(runs(40.0, 50.0, 0.6), boot=200)
    assert f["status"] == scaling.OK and f["budgets"] == BUDGETS and f["floor"] == [] and f["n"] == 5
    p = f["params"]
    assert p["E_inf"]["low"] <= 40 <= p["E_inf"]["high"] and abs(p["E_inf"]["value"] - 40) < 3
    assert abs(p["alpha"]["value"] - 0.6) < 0.15 and p["alpha"]["low"] < p["alpha"]["high"]
    h = f["holdout"]
    assert h["budget"] == 65_536 and h["fitted_on"] == BUDGETS[:-1]
    assert h["error"]["low"] <= 0 <= h["error"]["high"] and abs(h["predicted"]["value"] - h["measured"]["value"]) < 1.5


def test_a_largest_budget_off_the_law_fails_the_check_and_predicts_nothing():
    f = scaling.fit(runs(40.0, 50.0, 0.6, bend=8.0), boot=200)
    assert f["status"] == scaling.FAILED and f["holdout"]["error"]["high"] < 0  # predicted well below measured
    assert math.isnan(scaling.predict(f, 1e6)["value"])


def test_budgets_at_chance_are_left_out_and_too_few_are_said():
    table = runs(40.0, 50.0, 0.6)
    table.loc[table["samples"] == 4_096, "zero-shot"] = 1.2  # at chance (1%): not yet learning
    f = scaling.fit(table, chance=1.0, boot=50)
    assert f["floor"] == [4_096] and f["budgets"] == BUDGETS[1:] and f["status"] == scaling.OK
    table.loc[table["samples"] == 8_192, "zero-shot"] = 0.8
    f = scaling.fit(table, chance=1.0, boot=50)
    assert f["status"] == scaling.TOO_FEW and f["holdout"] is None and "too few" in scaling.params_table({"m": f})["fit"].iloc[0]


def test_prediction_beyond_the_grid_is_marked_extrapolated_and_brackets_the_truth():
    f = scaling.fit(runs(30.0, 60.0, 0.5, noise=0.2), boot=200)
    inside, outside = scaling.predict(f, 16_384), scaling.predict(f, 1_048_576)
    assert not inside["extrapolated"] and outside["extrapolated"]
    truth = scaling.law(1_048_576 / 4_096, 30.0, 60.0, 0.5)
    assert outside["low"] - 1 <= truth <= outside["high"] + 1 and outside["high"] - outside["low"] > inside["high"] - inside["low"]


def test_crossover_of_two_laws_is_found_where_they_cross():
    """small: 30 + 40 c^-0.3; large: 20 + 70 c^-0.5 (c in units of 4,096 samples). Equal where
    10 = 70 c^-0.5 - 40 c^-0.3: solved numerically below; the larger tower is worse before."""
    table = pd.concat([runs(30.0, 40.0, 0.3, model="small"), runs(20.0, 70.0, 0.5, model="large", seed=100)])
    fits = scaling.fit_all(table, boot=200)
    cross = scaling.crossover(fits["small"], fits["large"])
    c = np.geomspace(1, 1e4, 200_000)
    truth = 4_096 * c[np.nonzero(scaling.law(c, 20, 70, 0.5) < scaling.law(c, 30, 40, 0.3))[0][0]]
    assert cross["status"] == "fitted" and not cross["already"]
    assert cross["low"] <= truth <= cross["high"] and abs(math.log(cross["value"] / truth)) < 0.3
    assert cross["extrapolated"] == (truth > 65_536)


def test_no_crossover_within_range_is_infinite_and_a_failed_fit_gives_none():
    table = pd.concat([runs(20.0, 40.0, 0.5, model="better"), runs(35.0, 40.0, 0.5, model="worse", seed=1)])
    fits = scaling.fit_all(table, boot=100)
    never = scaling.crossover(fits["better"], fits["worse"])  # "worse" never overtakes "better"
    assert math.isinf(never["value"]) and never["share_crossing"] < 0.05
    fits["worse"]["status"] = scaling.FAILED
    none = scaling.crossover(fits["better"], fits["worse"])
    assert math.isnan(none["value"]) and "larger: fails" in none["status"]


@pytest.mark.parametrize("boot", [50])
def test_fit_all_pairs_the_arms_on_one_draw_of_seeds(boot):
    table = pd.concat([runs(30.0, 40.0, 0.4, model="a"), runs(30.0, 40.0, 0.4, model="b")])
    fits = scaling.fit_all(table, boot=boot)  # identical arms, identical draws: identical bootstraps
    np.testing.assert_allclose(fits["a"]["boot"], fits["b"]["boot"])


def test_crossover_table_reads_given_pairs_and_names_the_arm_that_overtakes():
    table = pd.concat([runs(30.0, 40.0, 0.3, model="rn"), runs(20.0, 70.0, 0.5, model="vit", seed=100),
                       runs(10.0, 20.0, 0.5, model="ahead", seed=7)])
    fits = scaling.fit_all(table, boot=100)
    rows = scaling.crossover_table(fits, pairs=[("rn", "vit"), ("vit", "ahead")], columns=("tower", "overtaken by"))
    assert list(rows.columns) == ["tower", "overtaken by", "crossover (samples)"]
    assert rows.iloc[0]["crossover (samples)"][0].isdigit()  # a number of samples, with its interval
    assert rows.iloc[1]["crossover (samples)"] == "ahead is ahead from the smallest budget fitted"
    fits["rn"]["status"] = scaling.TOO_FEW
    assert scaling.crossover_table(fits, ["rn", "vit"]).iloc[0]["crossover (samples)"] == \
        f"no fit (rn: {scaling.TOO_FEW})"  # pairs from `order`, the failed arm named


def test_recorded_runs_are_read_per_chapter_and_empty_where_none(tmp_path):
    path = tmp_path / "laws.jsonl"
    assert scaling.recorded(path).empty
    rows = pd.concat([runs(30.0, 40.0, 0.3, model="rn").assign(chapter="cnn_vs_vit"),
                      runs(20.0, 70.0, 0.5, model="vit-ti-8").assign(chapter="strategies")])
    path.write_text(rows.to_json(orient="records", lines=True))
    assert len(scaling.recorded(path)) == len(rows)
    towers = scaling.recorded(path, chapter="cnn_vs_vit")
    assert set(towers["model"]) == {"rn"} and len(towers) == 5 * len(BUDGETS)


def test_the_deeper_laptop_grids_give_every_arm_a_checked_law_on_paired_seeds():
    """chapters.LAWS: each arm at least MIN_BUDGETS + 1 budgets (one may sit at chance), every arm the
    same seeds (3 or more) and the same budgets, so that crossovers compare paired fits."""
    from clipstudy.chapters import CHAPTERS, LAWS
    from clipstudy.study import grid_points

    for name, sizes in LAWS.items():
        assert len(sizes["seeds"]) >= 3
        points = grid_points({"train": CHAPTERS[name]["laptop"]["train"], **sizes}, 32_768)
        arms: dict[str, set] = {}
        for p in points:
            arms.setdefault(json.dumps({k: v for k, v in p.items() if k not in ("samples", "data_limit")},
                                       sort_keys=True), set()).add(p["samples"])
        assert len(arms) >= 2 and len({frozenset(b) for b in arms.values()}) == 1
        assert all(len(b) >= scaling.MIN_BUDGETS + 1 for b in arms.values())


def test_check_note_names_each_failed_law_and_which_way_it_missed():
    good = runs(20.0, 70.0, 0.5, model="good", seed=3)
    steep = runs(20.0, 70.0, 0.5, model="steep", seed=4, bend=-15.0)  # the largest budget far better than the law
    fits = scaling.fit_all(pd.concat([good, steep]), boot=100)
    note = scaling.check_note(fits)
    assert note.startswith("1 of 2 laws fail") and "`steep` measured" in note and "fell faster" in note
    assert "`good`" not in note
    assert scaling.check_note(scaling.fit_all(good, boot=100)) == "Every law fitted (`good`) predicts its held-out budget."
    fits["good"]["status"] = fits["steep"]["status"] = scaling.TOO_FEW
    assert scaling.check_note(fits) == "No arm has enough budgets above chance for a law."


def test_parameter_intervals_stay_within_the_fits_bounds():
    """A law pinned at a bound (here E_inf at 0: error still falling steeply) gets no interval beyond it."""
    fits = scaling.fit_all(runs(0.0, 95.0, 0.3, noise=1.0, seeds=3), boot=100)
    p = fits["m"]["params"]
    assert p["E_inf"]["low"] >= 0.0 and p["alpha"]["low"] >= 0.0 and p["A"]["low"] >= 0.0
    assert p["E_inf"]["high"] <= 100.0 and p["alpha"]["high"] <= 3.0
