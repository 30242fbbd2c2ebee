"""What an augmentation does to a pair's caption: how often its crop cuts out an emoji the caption
names, and how often its flip reverses a "to the left of" the caption states.

    crops.caption_damage(world, "stacked_randaugment", limit=8_192)
    -> {"augment": ..., "crop area": "20-100%", "named emoji cut": 0.31, "relation flipped": 0.07, ...}

Exact for the world's own pool: `world.build.pool_layouts` redraws every training scene's layout
(where each emoji lies) from the stream `build` drew it from, and the crop boxes come from the
augmentation's own sampler (`augment.crop_boxes`, the same scale and ratio as its pipeline). A
named emoji counts as cut when the box keeps less than `visible` of its sprite's square (the
sprite's transparent corners make this a lower bound on what the eye loses). Every emoji of a
scene is named by its caption (with its count), so a cut emoji is a caption that now names
something the image does not show. Cost: a second for 32k scenes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from clipstudy import augment
from clipstudy.config import from_dict
from clipstudy.world import WorldConfig
from clipstudy.world.build import pool_layouts
from clipstudy.world.scenes import sprite_sizes

FLIPPED = ("to the left of", "to the right of")  # relations a horizontal flip reverses (above/below it keeps)


def caption_damage(world: str | Path, name: str, limit: int = 0, visible: float = 0.5, seed: int = 0) -> dict:
    """For the first `limit` pairs of the world's pool (0: all), one crop per scene as `name` draws
    it: the share of scenes in which some named emoji keeps less than `visible` of its area, and
    the share of captions whose left/right relation a flip reverses (flip_p x those stating one)."""
    world = Path(world)
    info = json.loads((world / "world.json").read_text())
    cfg = from_dict(WorldConfig, info["config"])
    layouts = pool_layouts(cfg, len(info["classes"]["names"]), len(cfg.train_styles))
    n = min(limit or cfg.pairs, cfg.pairs)
    with open(world / "train" / "meta.jsonl") as f:
        captions = [json.loads(line)["caption"] for _, line in zip(range(n), f)]
    params = augment.crop_settings(name)
    out = {"augment": name, "pairs": n, "crop area": "none", "named emoji cut": 0.0, "relation flipped": 0.0}
    if params is None:
        return out
    size = cfg.image_size
    g = torch.Generator().manual_seed(seed)
    top, left, height, width = (t.numpy() for t in augment.crop_boxes(n, size, size, params["scale"], params["ratio"], g))
    side = np.asarray(sprite_sizes(size))[layouts.scale[:n]]  # [n, K]
    y, x = layouts.y[:n].astype(float), layouts.x[:n].astype(float)
    overlap_y = np.clip(np.minimum(y + side, (top + height)[:, None]) - np.maximum(y, top[:, None]), 0, None)
    overlap_x = np.clip(np.minimum(x + side, (left + width)[:, None]) - np.maximum(x, left[:, None]), 0, None)
    kept = overlap_y * overlap_x / (side * side)
    named = layouts.classes[:n] >= 0
    cut = (named & (kept < visible)).any(axis=1)
    relation = np.array([any(r in c for r in FLIPPED) for c in captions])
    lo, hi = params["scale"]
    out.update({"crop area": f"{100 * lo:.0f}-{100 * hi:.0f}%", "named emoji cut": float(cut.mean()),
                "relation flipped": float(params["flip_p"] * relation.mean()),
                "captions with left/right": float(relation.mean())})
    return out
