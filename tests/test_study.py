"""Chapter plumbing: profiles' chapter tables, grids of configs, tidy tables, seed statistics."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from clipstudy import compute, prose, stats, study
from clipstudy.config import ConfigError
from clipstudy.chapters import CHAPTERS, PAGES


@pytest.fixture(scope="module")
def tiny_world(make_world):
    """The shared tiny world (tests/conftest.py) at 10 classes (chance 10%) and a pool of 512 pairs."""
    return make_world(classes=10, pairs=512)


@pytest.mark.parametrize("profile", ["smoke", "laptop", "gpu"])
def test_chapter_grids_meet_the_issue(profile, tiny_world):
    dq = CHAPTERS["data_quantity"][profile]["grid"]
    pools = sorted({p["data_limit"] for p in dq})
    assert pools[-1] / pools[0] >= (4 if profile == "smoke" else 16)
    vits = {p["model"] for p in CHAPTERS["vit_size"][profile]["grid"]}
    assert len(vits) >= (2 if profile == "smoke" else 3) and all(m.startswith("vit-") for m in vits)
    assert {"vit-b-16", "rn50", "mixer-b-16"} <= {p["model"] for p in CHAPTERS["cnn_vs_vit"][profile]["grid"]}
    for name in CHAPTERS:  # every point is a valid TrainConfig (unknown keys would raise)
        sizes = study.chapter(profile, name)
        assert study.configs({**sizes, "grid": sizes["grid"][:2]}, tiny_world)
        if profile != "smoke":
            assert len(sizes["seeds"]) >= 3  # verdicts need a t-interval over >= 3 seeds


def test_configs_turn_epochs_into_samples(tiny_world):
    sizes = {"train": {"batch_size": 64}, "seeds": [0, 1],
             "grid": [{"data_limit": 128, "epochs": 4}, {"epochs": 2}, {"samples": 300}]}
    cfgs = study.configs(sizes, tiny_world)
    assert [(c.samples, c.seed) for c in cfgs] == [(512, 0), (512, 1), (1024, 0), (1024, 1), (300, 0), (300, 1)]
    assert {c.data for c in cfgs} == {str(tiny_world)} and {c.batch_size for c in cfgs} == {64}


def test_unknown_chapter_or_profile_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"no chapter 'quality'; chapters: \['augmentation', 'cnn_vs_vit', 'data_quantity'"):
        study.chapter("laptop", "quality")
    with pytest.raises(ConfigError, match=r"profile='huge' is not valid; choose one of \['smoke', 'laptop', 'gpu', 'real'\]"):
        study.chapter("huge", "vit_size")


def _table():
    rows = []
    for seed, (a_small, b_small, a_large, b_large) in enumerate([(1.0, 2.0, 3.0, 9.0), (2.0, 2.0, 3.0, 7.0)]):
        rows += [{"seed": seed, "pool": 100, "epochs": 1, "zero-shot": a_small, "pflops": 1.0},
                 {"seed": seed, "pool": 100, "epochs": 4, "zero-shot": b_small, "pflops": 4.0},
                 {"seed": seed, "pool": 1600, "epochs": 1, "zero-shot": a_large, "pflops": 16.0},
                 {"seed": seed, "pool": 1600, "epochs": 4, "zero-shot": b_large, "pflops": 64.0}]
    return pd.DataFrame(rows)


def test_aggregate_gives_mean_spread_and_n():
    agg = stats.aggregate(_table(), ["pool", "epochs"], ["zero-shot"]).set_index(["pool", "epochs"])
    assert agg.loc[(100, 1), "zero-shot_mean"] == 1.5
    assert agg.loc[(1600, 4), "zero-shot_std"] == pytest.approx(2 ** 0.5)
    assert agg.loc[(1600, 4), ["zero-shot_min", "zero-shot_max"]].tolist() == [7.0, 9.0]
    assert set(agg["n"]) == {2}
    one_seed = stats.aggregate(_table()[lambda t: t.seed == 0], ["pool", "epochs"], ["zero-shot"])
    assert set(one_seed["zero-shot_std"]) == {0.0} and set(one_seed["n"]) == {1}


def test_difference_pairs_by_seed():
    d = stats.difference(_table(), "zero-shot", "epochs", 1, 4, by=["pool"]).set_index("pool")
    assert d.loc[100, "mean"] == 0.5 and d.loc[100, "std"] == pytest.approx(0.5 ** 0.5)
    assert d.loc[1600, "mean"] == 5.0 and d.loc[1600, "n"] == 2


def test_pm_prints_mean_spread_and_n():
    assert stats.pm(2.0, 0.5, 2.0) == "+2.0 ± 0.5 (n=2)" and stats.pm(2.0, 0.0, 1) == "+2.0 (n=1)"


def test_plan_lists_every_chapter():
    text = prose.plan("laptop")
    for page in PAGES.values():
        assert f"{{doc}}`{page}`" in text


def test_every_chapter_has_its_notebook_its_place_in_the_book_and_the_landing_page():
    # the chapter registry (chapters.PAGES) is the one list; the book's files must follow it
    root = Path(__file__).resolve().parent.parent
    toc, intro = (root / "_toc.yml").read_text(), (root / "book" / "intro.md").read_text()
    for name, page in PAGES.items():
        assert (root / "notebooks" / f"{page}.ipynb").is_file(), name
        assert f"file: book/{page}\n" in toc and f"{{doc}}`{page}`" in intro, page
    assert set(PAGES) == set(CHAPTERS) | {"data_quality"}  # every grid has a page, and A2 (cuts, not a grid)


def test_floor_note_counts_runs_at_chance(tiny_world):  # 10 classes: chance 10%
    table = pd.DataFrame({"zero-shot": [10.5, 9.2, 14.0], "samples": [100, 200, 400]})
    note = prose.floor_note(table, tiny_world)
    assert note.startswith("2 of 3 runs score within 1 point of chance (10.0%)") and "400" in note
    assert prose.floor_note(table.iloc[2:], tiny_world).startswith("Every run scores more than 1 point above")


def test_a_recorded_evaluation_serves_the_suites_it_covers(tmp_path):
    import json

    from clipstudy.evaluate import EVAL_VERSION
    from clipstudy.data import data_identity
    from clipstudy.records import recorded_eval

    world = tmp_path / "world"
    world.mkdir()
    (world / "world.json").write_text(json.dumps({"suites": {}}))
    run = tmp_path / "run"
    run.mkdir()

    def record(suites, version=EVAL_VERSION):
        entry = {"metrics": {"id/top1": 0.5}, "version": version, "world": data_identity(world), "suites": suites}
        (run / "eval.json").write_text(json.dumps({str(world): entry}))

    record(["id", "probe", "retrieval"])  # a chapter that scores only what its claims use
    assert recorded_eval(run, world, ["id"]) == {"id/top1": 0.5}
    assert recorded_eval(run, world, ["retrieval", "id"]) is not None
    assert recorded_eval(run, world) is None  # all suites were not scored
    assert recorded_eval(run, world, ["id", "shift-openmoji"]) is None
    record(None)  # every suite
    assert recorded_eval(run, world, ["id"]) is not None and recorded_eval(run, world) is not None
    record(None, version=EVAL_VERSION - 1)  # an older protocol is redone
    assert recorded_eval(run, world, ["id"]) is None


@pytest.mark.parametrize("train, name", [
    ({}, "CLIP"), ({"patch_dropout": 0.5}, "FLIP"), ({"patch_dropout": 0.25}, "FLIP(0.25)"), ({"tome_r": 2}, "ToMe(r=2)"),
    ({"loss": "siglip", "patch_dropout": 0.5}, "SigLIP+FLIP"), ({"ssl_scale": 1.0, "augment": "crop_flip"}, "SLIP"),
    ({"augment": "randaugment"}, "CLIP+Aug(randaugment)"),
    ({"pretrained_text": "minilm", "pretrained_image": "simclr", "lock_image": True},
     "CLIP+image:simclr(locked)+text:minilm"),
])
def test_strategy_names_a_run_as_the_papers_do(train, name):
    assert study.strategy(train) == name


def test_parallelism_splits_the_cores_and_takes_an_override(monkeypatch):
    monkeypatch.delenv(compute.WORKERS_ENV, raising=False)
    assert compute.parallelism(runs=10, cores=2) == (2, 1)  # small towers: one thread per run
    assert compute.parallelism(runs=1, cores=2) == (1, 2)  # one run left: it gets every core
    assert compute.parallelism(runs=10, cores=8) == (4, 2)
    monkeypatch.setattr(compute.torch.cuda, "is_available", lambda: True)
    assert compute.parallelism(runs=10, cores=16) == (1, 16)  # runs on a GPU: one at a time
    monkeypatch.setenv(compute.WORKERS_ENV, "3x1")
    assert compute.parallelism(runs=10, cores=2) == (3, 1)
    monkeypatch.setenv(compute.WORKERS_ENV, "1")
    assert compute.parallelism(runs=10, cores=4) == (1, 4)
    monkeypatch.setenv(compute.WORKERS_ENV, "two")
    with pytest.raises(ConfigError, match=r"CLIPSTUDY_WORKERS='two' is not valid; use W or WxT"):
        compute.parallelism(runs=10, cores=2)


def test_precision_auto_follows_the_machine_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(compute.PRECISION_ENV, raising=False)
    assert compute.resolve_precision("auto", "cpu") == ("bf16" if compute.cpu_has_bf16() else "fp32")
    monkeypatch.setenv(compute.PRECISION_ENV, "fp32")
    assert compute.resolve_precision("auto", "cpu") == "fp32" and compute.resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setenv(compute.PRECISION_ENV, "fp16")
    with pytest.raises(ConfigError, match=r"CLIPSTUDY_PRECISION='fp16' is not valid; use fp32 or bf16"):
        compute.resolve_precision("auto", "cpu")


def test_runs_are_costed_by_samples_and_flops_so_the_costliest_start_first(tiny_world, tmp_path):
    """train_all starts the costliest runs first (samples x training GFLOPs per sample), so a larger
    tower or a longer run does not come last and train alone; no world.json: no costs, grid order."""
    grid = {"train": {"batch_size": 64}, "seeds": [0, 1],
            "grid": [{"model": "vit-ti-8", "samples": 256}, {"model": "vit-s-8", "samples": 256},
                     {"model": "vit-ti-8", "samples": 1024}]}
    cfgs = study.configs(grid, tiny_world)  # seeds inner: [ti 256 x2, s 256 x2, ti 1024 x2]
    costs = study.run_costs(cfgs)
    assert costs[4] == costs[5] == 4 * costs[0] and costs[0] < costs[2]  # 4x the samples; vit-s-8 costs more a sample
    assert study.run_costs([dataclasses.replace(c, data=str(tmp_path)) for c in cfgs]) is None


def test_time_left_prices_each_pending_run_from_the_finished_ones():
    """Runs of seconds = 0.002 x GFLOPs + 30 (30 s of start-up and evaluation whatever the size):
    once two sizes have finished, the pending runs are priced exactly, shared among the workers, and
    never below the longest pending run; a pace of cost alone would price the small runs at ~nothing."""
    run = lambda cost: (cost, 0.002 * cost + 30.0)  # noqa: E731
    timed, pending = [run(50_000), run(50_000), run(10_000)], [10_000, 1_000, 1_000, 1_000]
    assert study.time_left(timed, pending, workers=2) == pytest.approx((50 + 3 * 32) / 2)
    assert study.time_left(timed, [50_000], workers=2) == pytest.approx(130)  # one run left: no sharing
    pace = sum(c for c, _ in timed) / sum(s for _, s in timed)
    assert sum(pending) / pace / 2 < 0.5 * study.time_left(timed, pending, workers=2)
    # one size finished: no intercept to fit, priced by cost; nothing finished: no estimate; nothing pending: 0
    assert study.time_left([run(50_000)], [25_000], workers=1) == pytest.approx(130 / 2)
    assert study.time_left([], [1_000], workers=1) is None and study.time_left(timed, [], workers=2) == 0
