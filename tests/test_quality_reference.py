"""Data-quality references that are open_clip checkpoints (clipstudy/quality.py): a clipstudy run's
checkpoint, loaded through plain open_clip, scores a pool as its run folder does; scores are cached
by what the checkpoint file is; bad references are ConfigErrors; the chapter with such a reference
trains no reference of its own. ~10 s on 2 idle cores (one 128-sample run, one smoke world)."""

import re
import shutil

import numpy as np
import open_clip
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from clipstudy import quality, quality_chapter
from clipstudy.compute import resolve_device, resolve_precision
from clipstudy.config import ConfigError
from clipstudy.data import load_pairs
from clipstudy.evaluate import image_features, text_features
from clipstudy.store import load_run
from clipstudy.train import TrainConfig, train


@pytest.fixture(scope="module")
def world(make_world):
    return make_world("small", noise_mismatch=0.3)  # tests/conftest.py: shared, read-only


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    """A tiny run with open_clip's BPE (a word vocabulary is no tokenizer open_clip finds by model
    name), its config registered in open_clip under the name saved beside the checkpoint."""
    out = tmp_path_factory.mktemp("quality-ref") / "run"
    train(TrainConfig(data=str(world), model="vit-ti-8", samples=128, batch_size=64, warmup=0, vocab="bpe",
                      out=str(out)), progress=False)
    open_clip.add_model_config(next(out.glob("clipstudy-*.json")))
    return out


def open_clip_name(run) -> str:
    return next(run.glob("clipstudy-*.json")).stem


def by_hand(run, world, mean, std) -> np.ndarray:
    """The cosines of the run's model with pixels scaled by `mean` and `std`, on the device and at
    the precision `quality.scores` picks here."""
    model, tokenizer, _ = load_run(run)
    device = str(resolve_device("auto"))
    precision = resolve_precision("auto", device)
    pairs = load_pairs(world)
    image = image_features(model.to(device), pairs.images, 512, device, precision=precision, mean=mean, std=std)
    return (image * text_features(model, tokenizer, pairs.captions, 512, device, precision)).sum(dim=1).numpy()


def test_a_checkpoint_file_scores_with_its_models_own_normalisation(world, run, tmp_path):
    spec = f"open_clip:{open_clip_name(run)}:{run / 'checkpoint.pt'}"
    s = quality.scores(spec, world, cache_dir=tmp_path)
    assert s.shape == (256,) and s.dtype == np.float32
    # a registered name with a file: open_clip's default (OpenAI) normalisation, not clipstudy's [-1, 1]
    np.testing.assert_allclose(s, by_hand(run, world, OPENAI_DATASET_MEAN, OPENAI_DATASET_STD), atol=1e-4)
    assert np.abs(s - by_hand(run, world, 0.5, 0.5)).max() > 5e-3  # ~0.02: the normalisations do differ here


def test_an_open_clip_reference_scores_as_the_run_folder(world, run, tmp_path, monkeypatch):
    # A pretrained tag that names the file and clipstudy's [-1, 1] pixels: the same model as the run
    # folder, read by open_clip. (_PRETRAINED is open_clip's tag table; a 'file' entry needs no download.)
    name = open_clip_name(run)
    tag = {"file": str(run / "checkpoint.pt"), "mean": (0.5,) * 3, "std": (0.5,) * 3}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"clipstudy_run": tag})
    s = quality.scores(f"open_clip:{name}:clipstudy_run", world, cache_dir=tmp_path)
    np.testing.assert_allclose(s, quality.scores(run, world), atol=1e-4)  # the same weights, pixels and tokens


def test_scores_are_cached_by_what_the_checkpoint_file_is(world, run, tmp_path, monkeypatch):
    ckpt = shutil.copy(run / "checkpoint.pt", tmp_path / "model.pt")
    spec = f"open_clip:{open_clip_name(run)}:{ckpt}"
    first = quality.scores(spec, world, cache_dir=tmp_path / "scores")
    [cached] = (tmp_path / "scores").glob(f"{open_clip_name(run)}-*/*.npy")

    def no_scoring(*args):
        raise AssertionError("scored again")

    monkeypatch.setattr(quality, "_reference_model", no_scoring)
    np.testing.assert_array_equal(quality.scores(spec, world, cache_dir=tmp_path / "scores"), first)
    torch.save(torch.load(ckpt, weights_only=True), ckpt)  # rewritten in place: another file
    with pytest.raises(AssertionError, match="scored again"):
        quality.scores(spec, world, cache_dir=tmp_path / "scores")
    assert cached.is_file() and not list(tmp_path.glob("scores/**/*.tmp.npy"))


@pytest.mark.parametrize("spec, named, valid", [
    ("open_clip:ViT-B-32", "open_clip:ViT-B-32", "open_clip:<model name>:<checkpoint file or pretrained tag>"),
    ("open_clip:ViT-B-32:", "open_clip:ViT-B-32:", "clipstudy run folder"),
    ("open_clip:No-Such-Model:model.pt", "No-Such-Model", "ViT-B-32"),
    ("open_clip:ViT-B-32:no_such_tag", "no_such_tag", "laion2b_s34b_b79k"),
    ("open_clip:ViT-B-32:missing/model.pt", "missing/model.pt", "checkpoint file"),
    ("open-clip:ViT-B-32:laion2b_s34b_b79k", "open-clip:ViT-B-32:laion2b_s34b_b79k", "open_clip:<model name>"),
    ("no/such/run", "no/such/run", "clipstudy run folder"),
])
def test_bad_references_name_the_value_and_the_valid_forms(spec, named, valid, world):
    with pytest.raises(ConfigError, match=re.escape(named)) as e:
        quality.scores(spec, world)
    assert valid in str(e.value)


def test_a_chapter_with_a_reference_trains_none_and_cuts_every_row(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the smoke worlds are built under ./data/worlds

    def no_reference(*args, **kwargs):
        raise AssertionError("a reference run was trained")

    planned = []
    monkeypatch.setattr(quality_chapter, "train_or_load", no_reference)
    monkeypatch.setattr(quality_chapter, "run_grid", lambda cfgs, *args, **kwargs: planned.extend(cfgs) or [])
    with pytest.raises(ConfigError, match="No-Such-Model"):  # before any world is built
        quality_chapter.quality_table("smoke", runs_dir=tmp_path / "runs", reference="open_clip:No-Such-Model:x.pt")
    assert not (tmp_path / "data").exists()
    spec = f"open_clip:{open_clip_name(run)}:{run / 'checkpoint.pt'}"
    world, table, cuts = quality_chapter.quality_table("smoke", runs_dir=tmp_path / "runs", reference=spec)
    pool = len(quality.noise_labels(world))
    whole = cuts[cuts["top"] == 1.0].iloc[0]
    assert whole["kept"] == pool and whole["recall"] == 1.0  # every row is a candidate
    assert sorted(cuts["kept"]) == [round(top * pool) for top in (0.2, 0.4, 0.6, 0.8, 1.0)]
    assert len(planned) == 10 and table.empty  # 5 cuts x 2 regimes x 1 seed, none trained here
    assert {np.load(c.data_subset).size for c in planned} == set(cuts["kept"].astype(int))
    assert list((tmp_path / "runs" / quality.SCORES).glob(f"{open_clip_name(run)}-*/*.npy"))
