"""Verdicts from seed-paired contrasts: the t-interval, the four verdicts and the floor rule."""

import math

import pandas as pd
import pytest
from scipy import stats

from clipstudy import chapters, study, verdicts


def _table(a: list[float], b: list[float], chance_runs: bool = False) -> pd.DataFrame:
    rows = [{"seed": s, "arm": "a", "zero-shot": v} for s, v in enumerate(a)]
    rows += [{"seed": s, "arm": "b", "zero-shot": v} for s, v in enumerate(b)]
    return pd.DataFrame(rows)


def test_interval_is_students_t_over_seeds():
    v = verdicts.interval([1.0, 2.0, 4.0])
    half = stats.t.ppf(0.975, 2) * pd.Series([1.0, 2.0, 4.0]).std() / math.sqrt(3)
    assert v["n"] == 3 and v["effect"] == pytest.approx(7 / 3)
    assert (v["low"], v["high"]) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert math.isnan(verdicts.interval([5.0])["low"])


@pytest.mark.parametrize("a, b, expected", [
    ([10, 11, 12], [20, 22, 21], "holds"),            # b - a clearly above zero
    ([20, 22, 21], [10, 11, 12], "does not hold"),    # clearly below
    ([10, 20, 15], [15, 12, 16], "inconclusive"),     # interval spans zero
    ([1.2, 0.5, 1.8], [1.5, 1.9, 0.4], "untestable at this scale"),  # every run within 1 point of chance (1%)
    ([10], [20], "inconclusive"),                      # one seed: no interval
])
def test_verdicts(a, b, expected):
    terms = [(+1, {"arm": "b"}), (-1, {"arm": "a"})]
    v = verdicts.test(_table(a, b), "b beats a", "zero-shot", terms, chance=1.0)
    assert v["verdict"] == expected
    assert v["n"] == len(a)
    assert expected in verdicts.sentence(v) and "b beats a" in verdicts.sentence(v)


def test_contrast_pairs_by_seed_and_drops_unpaired():
    t = _table([1, 2, 3], [5, 7])  # seed 2 has no `b` run
    d = verdicts.contrast(t, "zero-shot", [(+1, {"arm": "b"}), (-1, {"arm": "a"})])
    assert d.to_dict() == {0: 4, 1: 5}


def test_difference_of_differences_and_ambiguous_cells():
    rows = [{"seed": s, "pool": p, "epochs": e, "zero-shot": v}
            for s in range(3) for (p, e, v) in [(1, 1, 5), (1, 4, 6 + s), (9, 1, 10), (9, 4, 20 + s)]]
    t = pd.DataFrame(rows)
    terms = [(+1, {"pool": 9, "epochs": 4}), (-1, {"pool": 9, "epochs": 1}),
             (-1, {"pool": 1, "epochs": 4}), (+1, {"pool": 1, "epochs": 1})]
    assert verdicts.contrast(t, "zero-shot", terms).tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match="several runs of one seed"):
        verdicts.contrast(t, "zero-shot", [(+1, {"pool": 9})])
    table = verdicts.table_of([verdicts.test(t, "c", "zero-shot", terms, chance=1.0)])
    assert table.loc[0, "runs at chance"] == "0 of 12"


def test_chapter_claims_on_synthetic_tables():
    # ViT size: the larger tower 5 points below the smaller at every budget, 3 seeds
    rows = [{"seed": s, "model": m, "gflops_per_sample": g, "epochs": 1, "samples": n, "zero-shot": z + s}
            for s in range(3) for n in (4_096, 32_768)
            for m, g, z in (("vit-ti-8", 0.1, 20.0), ("vit-b-8", 0.7, 15.0))]
    claims = verdicts.vit_size(pd.DataFrame(rows), chance=1.0)
    assert [c["claim"] for c in claims] == ["`vit-b-8` below `vit-ti-8` after 4,096 samples",
                                            "`vit-b-8` below `vit-ti-8` after 32,768 samples"]
    assert [c["verdict"] for c in claims] == ["holds", "holds"] and claims[0]["effect"] == pytest.approx(5.0)
    # CNN vs ViT: ResNet ahead at the low budget, ViT at the high one; no Mixer -> two claims
    rows = [{"seed": s, "model": m, "samples": n, "zero-shot": z + 0.1 * s}
            for s in range(3) for m, n, z in (("rn50", 8, 12.0), ("vit-b-16", 8, 10.0),
                                             ("rn50", 32, 30.0), ("vit-b-16", 32, 35.0))]
    claims = verdicts.cnn_vs_vit(pd.DataFrame(rows), chance=1.0)
    assert [c["verdict"] for c in claims] == ["holds", "holds"]
    # data quantity: more epochs gain 10 points on the large pool, 1 on the small one
    rows = [{"seed": s, "pool": p, "epochs": e, "zero-shot": z + s, "shifts": 2.0 + (e == 4) * (1.0 + 0.1 * s)}
            for s in range(3) for p, e, z in ((2, 1, 5.0), (2, 4, 6.0), (32, 1, 20.0), (32, 4, 30.0))]
    claims = verdicts.data_quantity(pd.DataFrame(rows), chance=1.0)
    assert claims[0]["effect"] == pytest.approx(9.0) and claims[0]["verdict"] == "holds"
    assert claims[1]["metric"] == "shifts" and claims[1]["verdict"] == "holds"


def test_data_quantity_explains_with_the_fit_gap_where_the_grid_allows():
    # pools 2 and 8 at 1 and 4 epochs: 2 x 4 = 8 samples, the samples of one pass over 8 pairs
    rows = [{"seed": s, "pool": p, "epochs": e, "zero-shot": 10.0 + p + e + s, "shifts": 3.0 + e + s,
             "fit gap": gap + 0.5 * s}
            for s in range(3) for p, e, gap in ((2, 1.0, 1.0), (2, 4.0, 25.0), (8, 1.0, 2.0), (8, 4.0, 9.0))]
    claims = verdicts.data_quantity(pd.DataFrame(rows), chance=1.0)
    why = claims[2]
    assert why["metric"] == "fit gap" and why["claim"].startswith("(why) after 8 samples, 2 pairs x 4 epochs")
    assert why["effect"] == pytest.approx(23.0) and why["verdict"] == "holds"
    # without a pool of that size (or without the metric) the chapter states only the paper's claims
    other = pd.DataFrame(rows).assign(pool=lambda t: t["pool"].replace(8, 16))  # 2 x 4 = 8: no pool of 8 pairs
    assert len(verdicts.data_quantity(other, chance=1.0)) == 2
    assert len(verdicts.data_quantity(pd.DataFrame(rows).drop(columns="fit gap"), chance=1.0)) == 2


def test_a_missing_cell_is_an_error_that_names_it_not_an_inconclusive_verdict():
    rows = [{"seed": s, "pool": p, "epochs": e, "zero-shot": 10.0 + p + e + s, "shifts": 3.0 + e + s}
            for s in range(3) for p, e in ((2, 1.0), (2, 4.0), (8, 1.0), (8, 4.0))]
    table = pd.DataFrame(rows).query("pool != 8 or epochs != 1")
    with pytest.raises(verdicts.MissingCell, match=r"cell \{'pool': .*8.*'epochs': .*1\.0.*\} has 'zero-shot' \(runs in the cell: 0\)"):
        verdicts.data_quantity(table, chance=1.0)
    with pytest.raises(verdicts.MissingCell, match="no 'shifts' column"):
        verdicts.test(pd.DataFrame(rows).drop(columns="shifts"), "c", "shifts", [(+1, {"pool": 2})], chance=1.0)
    with pytest.raises(verdicts.MissingCell, match=r"no column \['augment'\]"):
        verdicts.test(pd.DataFrame(rows), "c", "zero-shot", [(+1, {"augment": "none"})], chance=1.0)


STRATEGIES = {"CLIP": chapters.CLIP, "SLIP": chapters.SLIP, "FLIP": chapters.FLIP,
              "CLIP+Aug(stacked_randaugment)": chapters.CLIP_AUG}


def _strategy_table(score) -> pd.DataFrame:
    """A5's grid, scaled down (pools 32 and 8, 32 samples seen; SLIP at 16), every metric = score(...);
    each row carries its strategy's config fields, as study.tidy writes them, and its label."""
    cells = [(s, 32, 32) for s in STRATEGIES] + [(s, 8, 32) for s in STRATEGIES] + [("SLIP", 8, 16)]
    rows = []
    for strategy, pool, samples in cells:
        for seed in range(3):
            v = score(strategy, pool, samples, seed)
            rows.append({"strategy": strategy, **study.arm(STRATEGIES[strategy]), "pool": pool, "samples": samples,
                         "epochs": samples / pool, "seed": seed, "zero-shot": v, "i2t R@1": v, "shifts": v,
                         "linear probe": v})
    return pd.DataFrame(rows)


def test_strategy_claims_read_the_right_cells():
    # SLIP best everywhere at equal samples, but SLIP at half the samples far below CLIP
    slip_best = lambda s, pool, samples, seed: 30.0 + seed + (10 if s == "SLIP" else 0) - (25 if samples == 16 else 0)  # noqa: E731
    v = {c["claim"]: c["verdict"] for c in verdicts.strategies(_strategy_table(slip_best), chance=1.0)}
    assert v["one epoch: SLIP above CLIP"] == "holds" and v["one epoch: SLIP above FLIP"] == "holds"
    assert v["equal compute: SLIP (16 samples) below CLIP (32)"] == "holds"
    assert v["retrieval, 4 epochs: SLIP above CLIP+Aug(stacked_randaugment)"] == "holds"
    assert v["one epoch: augmentation lowers CLIP"] == "inconclusive"  # CLIP == CLIP+Aug in every seed
    assert v["4 epochs, shifts: CLIP+Aug(stacked_randaugment) above SLIP"] == "does not hold"
    assert len(v) == 3 + 1 + 6 + 1 + 6
    # the cells are picked by config fields: a renamed display label changes no verdict
    renamed = _strategy_table(slip_best).assign(strategy=lambda t: "renamed " + t["strategy"])
    assert [c["effect"] for c in verdicts.strategies(renamed, chance=1.0)] == \
        [c["effect"] for c in verdicts.strategies(_strategy_table(slip_best), chance=1.0)]


def test_trick_claims_pick_their_cells_by_config():
    arms = {"CLIP": chapters.CLIP, "FLIP": chapters.FLIP, "SigLIP": chapters.SIGLIP, "ToMe": chapters.TOME,
            "SigLIP+FLIP": {**chapters.SIGLIP, **chapters.FLIP}}
    score = {"CLIP": 20.0, "FLIP": 15.0, "SigLIP": 25.0, "ToMe": 18.0, "SigLIP+FLIP": 22.0}
    rows = [{"strategy": "label", **study.arm(fields), "pool": 64, "seed": s, "zero-shot": score[name] + 0.1 * s * (name == "CLIP")}
            for name, fields in arms.items() for s in range(3)]
    v = {c["claim"]: c for c in verdicts.tricks(pd.DataFrame(rows), chance=1.0)}
    assert v["FLIP below CLIP"]["effect"] == pytest.approx(5.1) and v["ToMe below CLIP"]["effect"] == pytest.approx(2.1)
    assert v["SigLIP above SigLIP+FLIP"]["effect"] == pytest.approx(3.0)  # labels from the config, not the table
    assert list(v)[2] == "SigLIP above CLIP"
    with pytest.raises(verdicts.MissingCell, match="tome_r"):  # no ToMe run: an error naming the cell
        verdicts.tricks(pd.DataFrame([r for r in rows if r["tome_r"] == 0]), chance=1.0)


def test_augmentation_claims_and_the_half_data_contrast():
    rows = [{"augment": a, "pool": p, "seed": s, "zero-shot": 10 + p / 100 + (3 if a != "none" else 0) + s * 0.1 * (a == "none")}
            for a in ("none", "crop_flip", "randaugment", "stacked_randaugment") for p in (400, 800) for s in range(3)]
    claims = verdicts.augmentation(pd.DataFrame(rows), chance=1.0)
    v = {c["claim"]: c for c in claims}
    assert all(v[f"{a} above none on {p} pairs"]["verdict"] == "holds" for a in ("crop_flip", "randaugment") for p in (400, 800))
    half = v["Stacked RA on 400 pairs at least matches none on 800"]
    assert half["effect"] == pytest.approx(3 - 4 - 0.1) and half["verdict"] == "does not hold"


def test_throughput_claims_pair_each_round():
    rows = pd.DataFrame([{"strategy": s, "round": r, "samples_per_s": base * f}
                         for r, base in enumerate([100.0, 90.0, 110.0])
                         for s, f in (("CLIP", 1.0), ("ToMe(r=2)", 1.2), ("FLIP", 1.3), ("SigLIP", 1.0), ("SigLIP+FLIP", 1.365))])
    v = {c["claim"]: c for c in verdicts.throughput(rows)}
    tome = v["ToMe raises throughput (paper B: +16%)"]
    assert tome["effect"] == pytest.approx(20.0) and tome["verdict"] == "holds" and tome["n"] == 3
    assert v["SigLIP raises CLIP's throughput (paper B: +1%)"]["verdict"] == "inconclusive"
    assert v["SigLIP raises FLIP's throughput (paper B: +1%)"]["effect"] == pytest.approx(5.0)  # SigLIP+FLIP over FLIP
    assert "% [" in verdicts.sentence(tome) and "benchmark rounds" in verdicts.sentence(tome)


def test_data_quality_claims_read_their_cells_at_the_main_noise_rate():
    # zero-shot peaks at the 40% cut; 10-shot rises as the cut tightens; retrieval peaks at 80%
    zs = {0.2: 12, 0.4: 15, 0.6: 14, 0.8: 13, 1.0: 11}
    rows = [{"noise": n, "top": t, "regime": r, "seed": s, "zero-shot": zs[t] + (n == 0.5) * 50 + 0.1 * s,
             "10-shot": 30 - 10 * t + 0.2 * s, "i2t R@1": 20 - abs(t - 0.8) * 10 + 0.1 * s * t}
            for n in (0.3, 0.5) for t in zs for r in ("one epoch", "equal samples") for s in range(3)]
    v = {c["claim"]: c for c in verdicts.data_quality(pd.DataFrame(rows), chance=1.0, noise=0.3)}
    assert v["Top40% beats the full pool (one epoch)"]["effect"] == pytest.approx(4.0)  # not the 0.5 rows' +50
    assert v["Top20% is below Top40% (equal samples)"]["verdict"] == "holds"
    assert v["higher quality gives better few-shot: Top20% above the full pool (equal samples)"]["effect"] == pytest.approx(8.0)
    assert v["Top80% beats Top60% at retrieval (equal samples)"]["verdict"] == "holds"
    assert all(c["n"] == 3 for c in v.values())
