"""Data-quality cuts (clipstudy/quality.py): scores from a reference run, cached; top-fraction
cuts; subsets named by their content; precision and recall against ground-truth noise."""

import numpy as np
import pytest
import torch

from clipstudy import chapters, quality
from clipstudy.config import ConfigError
from clipstudy.data import load_pairs
from clipstudy.store import load_run, train_or_load
from clipstudy.train import TrainConfig


def test_top_fraction_keeps_the_best_candidates_and_breaks_ties_by_row():
    score = np.array([0.1, 0.9, 0.5, 0.9, 0.3, 0.7])
    assert quality.top_fraction(score, 0.5).tolist() == [1, 3, 5]
    assert quality.top_fraction(score, 0.5, candidates=np.array([0, 2, 4, 5])).tolist() == [2, 5]
    assert quality.top_fraction(score, 0.01).tolist() == [1]  # at least one row: the first of the tied best
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="fraction"):
            quality.top_fraction(score, bad)


def test_a_subset_is_named_by_its_rows(tmp_path):
    a = quality.save_subset(np.array([3, 1, 2]), tmp_path)
    assert quality.save_subset([3, 1, 2], tmp_path) == a and np.load(a).tolist() == [3, 1, 2]
    assert quality.save_subset([1, 2, 3], tmp_path) != a


def test_cut_quality_against_the_ground_truth():
    labels = ["clean", "mismatch", "clean", "boilerplate", "clean", "mismatch"]
    q = quality.cut_quality(np.array([0, 2, 5]), labels)
    assert q["precision"] == pytest.approx(2 / 3) and q["recall"] == pytest.approx(2 / 3)
    assert q["removed/mismatch"] == 0.5 and q["removed/boilerplate"] == 1.0 and q["kept"] == 3
    q = quality.cut_quality(np.array([2]), labels, candidates=np.array([1, 2, 3]))  # rows 0, 4, 5 held out
    assert q["recall"] == 1.0 and q["removed/mismatch"] == 1.0


def test_scores_are_the_reference_cosines_and_are_cached(make_world, tmp_path):
    world = make_world("small", noise_mismatch=0.3)  # 256 pairs, 30% of their captions mismatched
    ref = train_or_load(TrainConfig(data=str(world), model="vit-ti-8", samples=128, batch_size=64, warmup=0),
                        runs_dir=tmp_path / "runs", progress=False, suites=["id"])["dir"]
    s = quality.scores(ref, world)
    assert s.shape == (256,) and s.dtype == np.float32 and np.all(np.abs(s) <= 1 + 1e-5)
    # the cosine of a pair by hand, for one row
    model, tokenizer, _ = load_run(ref)
    pairs = load_pairs(world)
    with torch.no_grad():
        from clipstudy.evaluate import image_features, text_features
        one = (image_features(model, pairs.images[7:8]) * text_features(model, tokenizer, pairs.captions[7:8])).sum()
    assert float(one) == pytest.approx(float(s[7]), abs=2e-2)  # bf16 autocast, batched differently
    cached = next((ref / "scores").glob("*.npy"))
    np.save(cached, np.zeros(256, np.float32))  # the second call reads the cache, it does not score again
    assert not quality.scores(ref, world).any()
    labels = quality.noise_labels(world)
    assert len(labels) == 256 and labels.count("mismatch") == round(0.3 * 256)


def test_a_run_trains_on_its_subset_and_is_keyed_by_its_rows(small_world, tmp_path):
    import json
    import shutil

    from clipstudy.store import config_hash

    world = small_world  # 256 pairs
    rows = quality.save_subset(np.arange(0, 256, 2), tmp_path / "runs")
    cfg = TrainConfig(data=str(world), model="vit-ti-8", samples=128, batch_size=64, warmup=0, data_subset=str(rows))
    run = train_or_load(cfg, runs_dir=tmp_path / "runs", progress=False, suites=["id"])
    assert run["summary"]["pool_pairs"] == 128
    moved = shutil.copy(rows, tmp_path / "elsewhere.npy")  # the same rows at another path: the same run
    assert config_hash(TrainConfig(**{**cfg.__dict__, "data_subset": str(moved)})) == config_hash(cfg)
    other = quality.save_subset(np.arange(1, 256, 2), tmp_path / "runs")
    assert config_hash(TrainConfig(**{**cfg.__dict__, "data_subset": str(other)})) != config_hash(cfg)
    assert config_hash(TrainConfig(**{**cfg.__dict__, "data_subset": ""})) != config_hash(cfg)
    assert json.loads((run["dir"] / "config.json").read_text())["train"]["data_subset"] == str(rows)
    np.save(tmp_path / "bad.npy", np.array([0, 999]))
    with pytest.raises(Exception, match="row indices of the pool"):
        from clipstudy.train import train
        train(TrainConfig(**{**cfg.__dict__, "data_subset": str(tmp_path / "bad.npy"), "out": str(tmp_path / "x")}),
              progress=False)
    with pytest.raises(ConfigError, match="data_subset"):
        TrainConfig(**{**cfg.__dict__, "data_limit": 64}).check()


def test_the_chapters_runs_are_counted_once_before_any_score():
    """chapters.quality_runs: the reference, every cut of the main rate in every regime (the whole
    pool's one epoch is its equal samples: one run), the sweep's rates in its regimes, seeds and suites."""
    sizes = {"seeds": [0, 1], "noise": 0.3, "noise_rates": [0.1, 0.3], "reference": {"rows": 10, "epochs": 2},
             "tops": [0.5, 1.0], "regimes": ["one epoch", "equal samples"], "sweep_regimes": ["one epoch"],
             "sweep_seeds": [0], "sweep_suites": ["id"]}
    runs = chapters.quality_runs(sizes, pool=110)  # 100 candidates
    assert runs[0] == {"noise": None, "top": None, "regimes": ["reference"], "samples": 20, "seed": 0, "suites": ["id"]}
    cells = [(r["noise"], r["top"], tuple(r["regimes"]), r["samples"], r["seed"], r["suites"]) for r in runs[1:]]
    assert cells == [(0.1, 0.5, ("one epoch",), 50, 0, ["id"]), (0.1, 1.0, ("one epoch",), 100, 0, ["id"]),
                     (0.3, 0.5, ("one epoch",), 50, 0, None), (0.3, 0.5, ("one epoch",), 50, 1, None),
                     (0.3, 0.5, ("equal samples",), 100, 0, None), (0.3, 0.5, ("equal samples",), 100, 1, None),
                     (0.3, 1.0, ("one epoch", "equal samples"), 100, 0, None),
                     (0.3, 1.0, ("one epoch", "equal samples"), 100, 1, None)]
    laptop = chapters.QUALITY["laptop"]  # the claims' rate at every laptop seed; the sweep (no claim) at 3
    assert {r["seed"] for r in chapters.quality_runs(laptop, 32_768) if r["noise"] == laptop["noise"]} == set(
        chapters.LAPTOP_SEEDS)
    assert {r["seed"] for r in chapters.quality_runs(laptop, 32_768) if r["noise"] not in (None, laptop["noise"])} == {0, 1, 2}
