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


def test_the_uncropped_stacked_randaugment_crops_nothing_and_the_page_reads_the_check():
    import pandas as pd
    import torch

    from clipstudy import prose

    assert augment.crop_settings("stacked_randaugment_nocrop") is None
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    assert augment.make("stacked_randaugment_nocrop")(images, augment.generator(0, "cpu")).shape == images.shape
    damage = pd.DataFrame([{"augment": "none", "named emoji cut": 0.0, "relation flipped": 0.0},
                           {"augment": "stacked_randaugment", "named emoji cut": 0.45, "relation flipped": 0.034},
                           {"augment": "stacked_randaugment_nocrop", "named emoji cut": 0.0, "relation flipped": 0.0}]
                          ).set_index("augment")
    summary = pd.DataFrame({"augment": ["none", "stacked_randaugment", "stacked_randaugment_nocrop"], "pool": 8192,
                            "zero-shot_mean": [30.0, 20.0, 26.0]})
    note = prose.crop_note(damage, summary)
    assert "-4.0 points against none and +6.0 against Stacked RandAugment" in note
    assert "account for +6.0 of Stacked RandAugment's -10.0 (60% of it)" in note
    assert "has no runs" in prose.crop_note(damage, summary[summary["augment"] != "stacked_randaugment_nocrop"])
    worse = summary.assign(**{"zero-shot_mean": [30.0, 20.0, 19.5]})
    assert "account for -0.5 of Stacked RandAugment's -10.0 (none of it" in prose.crop_note(damage, worse)
