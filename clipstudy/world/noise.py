"""Caption noise for data-quality studies, with a ground-truth label per sample.

Three kinds, each a fraction of the training pool (exact counts: round(fraction * pairs)):
  mismatch     the caption of another sample (a web page that pairs the wrong image)
  boilerplate  alt-text that says nothing ("IMG_2041.jpg", "click to buy")
  partial      the right scene with one emoji named as a class it is not
Every other sample is "clean" (so is one whose noise is impossible, e.g. a mismatch in a pool
of one caption). Which samples get which noise is drawn from the generator passed in, so a
world is deterministic per seed. Cost: ~10 us per noisy caption.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from clipstudy.config import ConfigError
from clipstudy.world.captions import Dice, boilerplate
from clipstudy.world.classes import EmojiClass

LABELS = ("clean", "mismatch", "boilerplate", "partial")


def check_fractions(mismatch: float, boilerplate: float, partial: float) -> None:
    named = {"noise_mismatch": mismatch, "noise_boilerplate": boilerplate, "noise_partial": partial}
    for name, value in named.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name}={value} is not a fraction in [0, 1]")
    if sum(named.values()) > 1.0 + 1e-9:
        raise ConfigError(f"noise fractions {named} sum to {sum(named.values()):.3f}; they must sum to <= 1")


def wrong_objects(dice: Dice, objects: list[tuple[EmojiClass, float, float]],
                  classes: list[EmojiClass]) -> list[tuple[EmojiClass, float, float]] | None:
    """`objects` with one of them swapped for a class that is not in the scene and shares no
    name or synonym with any class that is: the caption becomes wrong, not merely reworded.
    None when the world has no such class (a tiny world whose scene holds all of them)."""
    words = {w for c, _, _ in objects for w in (c.name, *c.synonyms)}
    for _ in range(100):  # rejection: almost always the first draw
        wrong = dice.pick(classes)
        if not words & {wrong.name, *wrong.synonyms}:
            k = int(dice.random() * len(objects))
            _, y, x = objects[k]
            return objects[:k] + [(wrong, y, x)] + objects[k + 1:]
    return None


def add_noise(rng: np.random.Generator, captions: list[str], partial_caption: Callable[[int, Dice], str | None],
              mismatch: float, boilerplate_: float, partial: float) -> tuple[list[str], list[str]]:
    """(noisy captions, labels) for clean `captions`; `partial_caption(i, dice)` re-describes
    sample i with one emoji misnamed (None: impossible, the sample stays clean)."""
    check_fractions(mismatch, boilerplate_, partial)
    n = len(captions)
    counts = [round(f * n) for f in (mismatch, boilerplate_, partial)]
    order = rng.permutation(n).tolist()
    dice = Dice(rng)
    noisy, labels = list(captions), ["clean"] * n
    start = 0
    for label, count in zip(LABELS[1:], counts):
        for i in order[start:start + count]:
            if label == "mismatch":
                j = int(dice.random() * n)
                tries = 0
                while captions[j] == captions[i] and tries < 100:  # another sample, another caption
                    j, tries = int(dice.random() * n), tries + 1
                if captions[j] == captions[i]:
                    continue  # a pool of one caption has nothing to mismatch: stays clean
                noisy[i] = captions[j]
            elif label == "boilerplate":
                noisy[i] = boilerplate(dice)
            else:
                text = partial_caption(i, dice)
                if text is None:
                    continue
                noisy[i] = text
            labels[i] = label
        start += count
    return noisy, labels
