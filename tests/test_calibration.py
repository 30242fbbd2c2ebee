"""The calibration page's read-back (clipstudy.calibration) on synthetic screen rows."""

import json

import pytest

from clipstudy import calibration

REF = calibration.reference()


def _row(lever, samples, seed, zero_shot, gap=0.0):
    return {"lever": lever, "kind": calibration.LEVERS[lever]["kind"], "samples": samples, "seed": seed,
            "run": f"{lever}-{samples}-{seed}", "id/top1": zero_shot, "shift_mean/top1": 0.05,
            "best_shift/top1": 0.1, "best_shift": "shift-noto-color", "retrieval/i2t_r1": 0.3,
            "probe/linear_top1": 0.5, "probe/5shot_top1": 0.2, "fit/gap": gap, "final_loss": 1.0,
            "train_seconds": 10.0, "machine": "test", "curve": []}


@pytest.fixture
def results(tmp_path):
    rows = [_row(REF, n, s, z + 0.01 * s) for n, z in [(32_768, 0.2), (65_536, 0.4)] for s in range(3)]
    rows += [_row(REF, 32_768, s, 0.2, gap=0.02 + 0.01 * s) for s in range(3)]  # the same runs, re-screened
    rows += [_row("2k pool x 16 epochs", 32_768, s, 0.1, gap=0.30 + 0.02 * s) for s in range(3)]
    rows += [_row("rn50 tower", 32_768, 0, 0.03)]
    path = tmp_path / "calibration.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return calibration.load_results(path)


def test_a_rescreened_run_replaces_its_row(results):
    ref32 = results[(results["lever"] == REF) & (results["samples"] == 32_768)]
    assert len(ref32) == 3 and list(ref32["fit gap"].round(6)) == [2.0, 3.0, 4.0]


def test_small_pool_overfit_target_is_a_seed_paired_interval(results):
    row = calibration.targets(results).set_index("target").filter(like="fit gap", axis=0).iloc[0]
    assert row["n"] == 3 and row["reached"] == pytest.approx(29.0)  # (30,32,34) - (2,3,4) points
    assert row["sd"] == pytest.approx(1.0) and bool(row["met"])
    assert "95% t-interval" in row["why"]


def test_findings_compare_a_lever_at_the_budget_it_has(results):
    text = calibration.findings(results)
    assert "2k pool x 16 epochs (side row): -10.0 points zero-shot at 32,768 samples" in text
    assert "train-vs-held-out gap 32.0 points" in text
    assert "rn50 tower (side row): -17.0 points zero-shot at 32,768" in text


def test_ablation_table_carries_time_and_fit_gap(results):
    table = calibration.ablation_table(results)
    assert {"train s", "fit gap", "vs base"} <= set(table.columns)


def test_rows_of_other_settings_stay_history(tmp_path):
    now = {**_row("lr 5e-4", 16_384, 0, 0.06), "settings": calibration.resolve("lr 5e-4")}
    old = {**_row("lr 5e-4", 65_536, 0, 0.42), "settings": {**calibration.resolve("lr 5e-4"), "world": {"pairs": 1}}}
    gone = {**_row("lr 5e-4", 65_536, 1, 0.42), "lever": "a lever no longer screened"}
    path = tmp_path / "calibration.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (now, old, gone)))
    table = calibration.load_results(path)
    assert list(zip(table["lever"], table["samples"])) == [("lr 5e-4", 16_384)]


def test_side_rows_with_three_seeds_meet_the_same_targets(results):
    rows = [{**_row("48 px images", 65_536, s, 0.55), "train_seconds": 20.0} for s in range(3)]
    table = calibration.pd.concat([results, calibration.pd.DataFrame(rows).assign(**{"zero-shot": 55.0})])
    assert calibration.confirmed(table) == ["48 px images"]  # not the 1-seed rows, nor the overfit check
    assert calibration.time_ratio(table, "48 px images") == pytest.approx(2.0)
    met = calibration.targets(table, "48 px images").set_index("target")["met"]
    assert met["zero-shot at 65,536 >= 50%"] and not met["zero-shot at 16,384 >= 20%"]
    assert not met.index.str.contains("fit gap").any()
