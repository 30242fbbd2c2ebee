"""Profiles: the same notebook at another size (big_vision's `runlocal`), as data.

    smoke   seconds on a laptop CPU: a tiny model and a few hundred steps' worth of nothing; CI
    laptop  minutes per chapter on 2 CPU cores: the default of `make book`
    gpu     one GPU, the EmojiWorld at 64 px and real budgets
    real    one or more GPUs on real data (CC3M/CC12M shards); pass data= and world= yourself

A notebook reads `PROFILES[profile]["train"]` for its TrainConfig fields and
`PROFILES[profile]["world"]` for the world it expects (`make book` builds the laptop world).
"""

from __future__ import annotations

import itertools

from clipstudy.config import ConfigError

def _grid(**axes) -> list[dict]:
    """Every combination of the axes' values, as a list of config-field dicts."""
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


# Chapters: `train` holds the fields every run of the chapter shares, `grid` one dict of fields per
# point (`epochs` = samples / pool), `seeds` the seeds of every point. `study_world` is the world
# the chapters use (built once under data/worlds/study-<profile>): at laptop scale a 100-class
# world, where ~32k samples lift zero-shot accuracy above chance; the 1,021-class default world
# needs ~250k samples for that (the EmojiWorld page).
VIT_SIZES = ["vit-ti-8", "vit-b-16", "vit-s-8", "vit-b-8"]  # image GFLOPs/sample at 32 px: 0.028 0.065 0.093 0.218
MATCHED = ["vit-b-16", "rn50", "convnext-t", "swin-t", "mixer-b-16"]  # ~0.06 image GFLOPs/sample at 32 px


def _chapters(pools: list[int], epochs: list[int], equal_samples: int, cnn_samples: list[int], train: dict,
              seeds: dict[str, list[int]], vit_sizes: list[str] = VIT_SIZES) -> dict[str, dict]:
    return {
        "data_quantity": {"train": {**train, "model": "vit-ti-8"}, "seeds": seeds["data_quantity"],
                          "grid": _grid(data_limit=pools, epochs=epochs)},
        # one epoch on each pool but the smallest, and `equal_samples` samples on the smaller pools
        "vit_size": {"train": train, "seeds": seeds["vit_size"],
                     "grid": _grid(model=vit_sizes, data_limit=pools[1:], epochs=[1])
                     + _grid(model=vit_sizes, data_limit=[p for p in pools[1:] if p < equal_samples],
                             samples=[equal_samples])},
        "cnn_vs_vit": {"train": train, "seeds": seeds["cnn_vs_vit"],
                       "grid": _grid(model=MATCHED, data_limit=pools[-1:], samples=cnn_samples)},
    }


PROFILES: dict[str, dict] = {
    "smoke": {
        "world": {"pairs": 2_048, "classes": 60, "retrieval_images": 200, "probe_per_class": 12},
        "train": {"model": "vit-ti-8", "samples": 2_048, "batch_size": 128, "warmup": 256},
        "study_world": {"pairs": 1_024, "classes": 20, "retrieval_images": 100, "probe_per_class": 10,
                        "eval_per_class": 2},
        "chapters": _chapters(pools=[256, 512, 1_024], epochs=[1, 2], equal_samples=1_024, cnn_samples=[256],
                              train={"batch_size": 64, "warmup": 64}, vit_sizes=VIT_SIZES,
                              seeds={"data_quantity": [0, 1], "vit_size": [0], "cnn_vs_vit": [0]}),
    },
    "laptop": {  # the defaults: WorldConfig() and TrainConfig(), 5-10 minutes of training on 2 cores (bf16)
        "world": {},
        "train": {},
        "study_world": {"pairs": 32_768, "classes": 100, "eval_per_class": 10, "retrieval_images": 1_000},
        # 31 runs, 37.6 minutes for the chapters on 2 cores (bf16, measured). Below ~16k samples a
        # from-scratch CLIP stays at chance on this world (measured: vit-ti-8, batch 16-256), so
        # the budgets reach 32k-64k samples and the grids are small. Batch 64: at these budgets
        # more steps beat bigger batches (32k samples: 2.5% zero-shot at batch 64, ~1.5% at 256).
        "chapters": _chapters(pools=[2_048, 8_192, 32_768], epochs=[1, 2], equal_samples=32_768,
                              cnn_samples=[16_384, 32_768], train={"batch_size": 64, "warmup": 1_024},
                              seeds={"data_quantity": [0, 1], "vit_size": [0], "cnn_vs_vit": [0]}),
    },
    "gpu": {
        "world": {"pairs": 1_000_000, "image_size": 64},
        "train": {"model": "vit-b-8", "samples": 10_000_000, "batch_size": 1024, "warmup": 100_000,
                  "precision": "bf16"},
        "study_world": {"pairs": 1_000_000, "image_size": 64},
        "chapters": _chapters(pools=[62_500, 250_000, 1_000_000], epochs=[2, 4, 8, 16, 32],
                              equal_samples=8_000_000, cnn_samples=[1_000_000, 4_000_000, 16_000_000],
                              train={"batch_size": 1024, "warmup": 50_000, "precision": "bf16"},
                              vit_sizes=VIT_SIZES + ["vit-l-8"],
                              seeds={"data_quantity": [0, 1, 2], "vit_size": [0, 1], "cnn_vs_vit": [0, 1]}),
    },
    "real": {  # data= webdataset shards; evaluation world= any world folder or real suites
        "world": {"image_size": 64},
        "train": {"model": "vit-b-8", "samples": 30_000_000, "batch_size": 2048, "warmup": 2_000 * 2048,
                  "precision": "bf16", "image_size": 64},
        "study_world": {"image_size": 64},
        "chapters": {},  # a later issue: real-data chapters
    },
}


def profile(name: str) -> dict[str, dict]:
    if name not in PROFILES:
        raise ConfigError(f"profile={name!r} is not valid; choose one of {list(PROFILES)}")
    return PROFILES[name]
