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

PROFILES: dict[str, dict[str, dict]] = {
    "smoke": {
        "world": {"pairs": 2_048, "classes": 60, "retrieval_images": 200, "probe_per_class": 12},
        "train": {"model": "vit-ti-8", "samples": 2_048, "batch_size": 128, "warmup": 256},
    },
    "laptop": {  # the defaults: WorldConfig() and TrainConfig(), 5-10 minutes of training on 2 cores (bf16)
        "world": {},
        "train": {},
    },
    "gpu": {
        "world": {"pairs": 1_000_000, "image_size": 64},
        "train": {"model": "vit-b-8", "samples": 10_000_000, "batch_size": 1024, "warmup": 100_000,
                  "precision": "bf16"},
    },
    "real": {  # data= webdataset shards; evaluation world= any world folder or real suites
        "world": {"image_size": 64},
        "train": {"model": "vit-b-8", "samples": 30_000_000, "batch_size": 2048, "warmup": 2_000 * 2048,
                  "precision": "bf16", "image_size": 64},
    },
}


def profile(name: str) -> dict[str, dict]:
    if name not in PROFILES:
        raise ConfigError(f"profile={name!r} is not valid; choose one of {list(PROFILES)}")
    return PROFILES[name]
