"""Build an EmojiWorld folder: the training pool and the evaluation suites, in the format of
`clipstudy.data` (world.json, train/images.npy + meta.jsonl, suites/<name>/...).

    from clipstudy.world import WorldConfig, build_world
    build_world(WorldConfig(pairs=100_000, image_size=32), Path("data/worlds/default"))

Cost on one core: the default world (100k pairs at 32 px plus suites, 410 MB) takes ~9 s with a
cold sprite cache, ~5 s warm; at 64 px ~14 s (1.6 GB). Same config -> byte-identical arrays
and captions (world.json differs only in its "seconds").

Evaluation images never equal training images, by construction: the pool draws backgrounds
only from TRAIN_BACKGROUNDS and every suite except `probe` only from EVAL_BACKGROUNDS, two
disjoint sets of (texture, colour) combinations (`backgrounds.json`); no sprite covers the
whole canvas, so the background shows in every image.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
from tqdm.auto import tqdm

from clipstudy import tokenizer as word_vocab
from clipstudy.config import ConfigError, to_dict
from clipstudy.world import captions, noise, scenes
from clipstudy.world.classes import GENERATOR_VERSION, coarse_index, coarse_names, load_classes
from clipstudy.world.styles import STYLES, available_styles, sprites

T = TypeVar("T")

SUBSET_SEED = 1015  # `classes=N` picks the same N classes whatever the world's seed
CHUNK = 4096  # scenes rendered and written at a time
STREAMS = {"train": 1, "captions": 2, "noise": 3, "eval": 4, "probe": 5, "retrieval": 6, "retrieval-captions": 7}


@dataclass
class WorldConfig:
    pairs: int = 100_000  # training pool size, image-caption pairs
    image_size: int = 32  # px, square; 16..256
    train_styles: tuple[str, ...] = ("twemoji",)  # art of the training pool, `id` and `probe`
    shift_styles: tuple[str, ...] | None = None  # one `shift-<style>` suite each; None = every other installed style
    seed: int = 0  # one seed for everything: scenes, captions, noise, suites
    max_objects: int = 3  # emoji per pool / retrieval scene, uniform in 1..max_objects (<= 4)
    p_background: float = captions.P_BACKGROUND  # chance a caption names the background (0.75 kept zero-shot near chance)
    classes: int = 0  # 0 = every class; N = a fixed subset of N classes (small, fast worlds)
    noise_mismatch: float = 0.0  # fraction of pool captions taken from another sample
    noise_boilerplate: float = 0.0  # fraction replaced by alt-text boilerplate ("IMG_2041.jpg")
    noise_partial: float = 0.0  # fraction with one emoji named as a wrong class
    retrieval_images: int = 5000  # held-out multi-emoji scenes in the `retrieval` suite
    retrieval_captions: int = 5  # captions per retrieval image, as in COCO
    eval_per_class: int = 1  # images per class and style in `id` and each `shift-*`
    shift_per_class: int = 0  # > 0: each `shift-*` suite keeps the first this many of a class's `id` layouts (<= eval_per_class)
    probe_per_class: int = 25  # training-style images per class in `probe`: 5-shot, 10-shot and full (25)

    def check(self) -> None:
        """Raise ConfigError for a world that cannot be built."""
        def positive(name: str, low: int = 1) -> None:
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= {low}")

        positive("pairs")
        positive("retrieval_images", 0)
        positive("retrieval_captions")
        positive("eval_per_class")
        positive("probe_per_class", 0)
        if not 0 <= self.shift_per_class <= self.eval_per_class:
            raise ConfigError(f"shift_per_class={self.shift_per_class} is out of range; use 0 (as eval_per_class) "
                              f"to eval_per_class={self.eval_per_class}")
        if not 0 <= self.seed < 2**63:  # numpy's generators take no negative seed
            raise ConfigError(f"seed={self.seed} is out of range; use 0 <= seed < 2**63")
        if not 16 <= self.image_size <= 256:
            raise ConfigError(f"image_size={self.image_size} is out of range; use 16..256 px")
        if not 1 <= self.max_objects <= 4:
            raise ConfigError(f"max_objects={self.max_objects} is out of range; use 1..4 (a 2x2 grid)")
        n = len(load_classes())
        if self.classes < 0 or self.classes == 1 or self.classes > n:
            raise ConfigError(f"classes={self.classes} is not valid; use 0 (all {n}) or 2..{n}")
        if not self.train_styles:
            raise ConfigError("train_styles is empty; name at least one of " + str(list(STYLES)))
        for field, names in (("train_styles", self.train_styles), ("shift_styles", self.shift_styles or ())):
            for name in names:
                if name not in STYLES:
                    raise ConfigError(f"{field}: unknown style {name!r}; valid styles: {list(STYLES)}")
                if not STYLES[name].available():
                    raise ConfigError(f"{field}: style {name!r} is not installed here (it comes from "
                                      f"{STYLES[name].source}: `python -m clipstudy world styles --fetch`); "
                                      f"installed: {available_styles()}")
        both = set(self.train_styles) & set(self.shift_styles or ())
        if both:
            raise ConfigError(f"styles {sorted(both)} are in both train_styles and shift_styles")
        if not 0 <= self.p_background <= 1:
            raise ConfigError(f"p_background={self.p_background} is out of range; use 0..1")
        noise.check_fractions(self.noise_mismatch, self.noise_boilerplate, self.noise_partial)

    def resolved_shift_styles(self) -> list[str]:
        if self.shift_styles is not None:
            return list(self.shift_styles)
        return [s for s in available_styles() if s not in self.train_styles]


def build_world(cfg: WorldConfig, out: str | Path, progress: bool = True, overwrite: bool = False) -> dict:
    """Write the world described by `cfg` to `out` and return its world.json content.

    The build writes into `<out>.tmp-<pid>` and renames it to `out` only when complete, so a
    failed or killed build never leaves a half-written world at `out`."""
    cfg.check()
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass overwrite=True to replace it")
    return write_folder(out, lambda tmp: _build(cfg, tmp, progress))


def write_folder(out: Path, write: Callable[[Path], T]) -> T:
    """`write(tmp)` into `<out>.tmp-<pid>`, then that folder renamed to `out` (an existing `out`
    goes only once the new one is whole); on any error the temporary folder is removed, so a
    failed or killed write never leaves a half-written folder at `out`. Temporary folders left by
    killed processes are removed first. Returns what `write` returned."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f"{out.name}.tmp-*"):  # left by killed builds
        if not _alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        result = write(tmp)
        if out.exists():
            old = out.with_name(f"{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _rng(cfg: WorldConfig, stream: str) -> np.random.Generator:
    # one independent stream per stage: changing `pairs` or the noise leaves the suites as they were
    return np.random.default_rng([cfg.seed, STREAMS[stream]])


def pool_layouts(cfg: WorldConfig, n_classes: int, n_styles: int) -> scenes.Layouts:
    """The training pool's scene layouts (classes, sprite scales, positions) exactly as `build`
    drew them, from the same stream: where each emoji of each pair's image lies, for analyses of
    the pool (e.g. what an augmentation's crop cuts out) without storing boxes."""
    return scenes.random_scenes(_rng(cfg, "train"), cfg.pairs, n_classes, cfg.image_size, cfg.max_objects,
                                scenes.TRAIN_BACKGROUNDS, n_styles)


def _build(cfg: WorldConfig, folder: Path, progress: bool) -> dict:
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        seconds[stage] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    size = cfg.image_size
    table = load_classes()
    shift = cfg.resolved_shift_styles()
    largest = max(scenes.sprite_sizes(size))
    present = {s: sprites(s, largest, progress)[1] for s in [*cfg.train_styles, *shift]}
    # classes = those every training style draws; `classes=N` takes a fixed random subset of them
    drawn = np.flatnonzero(np.logical_and.reduce([present[s] for s in cfg.train_styles]))
    if cfg.classes:
        if cfg.classes > len(drawn):
            raise ConfigError(f"classes={cfg.classes} but the training styles draw only {len(drawn)}")
        drawn = np.sort(drawn[np.random.default_rng(SUBSET_SEED).permutation(len(drawn))[:cfg.classes]])
    ids = drawn.tolist()
    world_classes = [table[i] for i in ids]
    n_cls = len(ids)
    banks = {s: scenes.SpriteBank(s, size, ids, progress) for s in [*cfg.train_styles, *shift]}
    train_banks = [banks[s] for s in cfg.train_styles]
    backgrounds = scenes.background_bank(size)
    lap("sprites")

    def objects(layouts: scenes.Layouts, i: int) -> list:
        return [(world_classes[c], y, x) for c, y, x in layouts.objects(i, size)]

    # ---- training pool ----
    pool = pool_layouts(cfg, n_cls, len(train_banks))
    _write_images(folder / "train" / "images.npy", [(pool, train_banks)], backgrounds, progress, "train images")
    lap("train_images")
    dice = captions.Dice(_rng(cfg, "captions"))
    clean = [captions.describe(dice, objects(pool, i), scenes.BACKGROUNDS[pool.background[i]], cfg.p_background)
             for i in tqdm(range(len(pool)), desc="train captions", disable=not progress, leave=False)]

    def partial_caption(i: int, d: captions.Dice) -> str | None:
        wrong = noise.wrong_objects(d, objects(pool, i), world_classes)
        return None if wrong is None else captions.describe(d, wrong, scenes.BACKGROUNDS[pool.background[i]],
                                                            cfg.p_background)

    texts, labels = noise.add_noise(_rng(cfg, "noise"), clean, partial_caption, cfg.noise_mismatch,
                                    cfg.noise_boilerplate, cfg.noise_partial)
    with open(folder / "train" / "meta.jsonl", "w", encoding="utf-8") as f:
        for i, (text, label) in enumerate(zip(texts, labels)):
            row = {"caption": text, "classes": [int(c) for c in pool.classes[i] if c >= 0], "noise": label}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    # the world's word vocabulary, fitted once to its whole pool: every run on it shares one
    word_vocab.fit(texts).save(folder)
    lap("train_captions")

    # ---- classification suites: one layout per (class, copy), drawn in every style ----
    suites: dict[str, dict] = {}
    single = scenes.single_scenes(_rng(cfg, "eval"), np.repeat(np.arange(n_cls), cfg.eval_per_class),
                                  size, scenes.EVAL_BACKGROUNDS)
    groups = {"id": list(cfg.train_styles), **{f"shift-{s}": [s] for s in shift}}
    copy = np.arange(len(single.classes)) % cfg.eval_per_class  # which of its class's layouts each one is
    for name, styles in groups.items():
        parts = []
        for style in styles:
            kept = banks[style].present[single.classes[:, 0]]  # shift styles may lack a few
            if name != "id" and cfg.shift_per_class:
                kept &= copy < cfg.shift_per_class
            keep = np.flatnonzero(kept)
            parts.append((single.take(keep), [banks[style]]))
        _write_classification(folder / "suites" / name, parts, backgrounds, progress)
        suites[name] = {"kind": "classification", "styles": styles, "n": sum(len(p[0]) for p in parts)}
    lap("eval_suites")

    if cfg.probe_per_class:
        probe = scenes.single_scenes(_rng(cfg, "probe"), np.repeat(np.arange(n_cls), cfg.probe_per_class),
                                     size, scenes.TRAIN_BACKGROUNDS, len(train_banks))
        _write_classification(folder / "suites" / "probe", [(probe, train_banks)], backgrounds, progress)
        suites["probe"] = {"kind": "classification", "styles": list(cfg.train_styles), "n": len(probe)}
    lap("probe_suite")

    if cfg.retrieval_images:
        held = scenes.random_scenes(_rng(cfg, "retrieval"), cfg.retrieval_images, n_cls, size,
                                    cfg.max_objects, scenes.EVAL_BACKGROUNDS, len(train_banks))
        _write_images(folder / "suites" / "retrieval" / "images.npy", [(held, train_banks)], backgrounds,
                      progress, "retrieval images")
        dice = captions.Dice(_rng(cfg, "retrieval-captions"))
        texts = [_distinct_captions(dice, objects(held, i), scenes.BACKGROUNDS[held.background[i]],
                                    cfg.retrieval_captions, cfg.p_background) for i in range(len(held))]
        (folder / "suites" / "retrieval" / "captions.json").write_text(json.dumps(texts, ensure_ascii=False))
        suites["retrieval"] = {"kind": "retrieval", "styles": list(cfg.train_styles), "n": len(held),
                               "captions_per_image": cfg.retrieval_captions}
    lap("retrieval_suite")

    info = {
        "version": GENERATOR_VERSION,
        "config": to_dict(cfg),
        "classes": {"keys": [c.key for c in world_classes], "names": [c.name for c in world_classes],
                    "phrases": [captions.with_article(c.name) for c in world_classes],
                    "coarse_names": coarse_names(world_classes), "coarse": coarse_index(world_classes),
                    "synonyms": [list(c.synonyms) for c in world_classes]},
        "prompts": captions.prompt_templates(),
        "styles": {"train": list(cfg.train_styles), "shift": shift,
                   "licenses": {s: STYLES[s].license_info() for s in [*cfg.train_styles, *shift]}},
        "suites": suites,
        "backgrounds": {"train": [scenes.BACKGROUNDS[i].name for i in scenes.TRAIN_BACKGROUNDS],
                        "eval": [scenes.BACKGROUNDS[i].name for i in scenes.EVAL_BACKGROUNDS]},
        "counts": {"classes": n_cls, "coarse_classes": len(coarse_names(world_classes)), "train": cfg.pairs,
                   "noise": {label: labels.count(label) for label in noise.LABELS},
                   "missing": {s: int((~banks[s].present).sum()) for s in shift},
                   **{name: s["n"] for name, s in suites.items()}},
        "seconds": seconds,
    }
    (folder / "world.json").write_text(json.dumps(info, indent=1, ensure_ascii=False))
    return info


def _write_images(path: Path, parts: list[tuple[scenes.Layouts, list[scenes.SpriteBank]]],
                  backgrounds: np.ndarray, progress: bool, desc: str) -> None:
    """Render (layouts, banks) parts in chunks straight into one .npy memmap: a 1 GB pool
    never sits in memory twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = backgrounds.shape[1]
    total = sum(len(layouts) for layouts, _ in parts)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(total, size, size, 3))
    with tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        offset = 0
        for layouts, banks in parts:
            for start in range(0, len(layouts), CHUNK):
                stop = min(start + CHUNK, len(layouts))
                out[offset + start:offset + stop] = scenes.render(layouts, banks, backgrounds, start, stop)
                bar.update(stop - start)
            offset += len(layouts)
    out.flush()
    del out


def _write_classification(folder: Path, parts: list[tuple[scenes.Layouts, list[scenes.SpriteBank]]],
                          backgrounds: np.ndarray, progress: bool) -> None:
    """images.npy + labels.npy (int64) of single-emoji parts, concatenated in order."""
    _write_images(folder / "images.npy", parts, backgrounds, progress, folder.name)
    np.save(folder / "labels.npy", np.concatenate([p[0].classes[:, 0] for p in parts]).astype(np.int64))


def _distinct_captions(dice: captions.Dice, objects: list, bg: scenes.Background, k: int,
                       p_background: float) -> list[str]:
    """k captions of one scene, distinct where the grammar allows (a few tries each)."""
    out: list[str] = []
    for _ in range(k):
        text = captions.describe(dice, objects, bg, p_background)
        for _ in range(10):
            if text not in out:
                break
            text = captions.describe(dice, objects, bg, p_background)
        out.append(text)
    return out
