"""The claims registry: faithful to the seeds' words, testable on every profile's grid, picking its cells by
config; and the findings page's corrections and counts."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipstudy import chapters, claims, findings, scaling, study, verdicts
from clipstudy.chapters import CHAPTERS, QUALITY, STRATEGIES
from clipstudy.study import STRATEGY_DEFAULTS, STRATEGY_FIELDS, arm, strategy

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
METRICS = ["zero-shot", "shifts", "5-shot", "10-shot", "linear probe", "i2t R@1", "t2i R@1", "fit gap"]
GFLOPS = {"vit-ti-8": 0.1, "vit-s-8": 0.3, "vit-b-8": 0.9, "vit-b-16": 0.3, "vit-l-8": 3.0}


def grid_table(name: str, profile: str, pool: int, score=None, seed: int = 0, sizes: dict | None = None) -> pd.DataFrame:
    """A tidy table of a chapter's grid at `profile` (or of the given `sizes`: train, grid, seeds) as
    study.tidy writes it, metrics from `score(row, metric)` (default: random), on a world of `pool` pairs."""
    rng = np.random.default_rng(seed)
    sizes = sizes or CHAPTERS[name][profile]
    rows = []
    for point in study.grid_points(sizes, pool):
        for s in sizes["seeds"]:
            p = point.get("data_limit") or pool
            row = {"model": point.get("model", "vit-ti-8"), **{k: point.get(k, STRATEGY_DEFAULTS[k]) for k in STRATEGY_FIELDS},
                   "seed": s, "pool": p, "samples": point["samples"], "epochs": point["samples"] / p,
                   "gflops_per_sample": GFLOPS.get(point.get("model", "vit-ti-8"), 0.2),
                   "image_size": point.get("image_size") or sizes["train"].get("image_size") or 32}
            row["strategy"], row["pflops"] = strategy(row), row["gflops_per_sample"] * row["samples"] / 1e6
            row.update({m: score(row, m) if score else float(rng.uniform(5, 60)) for m in METRICS})
            rows.append(row)
    return pd.DataFrame(rows)


def quality_table(profile: str, score=None) -> pd.DataFrame:
    q = QUALITY[profile]
    rng = np.random.default_rng(1)
    return pd.DataFrame([{"top": top, "regime": regime, "seed": s, "noise": q.get("noise"), "samples": 1_000,
                          "epochs": 1.0, "image_size": 32,
                          **{m: score(top, regime, s, m) if score else float(rng.uniform(5, 60)) for m in METRICS}}
                         for top in q["tops"] for regime in q["regimes"] for s in q["seeds"]])


def bench_rows(gain: dict | None = None) -> pd.DataFrame:
    gain = gain or {}
    return pd.DataFrame([{"strategy": strategy(arm(s)), "round": r, "samples_per_s": base * gain.get(strategy(arm(s)), 1.0)}
                         for s in STRATEGIES for r, base in enumerate((100.0, 95.0, 105.0))])


def all_tables(profile: str, pool: int) -> dict:
    tables = {name: grid_table(name, profile, pool) for name in CHAPTERS}
    return {**tables, "data_quality": quality_table(profile), "throughput": bench_rows()}


@pytest.fixture(autouse=True)
def fewer_bootstrap_draws(monkeypatch, tmp_path):
    """The crossover rows refit their scaling laws per bootstrap draw: 200 draws keep these tests quick.
    And no deeper laptop grid is recorded (the repository's benchmarks/results/laws-cpu.jsonl is not read)."""
    monkeypatch.setattr(scaling, "BOOT", 200)
    monkeypatch.setattr(scaling, "RECORDED", tmp_path / "no-laws.jsonl")


def test_registry_is_complete_and_well_formed():
    keys = [c.key for c in claims.CLAIMS]
    assert len(keys) == len(set(keys))
    paper = [c for c in claims.CLAIMS if not c.ours]
    assert len(paper) >= 28  # the issue counted 28; each seed sentence with its own finding is one claim here
    for c in claims.CLAIMS:
        assert c.chapter in chapters.PAGES or c.chapter == "throughput", c.key
        assert c.theme in claims.THEMES and c.title and c.quote and c.source and c.kind and c.faithful, c.key
        assert c.page in chapters.PAGES.values()
    assert {c.chapter for c in paper} == set(chapters.PAGES) | {"throughput"}  # every chapter tests a claim
    with pytest.raises(ValueError, match="registered twice"):
        claims.claim("A1.epochs", "data_quantity", "data", "t", "q", "s", "k", "p")(lambda t, c: None)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed documents are not beside this checkout")
def test_every_quote_is_the_seeds_own_words():
    def norm(text: str) -> str:
        return re.sub(r"\s+", " ", text.replace("*", "")).strip().lower()
    seeds = norm(" ".join(p.read_text() for p in SEEDS.glob("*.txt")))
    for c in claims.CLAIMS:
        if c.ours:
            continue
        quote = re.sub(r"\s*\(abstract: (.*)\)$", r" [...] \1", c.quote)  # a second source's words, quoted too
        for piece in quote.split("[...]"):
            assert norm(piece.strip(" .")) in seeds, (c.key, piece)


@pytest.mark.parametrize("profile, pool", [("smoke", 4_096), ("laptop", 32_768), ("gpu", 1_000_000), ("real", 2_800_000)])
def test_every_claim_finds_its_cells_in_every_profiles_grid(profile, pool):
    tables = all_tables(profile, pool)
    out = [v for c in claims.CLAIMS for v in claims.verdicts_of(c.chapter, tables[c.chapter], 1.0, keys=[c.key])]
    missing = {c.key for c in claims.CLAIMS} - {v["key"] for v in out}
    # only our optional checks may have no cells: the overfit check, and SigLIP's bias and the crops' checks
    # (laptop and smoke only)
    laptop_only = {"B2.scratch-siglip-bias", "A6.crop-cause", "B2.scratch-flip-64px"}
    assert missing <= {"A1.why-overfit", *laptop_only} and (laptop_only <= missing) == (profile in ("gpu", "real")), missing
    assert not laptop_only & missing or profile in ("gpu", "real"), missing
    assert all(v["verdict"] in verdicts.VERDICTS and v["quote"] and v["source"] for v in out)
    assert all(not math.isnan(v["effect"]) for v in out if v["verdict"] != verdicts.BEYOND)


def test_claims_beyond_the_grid_are_marked_not_refuted():
    lap = all_tables("laptop", 32_768)
    v = {x["key"]: x for x in claims.verdicts_of("data_quantity", lap["data_quantity"], 1.0)}
    assert v["A1.retrieval-flat"]["verdict"] == "beyond our scale"  # 4 epochs at most: "after 8" is beyond
    gpu = grid_table("data_quantity", "gpu", 1_000_000)
    v = {x["key"]: x for x in claims.verdicts_of("data_quantity", gpu, 1.0)}
    assert v["A1.retrieval-flat"]["verdict"] != "beyond our scale"  # 8-32 epochs: tested (equivalence)
    assert "within ±1 points" in v["A1.retrieval-flat"]["parts"][0]["test"]
    # a crossover our largest budget shows is tested; one it does not show is beyond, its trend shown
    vit_ahead = lambda row, m: 30.0 + row["seed"] + (5 if row["model"] == "vit-b-16" else 0)  # noqa: E731
    t = grid_table("cnn_vs_vit", "laptop", 32_768, vit_ahead)
    assert {x["key"]: x for x in claims.verdicts_of("cnn_vs_vit", t, 1.0)}["A4.vit-later"]["verdict"] == "holds"
    rn_ahead = lambda row, m: 30.0 + row["seed"] + (5 if row["model"] == "rn50" else 0)  # noqa: E731
    later = {x["key"]: x for x in claims.verdicts_of("cnn_vs_vit", grid_table("cnn_vs_vit", "laptop", 32_768, rn_ahead),
                                                     1.0)}["A4.vit-later"]
    assert later["verdict"] == "beyond our scale" and later["proxy"]["effect"] == pytest.approx(0.0)
    assert math.isnan(later["p"])


def test_strategy_claims_read_the_right_cells():
    # SLIP best at equal samples, SLIP at half the samples far below the rest; CLIP+Aug best on probes
    def score(row, metric):
        slip = row["ssl_scale"] > 0
        base = 30.0 + row["seed"] + (10 if slip else 0) - (25 if slip and row["samples"] == 16_384 else 0)
        return base + (20 if metric == "linear probe" and row["augment"] == "stacked_randaugment" else 0)
    t = grid_table("strategies", "laptop", 32_768, score)
    v = {x["key"]: x for x in claims.verdicts_of("strategies", t, 1.0)}
    assert v["A5.slip-one-epoch"]["verdict"] == "holds"
    assert [p["test"] for p in v["A5.slip-one-epoch"]["parts"]] == ["SLIP above CLIP", "SLIP above FLIP"]
    assert v["A5.slip-equal-compute"]["verdict"] == "holds" and len(v["A5.slip-equal-compute"]["parts"]) == 3
    assert v["A5.slip-equal-compute"]["effect"] == pytest.approx(15.0)  # CLIP 30 - SLIP at half 15
    assert v["A.strategy-compute"]["verdict"] == "holds"
    assert v["A5.aug-probe"]["verdict"] == "holds"  # Aug's probe +20 over CLIP beats SLIP's +10
    assert v["A5.slip-retrieval"]["verdict"] == "holds"
    # cells are picked by config fields: a renamed display label changes no verdict
    renamed = t.assign(strategy="renamed")
    assert [x["effect"] for x in claims.verdicts_of("strategies", renamed, 1.0)] == \
        [x["effect"] for x in claims.verdicts_of("strategies", t, 1.0)]


def test_paper_b_claims_sit_on_the_pretrained_image_tower():
    score = {"CLIP": 5.0, "CLIP+image:simclr": 30.0, "FLIP+image:simclr": 25.0, "SigLIP+image:simclr": 39.0,
             "ToMe(r=2)+image:simclr": 27.0}
    t = grid_table("tricks", "laptop", 32_768, lambda row, m: score.get(row["strategy"], 20.0) + 0.1 * row["seed"] * (row["strategy"] == "CLIP"))
    v = {x["key"]: x for x in claims.verdicts_of("tricks", t, 1.0)}
    assert v["B2.flip-worse"]["effect"] == pytest.approx(5.0) and v["B2.flip-worse"]["verdict"] == "holds"
    assert v["B2.tome-lower"]["effect"] == pytest.approx(3.0)
    siglip = v["B2.siglip-best"]
    assert siglip["verdict"] == "holds" and siglip["magnitude"]["effect"] == pytest.approx(9.0)  # over CLIP, as B states it
    row = findings.table([siglip]).iloc[0]
    assert row["paper's magnitude"] == "+9 (inside our interval)"
    # the scratch arm at 5%, chance 4.5%: every B1 claim comparing it is floor-limited, naming the cell
    v = {x["key"]: x for x in claims.verdicts_of("tricks", t, 4.5)}
    assert v["B1.image-boost"]["verdict"] == "floor-limited" and v["B1.image-boost"]["floor"] == ["CLIP"]


def test_half_data_is_an_equivalence_with_a_stated_margin():
    def score(row, metric):  # Stacked RA on 4,096 pairs within half a point of none on 8,192
        gain = {"none": 0.0, "crop_flip": 2.0, "randaugment": 2.0, "stacked_randaugment": 3.0,
                "stacked_randaugment_nocrop": 1.0}[row["augment"]]
        return 20 + row["pool"] / 4_096 * 2 + gain + 0.1 * row["seed"] * (row["augment"] == "none")
    v = {x["key"]: x for x in claims.verdicts_of("augmentation", grid_table("augmentation", "laptop", 32_768, score), 1.0)}
    half = v["A6.half-data"]
    assert half["verdict"] == "equivalent" and half["margin"] == claims.HALF_DATA_MARGIN
    mean_seed = sum(chapters.LAPTOP_SEEDS) / len(chapters.LAPTOP_SEEDS)
    assert half["effect"] == pytest.approx(22 + 3 - 24 - 0.1 * mean_seed)
    assert v["A6.each-aug"]["verdict"] == "holds" and len(v["A6.each-aug"]["parts"]) == 6
    crops = v["A6.crop-cause"]  # without its crop, 2 points below Stacked RA on both pools
    assert crops["verdict"] == "does not hold" and len(crops["parts"]) == 2 and crops["effect"] == pytest.approx(-2.0)


def test_data_quality_claims_at_the_main_noise_rate():
    zs = {0.2: 12, 0.4: 15, 0.6: 14, 0.8: 13, 1.0: 11}
    score = lambda top, regime, s, m: (zs[top] if m == "zero-shot" else 30 - 10 * top if "shot" in m  # noqa: E731
                                       else 20 - abs(top - 0.8) * 10) + 0.1 * s * top
    v = {x["key"]: x for x in claims.verdicts_of("data_quality", quality_table("laptop", score), 1.0)}
    mean_seed = sum(chapters.LAPTOP_SEEDS) / len(chapters.LAPTOP_SEEDS)
    assert v["A2.top40-one-epoch"]["effect"] == pytest.approx(4.0 - 0.06 * mean_seed)
    assert v["A2.top40-best"]["verdict"] == "holds" and len(v["A2.top40-best"]["parts"]) == 4
    assert v["A2.few-shot"]["verdict"] == "holds" and v["A2.top80-retrieval"]["verdict"] == "holds"
    assert v["A2.quality-one-epoch"]["verdict"] == "holds"  # 12 -> 11 from 20% to 100% kept: falls overall


def test_findings_corrections_and_chance_count():
    def v(p, verdict):
        return {"p": p, "verdict": verdict, "n": 3, "effect": 1.0, "low": 0.5, "high": 1.5}
    vs = [v(0.001, "holds"), v(0.02, "does not hold"), v(0.04, "holds"), v(0.5, "inconclusive"),
          {**v(math.nan, "beyond our scale"), "n": 0}]
    out = findings.corrected(vs)
    # Holm over 4 tests: 0.001 <= 0.05/4 stands; 0.02 > 0.05/3 falls, and so does everything after it
    assert [o["holm"] for o in out] == ["stands", "falls", "falls", "–", "–"]
    # BH: p_(k) <= k/4 x 0.05 -> 0.001 (k=1), 0.02 (k=2: 0.025), 0.04 (k=3: 0.0375) falls
    assert [o["bh"] for o in out] == ["stands", "stands", "falls", "–", "–"]
    line = findings.chance_line(out)
    assert "**3** of the 5 claims" in line and "4 were tested" in line and "0.2 decisive verdicts" in line


def test_findings_page_from_synthetic_tables():
    tables = all_tables("laptop", 32_768)
    vs = findings.corrected([x for c in claims.CLAIMS if not c.ours
                             for x in claims.verdicts_of(c.chapter, tables[c.chapter], 1.0, keys=[c.key])])
    shown = findings.table(vs)
    assert len(shown) == len(vs) and shown["verdict"].isin(verdicts.VERDICTS).all()
    assert '<a href="10_data_quantity.html#verdict">' in findings.table_html(vs)
    fig = findings.plot(vs)
    assert sum(len(trace.x) for trace in fig.data) == sum(1 for x in vs if x["n"] >= 1 and not math.isnan(x["effect"]))
    text = findings.discussion(vs, tables)
    assert all(heading in text for heading in claims.THEMES.values()) and "Why our scale differs" in text


def test_findings_say_whether_a_verdict_changes_with_precision(tmp_path):
    tables = {"augmentation": pd.DataFrame({"precision": ["bf16", "bf16"]}), "throughput": pd.DataFrame()}
    assert findings.precision_line(tables, tmp_path) == (
        "**Precision.** This book's runs trained in bf16. No chapter has been trained both ways here "
        "(`benchmarks/precision_verdicts.py` does it).")
    record = {"machine": "a CPU", "chapter": "augmentation", "profile": "laptop",
              "runs": {"bf16": {"seeds": 5}, "fp32": {"seeds": 5}},
              "claims": [{"claim": "Every augmentation beats none", "verdict changed": False},
                         {"claim": "Stacked RA on half the data", "verdict changed": True}]}
    (tmp_path / "precision-verdicts-cpu.json").write_text(json.dumps(record))
    line = findings.precision_line(tables, tmp_path)
    assert "augmentation chapter trained both ways at the laptop profile (5 seeds" in line
    assert "**1 of its 2 verdicts change** between fp32 and bf16: *Stacked RA on half the data*." in line


def _law_score(laws: dict, unit: float, key):
    """A `grid_table` score: 100 - E(samples / unit) for the arm `key(row)` names in `laws` (E_inf, A,
    alpha), plus a little seed noise; rows of other arms score 20."""
    def score(row, metric):
        law = laws.get(key(row))
        noise = 0.3 * math.sin(1.7 * row["seed"] + 0.37 * math.log(row["samples"]) + len(metric))
        return 20.0 + noise if law is None else 100.0 - scaling.law(row["samples"] / unit, *law) + noise
    return score


def test_crossovers_beyond_the_grid_are_predicted_by_fitted_laws():
    """ResNet ahead at every gpu budget, ViT's law steeper: ViT-overtakes-ResNet is beyond our scale, and its
    row says where the fitted laws cross (known here: solved below), extrapolated past the grid. At laptop
    (two budgets) the row says no law could be fitted."""
    rn, vit = (30.0, 50.0, 0.5), (15.0, 70.0, 0.2)  # error in points, samples in units of 250,000
    c = np.geomspace(1, 1e4, 100_000)
    truth = 250_000 * c[np.nonzero(scaling.law(c, *vit) < scaling.law(c, *rn))[0][0]]  # ~4e8 samples
    t = grid_table("cnn_vs_vit", "gpu", 1_000_000, _law_score({"rn50": rn, "vit-b-16": vit}, 250_000, lambda r: r["model"]))
    v = {x["key"]: x for x in claims.verdicts_of("cnn_vs_vit", t, 1.0)}
    later = v["A4.vit-later"]
    assert later["verdict"] == verdicts.BEYOND
    found = re.search(r"put `vit-b-16` above `rn50` at zero-shot: ([\d,]+) \[([\d,]+), ([\d,]+|no upper bound)\] "
                      r"\(extrapolated\)", later["test"])
    assert found, later["test"]
    value, low = (float(found.group(i).replace(",", "")) for i in (1, 2))
    assert low <= value and abs(math.log(value / truth)) < 0.5
    assert v["A4.vit-retrieval-later"]["test"].count("(extrapolated)") == 2  # one per direction
    laptop = grid_table("cnn_vs_vit", "laptop", 32_768, _law_score({"rn50": rn, "vit-b-16": vit}, 8_192,
                                                                   lambda r: r["model"]))
    row = {x["key"]: x for x in claims.verdicts_of("cnn_vs_vit", laptop, 1.0)}["A4.vit-later"]
    assert "no fit (`rn50`: too few budgets above chance; `vit-b-16`: too few budgets above chance)" in row["test"]
    # SLIP ahead at one epoch of every gpu pool; CLIP's and FLIP's laws steeper: both crossovers predicted
    laws = {"SLIP": rn, "CLIP": vit, "FLIP": vit}
    t = grid_table("strategies", "gpu", 1_000_000,
                   _law_score(laws, 62_500, lambda r: r["strategy"] if r["epochs"] == 1 else None))
    v = {x["key"]: x for x in claims.verdicts_of("strategies", t, 1.0)}
    row = v["A5.slip-overtaken"]
    assert row["verdict"] == verdicts.BEYOND and row["test"].count("(extrapolated)") == 2, row["test"]
    assert "put CLIP above SLIP at zero-shot" in row["test"] and "put FLIP above SLIP" in row["test"]
    assert v["A5.slip-one-epoch"]["verdict"] == "holds"  # the one-epoch cell is still the largest pool


def test_claims_quote_the_recorded_deeper_grid_where_the_chapters_own_cannot_be_fitted(tmp_path, monkeypatch):
    """At laptop the chapters' grids are too shallow for a law; the deeper grids benchmarks/laws.py records
    (chapters.LAWS) are not: the crossover rows quote theirs, named as such, near the known crossover."""
    rn, vit = (30.0, 50.0, 0.5), (10.0, 80.0, 0.3)  # error in points, samples in units of 8,192
    c = np.geomspace(1, 1e4, 100_000)
    truth = 8_192 * c[np.nonzero(scaling.law(c, *vit) < scaling.law(c, *rn))[0][0]]  # ~240k samples
    towers = _law_score({"rn50": rn, "vit-b-16": vit}, 8_192, lambda r: r["model"])
    kinds = _law_score({"SLIP": rn, "CLIP": vit, "FLIP": vit}, 4_096, lambda r: r["strategy"])
    deep = pd.concat([grid_table(name, "laptop", 32_768, score,
                                 sizes={"train": CHAPTERS[name]["laptop"]["train"], **chapters.LAWS[name]}).assign(chapter=name)
                      for name, score in (("cnn_vs_vit", towers), ("strategies", kinds))])
    path = tmp_path / "laws.jsonl"
    path.write_text(deep.assign(chance=1.0, world="study-laptop").to_json(orient="records", lines=True))
    monkeypatch.setattr(scaling, "RECORDED", path)
    row = {x["key"]: x for x in claims.verdicts_of("cnn_vs_vit", grid_table("cnn_vs_vit", "laptop", 32_768, towers),
                                                   1.0)}["A4.vit-later"]
    assert "no fit (`rn50`: too few budgets above chance" in row["test"]
    found = re.search(r"deeper laptop grid recorded by benchmarks/laws.py \(3 seeds, 8,192-65,536 samples at 64 px; "
                      r"the page's recorded section\): ([\d,]+) \[", row["test"])
    assert found, row["test"]
    assert abs(math.log(float(found.group(1).replace(",", "")) / truth)) < 0.5
    row = {x["key"]: x for x in claims.verdicts_of("strategies", grid_table("strategies", "laptop", 32_768, kinds),
                                                   1.0)}["A5.slip-overtaken"]
    assert row["test"].count("deeper laptop grid recorded by benchmarks/laws.py") == 2, row["test"]
    assert row["test"].count("(extrapolated)") == 2, row["test"]
