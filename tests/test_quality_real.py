"""The data-quality chapter on a real world (quality_chapter.quality_table at the real profile): a tiny real
world whose pool is a webdataset shard of 64 JPEG / PNG pairs (one image corrupt) captioned with
its `id` set's classes, cut by a reference's scores and trained at tiny sizes; its cuts have no
precision or recall (real data has no noise labels); its page runs without them; `chapter train
--name data_quality` trains it as one process and refuses shards and torchrun. ~30 s on 2 cores."""

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from clipstudy import chapter_train, chapters, cli, prose, quality, quality_chapter, verdicts
from clipstudy.config import ConfigError
from clipstudy.data import LazyImages, load_pairs
from clipstudy.real import build_real_world
from clipstudy.train import TrainConfig, train

from test_real_eval import CORRUPT, _image, _tar
from test_real_world import WNIDS, _coco, _wnid_folders

CLASSES = ["tench", "goldfish", "Chihuahua"]  # WNIDS' names: the world's `id` classes
POOL = 64
TINY = {"train": {"model": "vit-ti-8", "batch_size": 16, "warmup": 0, "data_workers": 0},
        "seeds": [0, 1], "reference": {"rows": 16, "epochs": 1}, "tops": [0.5, 1.0],
        "regimes": ["one epoch", "equal samples"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A real world: suites id, probe and retrieval; its pool one shard of 64 pairs, row 5's
    image corrupt (it stays a row: a streamed pool decodes images only when they are drawn)."""
    root = tmp_path_factory.mktemp("quality-real")
    samples = []
    for i in range(POOL):
        image = CORRUPT if i == 5 else _image(200 + i, "PNG" if i % 4 == 0 else "JPEG")
        samples.append((f"{i:04d}", {"png" if i % 4 == 0 and i != 5 else "jpg": image,
                                     "txt": f"a photo of a {CLASSES[i % 3]} number {i}".encode()}))
    (root / "pool").mkdir()
    _tar(root / "pool" / "0.tar", samples)
    sets = {"id": (None, _wnid_folders(root / "val", WNIDS, per_class=2)),
            "probe": (None, _wnid_folders(root / "train", WNIDS, per_class=3)),
            "retrieval": ("mscoco_captions", _coco(root / "coco"))}
    return build_real_world(root / "real", str(root / "pool"), sets, 32)


@pytest.fixture(scope="module")
def reference(world):
    """A tiny clipstudy run trained on the whole pool, given as the chapter's reference."""
    out = world.parent / "reference"
    train(TrainConfig(data=str(world), model="vit-ti-8", samples=32, batch_size=16, warmup=0, out=str(out)),
          progress=False)
    return out


@pytest.fixture(scope="module")
def chapter(world, reference):
    """quality_table at the real profile at tiny sizes -> (its three values, runs_dir)."""
    runs_dir = world.parent / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(chapters.QUALITY, "real", TINY)
        return quality_chapter.quality_table("real", str(world), runs_dir, reference=str(reference)), runs_dir


def test_a_real_pool_streams_and_scores(world, reference):
    pairs = load_pairs(world)
    assert isinstance(pairs.images, LazyImages) and len(pairs) == POOL
    assert pairs.images[3:7].shape == (4, 32, 32, 3)  # a slice, as image_features reads it
    s = quality.scores(reference, world)
    assert s.shape == (POOL,) and np.isfinite(s).all() and np.abs(s).max() <= 1 + 1e-5


def test_the_chapter_on_a_real_world_cuts_trains_and_has_no_precision(chapter, world):
    (path, table, cuts), runs_dir = chapter
    assert path == world
    assert list(cuts.columns) == ["noise", "top", "kept"]  # no labels: no precision, recall, removed/*
    assert cuts["noise"].isna().all() and cuts["top"].tolist() == [0.5, 1.0]
    assert cuts["kept"].tolist() == [POOL / 2, POOL]  # every row is a candidate: the reference is the user's
    assert len(table) == 2 * 2 * 2 and table["noise"].isna().all()  # tops x regimes x seeds
    assert table.groupby(["top", "regime"])["seed"].apply(sorted).tolist() == [[0, 1]] * 4
    assert table["run"].nunique() == 6  # the whole pool's two regimes are one run per seed
    own_reference = {**TINY, "reference": {"rows": 0, "epochs": 1}}  # every row a candidate
    planned = chapters.quality_runs(own_reference, POOL)[1:]  # what the plan and cost tables count
    assert len(planned) == 6 and sorted(r["samples"] for r in planned) == sorted(
        table.drop_duplicates("run")["samples"].tolist())
    one = table[(table["top"] == 0.5) & (table["regime"] == "one epoch")]
    equal = table[(table["top"] == 0.5) & (table["regime"] == "equal samples")]
    assert (one["samples"] == POOL // 2).all() and (equal["samples"] == POOL).all() and (one["pool"] == POOL // 2).all()
    assert {"zero-shot", "10-shot", "i2t R@1"} <= set(table.columns)
    for run in table["run"]:
        cfg = json.loads((runs_dir / run / "config.json").read_text())["train"]
        assert cfg["data"] == str(world) and np.load(cfg["data_subset"]).max() < POOL


def test_the_page_runs_on_a_real_world_without_labels_or_sweep(chapter, world, reference, monkeypatch):
    """The notebook's code cells, run here with its parameters at the real profile (the runs load
    from the store): the cuts' and sweep's cells say why they are absent."""
    import IPython.display

    _, runs_dir = chapter
    monkeypatch.setitem(chapters.QUALITY, "real", TINY)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs: shown.extend(objs))  # what the page displays
    nb = nbformat.read(Path(__file__).parent.parent / "notebooks" / "15_data_quality.ipynb", as_version=4)
    scope = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or "prose.real_line" in cell.source:  # that prices the real grid (test_real_costs)
            continue
        if "claims.show" in cell.source:  # this grid has no 20/40/80% cuts: the claims' cells are missing, loudly
            with pytest.raises(verdicts.MissingCell, match=r"cell top 0\.4, regime one epoch has 'zero-shot'"):
                exec(cell.source, scope)
            continue
        exec(cell.source, scope)
        if "parameters" in cell.metadata.get("tags", []):
            scope.update(profile="real", study_world=str(world), runs_dir=str(runs_dir), reference=str(reference))
    out = "\n".join(o.data for o in shown if isinstance(o, IPython.display.Markdown))
    assert "No precision or recall here: real data carries no ground-truth noise labels" in out
    assert "top 50%: 32, top 100%: 64" in out and "No noise sweep here" in out
    assert scope["noise"] is None and len(scope["main"]) == len(scope["table"])


def test_a_real_chapter_needs_its_world():
    with pytest.raises(ConfigError, match="real profile needs study_world= a real world folder"):
        quality_chapter.quality_table("real", "", reference="no/such/run")


def test_chapter_train_data_quality_at_real_trains_its_reference_and_cuts(world, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(chapters.QUALITY, "real", {**TINY, "seeds": [0]})
    runs_dir = tmp_path / "runs"
    assert cli.main(["--quiet", "chapter", "train", "--name", "data_quality", "--profile", "real",
                     "--world", str(world), "--runs-dir", str(runs_dir)]) == 0
    assert "3 runs of chapter data_quality" in capsys.readouterr().out  # 2 cuts x 2 regimes, the whole pool once
    trained = [json.loads(p.read_text())["train"] for p in runs_dir.glob("*/config.json")]
    [ref] = [cfg for cfg in trained if not cfg["data_subset"]]
    assert ref["data_limit"] == 16 and ref["samples"] == 16
    cuts = sorted(np.load(cfg["data_subset"]).size for cfg in trained if cfg["data_subset"])
    assert cuts == [24, 24, 48]  # of the 48 rows the reference never saw
    assert all(np.load(cfg["data_subset"]).min() >= 16 for cfg in trained if cfg["data_subset"])


@pytest.mark.parametrize("args, env, named", [
    (["--shard", "1/2"], {}, "--shard 1/2"),
    (["--shard", "0/2"], {}, "--shard 0/2"),
    ([], {"WORLD_SIZE": "2"}, "torchrun (2 processes)"),
])
def test_chapter_train_data_quality_is_one_process(args, env, named, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a smoke world would be built under ./data/worlds
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["--quiet", "chapter", "train", "--name", "data_quality", "--profile", "smoke", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m clipstudy chapter: error:") and len(err.splitlines()) == 1
    assert named in err and "its cuts depend on the reference model's scores" in err
    assert not (tmp_path / "data").exists()  # refused before anything was built


def test_chapter_train_data_quality_reports_runs_left_out(tmp_path, capsys, monkeypatch):
    import warnings

    def one_failed(*args, **kwargs):
        warnings.warn("1 of 3 runs left out of this chapter:\nvit-ti-8-abc: loss is NaN")
        return tmp_path, pd.DataFrame(), pd.DataFrame()

    monkeypatch.setattr(chapter_train, "quality_table", one_failed)
    assert cli.main(["--quiet", "chapter", "train", "--name", "data_quality", "--profile", "smoke"]) == 1
    assert "1 of 3 runs left out of this chapter: vit-ti-8-abc: loss is NaN" in capsys.readouterr().err


def test_quality_sizes_at_real():
    q = chapters.QUALITY["real"]
    assert q["train"] == {**chapters.REAL_TRAIN, "model": "vit-b-16"} and q["seeds"] == [0, 1, 2]
    assert q["tops"] == chapters.QUALITY_TOPS and "noise_rates" not in q and "suites" not in q
    assert q["reference"]["rows"] * q["reference"]["epochs"] > 0
