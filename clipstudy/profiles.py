"""Profiles: the same notebook at another size (big_vision's `runlocal`), as data.

    smoke   seconds on a laptop CPU: a tiny model and a few hundred steps' worth of nothing; CI
    laptop  minutes per chapter on 2 CPU cores: the default of `make book`
    gpu     one GPU, the EmojiWorld at 64 px and real budgets
    real    one or more GPUs on real data (CC3M/CC12M shards): a real world, built by the user

`PROFILES[profile]["page_run"]` names the chapter whose largest run the EmojiWorld page shows
(`study.page_run`; else `PROFILES[profile]["train"]` holds the TrainConfig fields of its one run),
`PROFILES[profile]["study_world"]` the WorldConfig fields of the world every chapter trains and
evaluates on (built once under data/worlds/study-<profile>, clipstudy/worlds.py). Each chapter's
grid per profile, and the recipe the chapters share, are in clipstudy/chapters.py.
"""

from __future__ import annotations

from clipstudy.chapters import GPU_TRAIN
from clipstudy.config import ConfigError

# At laptop scale the study world has 100 classes: the calibrated recipe learns it within the
# chapters' budgets (the book's calibration page), where the 1,021-class default world needs
# ~250k samples to leave chance (the EmojiWorld page).
SHIFT_STYLES = ["openmoji", "noto-color", "fluent-flat", "openmoji-line", "noto-mono"]

PROFILES: dict[str, dict] = {
    "smoke": {
        "train": {"model": "vit-ti-8", "samples": 2_048, "batch_size": 128, "warmup": 256},  # tests' small run
        "page_run": "data_quantity",
        "study_world": {"pairs": 1_024, "classes": 20, "retrieval_images": 100, "probe_per_class": 10,
                        "eval_per_class": 2},
    },
    "laptop": {  # the page's run: the data-quantity chapter's largest (was TrainConfig() on the default world: 6-23 min)
        "page_run": "data_quantity",
        # 30 images per class in `id` (3,000), so an accuracy's standard error is at most 0.9
        # points, a third of the seed sd of the chapters' paired contrasts (~2.7 points, issue 21's
        # census); 10 per class in each shift suite (the first 10 of id's layouts, in the shift's
        # art): the claims read the shift mean, which pools 5,000 (standard error <= 0.7 points;
        # one style's 1,000: <= 1.6). Held out: three colour artists (the ImageNet-R analogue) and
        # two line-art renditions (the Sketch analogue).
        "study_world": {"pairs": 32_768, "classes": 100, "eval_per_class": 30, "shift_per_class": 10,
                        "retrieval_images": 1_000, "shift_styles": SHIFT_STYLES},
    },
    "gpu": {
        "train": {**GPU_TRAIN, "model": "vit-b-8", "samples": 10_000_000},  # the chapters' gpu recipe
        "study_world": {"pairs": 1_000_000, "image_size": 64},
    },
    "real": {  # data= webdataset shards; evaluation world= any world folder or real suites
        "train": {"model": "vit-b-8", "samples": 30_000_000, "batch_size": 2048, "warmup": 2_000 * 2048,
                  "precision": "auto", "image_size": 64, "compile": True},  # compiled, as the chapters' GPU_TRAIN
        "study_world": {"image_size": 64},
    },
}


def profile(name: str) -> dict[str, dict]:
    if name not in PROFILES:
        raise ConfigError(f"profile={name!r} is not valid; choose one of {list(PROFILES)}")
    return PROFILES[name]
