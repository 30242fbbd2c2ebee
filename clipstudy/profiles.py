"""Profiles: the same notebook at another size (big_vision's `runlocal`), as data.

    smoke   seconds on a laptop CPU: a tiny model and a few hundred steps' worth of nothing; CI
    laptop  minutes per chapter on 2 CPU cores: the default of `make book`
    gpu     one GPU, the EmojiWorld at 64 px and real budgets
    real    one or more GPUs on real data (CC3M/CC12M shards); pass data= and world= yourself

A notebook reads `PROFILES[profile]["train"]` for its TrainConfig fields and
`PROFILES[profile]["world"]` for the world it expects (`make book` builds the laptop world).
"""

from __future__ import annotations

from clipstudy.config import ConfigError

# The chapters' grids per profile are in clipstudy/chapters.py; `study_world` is the world the
# chapters use (built once under data/worlds/study-<profile>). At laptop scale a 100-class world:
# the calibrated recipe learns it within the chapters' budgets (the book's calibration page),
# where the 1,021-class default world needs ~250k samples to leave chance (the EmojiWorld page).
SHIFT_STYLES = ["openmoji", "noto-color", "fluent-flat", "openmoji-line", "noto-mono"]

PROFILES: dict[str, dict] = {
    "smoke": {
        "world": {"pairs": 2_048, "classes": 60, "retrieval_images": 200, "probe_per_class": 12},
        "train": {"model": "vit-ti-8", "samples": 2_048, "batch_size": 128, "warmup": 256},
        "study_world": {"pairs": 1_024, "classes": 20, "retrieval_images": 100, "probe_per_class": 10,
                        "eval_per_class": 2},
    },
    "laptop": {  # the defaults: WorldConfig() and TrainConfig(), 5-10 minutes of training on 2 cores (bf16)
        "world": {},
        "train": {},
        # 100 images per class and style in `id` and each shift suite: 10,000, so an accuracy's
        # standard error is at most 0.5 points. Held out: three colour artists (the ImageNet-R
        # analogue) and two line-art renditions (the Sketch analogue).
        "study_world": {"pairs": 32_768, "classes": 100, "eval_per_class": 100, "retrieval_images": 1_000,
                        "shift_styles": SHIFT_STYLES},
    },
    "gpu": {
        "world": {"pairs": 1_000_000, "image_size": 64},
        "train": {"model": "vit-b-8", "samples": 10_000_000, "batch_size": 1024, "warmup": 100_000,
                  "precision": "bf16"},
        "study_world": {"pairs": 1_000_000, "image_size": 64},
    },
    "real": {  # data= webdataset shards; evaluation world= any world folder or real suites
        "world": {"image_size": 64},
        "train": {"model": "vit-b-8", "samples": 30_000_000, "batch_size": 2048, "warmup": 2_000 * 2048,
                  "precision": "bf16", "image_size": 64},
        "study_world": {"image_size": 64},
    },
}


def profile(name: str) -> dict[str, dict]:
    if name not in PROFILES:
        raise ConfigError(f"profile={name!r} is not valid; choose one of {list(PROFILES)}")
    return PROFILES[name]
