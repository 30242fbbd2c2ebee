"""The world a chapter trains and evaluates on, and its chance level.

    world = worlds.study_world("laptop")         # data/worlds/study-laptop, built once
    worlds.chance(world)                         # zero-shot top-1 of a random guess, in %

A profile's study world is an EmojiWorld built from `profiles.PROFILES[p]["study_world"]`
(rebuilt when those settings change); the data-quality chapter adds noisy variants of it; the
real profile takes a real world the user built (`python -m clipstudy world real`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from clipstudy import quality
from clipstudy.config import ConfigError, from_dict
from clipstudy.data import load_world_info
from clipstudy.profiles import profile as get_profile
from clipstudy.world import WorldConfig, build_world

REAL_PROFILE = "real"  # the profile whose chapters run on a real world (clipstudy.real.build_real_world)

REAL_WORLD_COMMAND = ("python -m clipstudy world real --out data/worlds/real --pool /data/cc3m/shards --image-size 64 "
                      "--eval id=imagenet1k:/data/imagenet/val --eval probe=imagenet1k:/data/imagenet/train-subset "
                      "--eval shift-imagenet-r=imagenet-r:/data/imagenet-r --eval retrieval=mscoco_captions:/data/coco")


def study_world(profile: str, world: str = "", root: str | Path = "data/worlds", progress: bool = False,
                noise: float = 0.0) -> Path:
    """The world the chapters train and evaluate on: `world` if given, else the profile's study
    world, built once into `<root>/study-<profile>` (rebuilt if the profile's settings changed).
    `noise` > 0: the same world with that share of its pool captions noisy (the data-quality
    chapter's mix, `quality.noise_mix`), in `<root>/study-<profile>-noise<percent>`. The real
    profile has no world to build: it needs `world`, a real world folder."""
    if world and not noise:
        return Path(world)
    if world:
        raise ConfigError(f"a noisy variant of a given world ({world}) cannot be built here; build it with "
                          f"`python -m clipstudy world build` and the noise_* options, or leave world empty")
    if profile == REAL_PROFILE:
        raise ConfigError(f"the {REAL_PROFILE} profile needs study_world= a real world folder, built with "
                          f"`{REAL_WORLD_COMMAND}`")
    cfg = from_dict(WorldConfig, {**get_profile(profile)["study_world"], **quality.noise_mix(noise)})
    path = Path(root) / (f"study-{profile}" + (f"-noise{round(100 * noise)}" if noise else ""))
    info = path / "world.json"
    built = json.loads(info.read_text())["config"] if info.is_file() else None
    if built != json.loads(json.dumps(dataclasses.asdict(cfg))):  # tuples -> lists, as world.json holds them
        build_world(cfg, path, overwrite=True, progress=progress)
    return path


def chance(world: Path) -> float:
    """Zero-shot top-1 of a random guess on the world's `id` suite, in %: one over the world's
    classes (a real world's are its `id` set's: ImageNet's 1,000 with only a part of its folders)."""
    classes = len(load_world_info(world)["classes"]["names"])
    if not classes:
        raise ConfigError(f"{world} has no classification suite, so no zero-shot chance level")
    return 100 / classes
