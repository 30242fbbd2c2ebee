"""What augmentations do to captions (clipstudy/crops.py) on the suite's tiny world."""

import json

from clipstudy import augment, crops
from clipstudy.config import from_dict
from clipstudy.world import WorldConfig
from clipstudy.world.build import pool_layouts


def test_the_pool_layouts_are_the_ones_the_world_was_built_with(tiny_world):
    info = json.loads((tiny_world / "world.json").read_text())
    cfg = from_dict(WorldConfig, info["config"])
    layouts = pool_layouts(cfg, len(info["classes"]["names"]), len(cfg.train_styles))
    meta = [json.loads(line)["classes"] for line in (tiny_world / "train" / "meta.jsonl").read_text().splitlines()]
    assert len(layouts) == len(meta) == cfg.pairs
    assert all(sorted(int(c) for c in layouts.classes[i] if c >= 0) == sorted(meta[i]) for i in range(len(meta)))


def test_crops_that_keep_the_whole_image_cut_nothing_and_smaller_crops_cut_more(tiny_world, monkeypatch):
    none, flip, stacked = (crops.caption_damage(tiny_world, a) for a in ("none", "crop_flip", "stacked_randaugment"))
    assert none["named emoji cut"] == none["relation flipped"] == 0 and crops.caption_damage(tiny_world, "randaugment")["crop area"] == "none"
    assert 0 < flip["named emoji cut"] < stacked["named emoji cut"] < 1 and stacked["crop area"] == "20-100%"
    assert flip["relation flipped"] == stacked["relation flipped"] == 0.5 * flip["captions with left/right"]
    monkeypatch.setattr(augment, "crop_settings", lambda name: {"scale": (1.0, 1.0), "ratio": (1.0, 1.0), "flip_p": 0.0})
    whole = crops.caption_damage(tiny_world, "crop_flip")
    assert whole["named emoji cut"] == 0 and whole["relation flipped"] == 0
