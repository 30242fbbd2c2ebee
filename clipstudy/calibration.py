"""What makes a tiny CLIP learn: the calibration screen of the laptop study world, as data.

    .venv/bin/python benchmarks/calibrate.py                     # every lever, 1 seed, 3 budgets
    .venv/bin/python benchmarks/calibrate.py --levers temperature-0.03 --budgets 16384,65536

Each lever is one row: a change of world (WorldConfig fields), of recipe (TrainConfig fields) or
of zero-shot prompts, on top of the row it names as its `base`. The `path` rows are cumulative
(issue-4 recipe -> today's reference recipe); the `side` rows each try one more change on the
last path row, kept out of the reference where the screen did not show a gain. Every
(lever, budget, seed) is one run of the result store (`runs.train_or_load`), so a re-run of the
screen trains only what is missing; `benchmarks/calibrate.py` appends one JSON line per run to
`benchmarks/results/calibration.jsonl`, which the book's calibration page reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from clipstudy.config import from_dict
from clipstudy.world import WorldConfig, build_world

# The laptop study world before the levers: 100 classes, 32,768 pairs at 32 px; 100 images per
# class and style in `id` and every `shift-*` suite (10,000 images: standard error <= 0.5 points).
STUDY_WORLD = {"pairs": 32_768, "classes": 100, "eval_per_class": 100, "retrieval_images": 1_000}
# The chapters' reference tower and batch before the levers (issue 4's data-quantity chapter).
BASE_TRAIN = {"model": "vit-ti-8", "batch_size": 64, "warmup": 1_024, "lr": 1e-3, "curve_every": 4_096}
BUDGETS = [16_384, 65_536, 262_144]

LEVERS: dict[str, dict] = {
    # ---- the path: each row adds one change to the row before ----
    "issue-4 recipe": {"kind": "path", "base": None, "prompts": "clip",
                       "world": {"p_background": 0.75}, "train": {"vocab": "bpe", "context_length": 32},
                       "why": "the world and recipe the chapters ran on before calibration"},
    "background named in 25%": {"kind": "path", "base": "issue-4 recipe", "world": {"p_background": 0.25},
                                "why": "a background named in most captions lets a batch be matched by colour and texture alone"},
    "prompts in the grammar's forms": {"kind": "path", "base": "background named in 25%", "prompts": "world",
                                       "why": "zero-shot prompts worded as the training captions are"},
    "word vocabulary + 16 tokens": {"kind": "path", "base": "prompts in the grammar's forms",
                                   "train": {"vocab": "world", "context_length": 16},
                                   "why": "a token per word of the world (~300) instead of 49k BPE; paper A's 16-token text"},
    # ---- side rows: one more change each, on the last path row ----
    "temperature 0.03": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"temperature": 0.03},
                         "why": "the learnable logit scale barely moves in a few hundred AdamW steps"},
    "lr 2e-3": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"lr": 2e-3},
                "why": "more steps' worth of progress per sample"},
    "batch 128": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"batch_size": 128},
                  "why": "more negatives per step, half the steps"},
    "batch 32": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"batch_size": 32, "warmup": 512},
                 "why": "twice the steps, fewer negatives"},
    "two training styles": {"kind": "side", "base": "word vocabulary + 16 tokens",
                            "world": {"train_styles": ["twemoji", "openmoji"]},
                            "why": "a pool mixing two artists, as web data mixes renditions: can shifts show?"},
    "at most 2 emoji a scene": {"kind": "side", "base": "word vocabulary + 16 tokens", "world": {"max_objects": 2},
                                "why": "more single-emoji scenes: larger sprites, one name per caption more often"},
    "overfit 128 pairs": {"kind": "side", "base": "word vocabulary + 16 tokens", "train": {"data_limit": 128}, "budgets": [16_384],
                          "why": "sanity check: can the recipe memorise 128 pairs? (final loss near 0)"},
}


def resolve(name: str) -> dict:
    """A lever's full settings: its base's, with its own changes on top."""
    if name not in LEVERS:
        raise KeyError(f"unknown lever {name!r}; levers: {list(LEVERS)}")
    lever = LEVERS[name]
    base = resolve(lever["base"]) if lever["base"] else {"world": dict(STUDY_WORLD), "train": dict(BASE_TRAIN),
                                                          "prompts": "world"}
    return {"world": {**base["world"], **lever.get("world", {})}, "train": {**base["train"], **lever.get("train", {})},
            "prompts": lever.get("prompts", base["prompts"])}


def world_for(settings: dict, root: str | Path = "data/worlds") -> Path:
    """The world of a lever's settings, built once under `<root>/calib-<hash of its config>`."""
    cfg = from_dict(WorldConfig, settings["world"])
    fields = json.loads(json.dumps(dataclasses.asdict(cfg)))
    path = Path(root) / f"calib-{hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]}"
    if not (path / "world.json").is_file():
        build_world(cfg, path, progress=False, overwrite=True)
    return path
