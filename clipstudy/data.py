"""Image-caption data as uint8 arrays, and the readers that turn any source into them.

Every source ends up as uint8 images [N, H, W, 3] plus captions, so training and evaluation
have one input path whether the pairs come from an EmojiWorld folder, webdataset tar shards
(CC3M/CC12M style: `<key>.jpg|png` + `<key>.txt`) or a Hugging Face `datasets` folder
(`image` + `caption`/`text` columns).

On-disk layout of a world (written by `clipstudy.world.build`):

    <world>/world.json                   config, class table, styles, zero-shot prompts, counts
    <world>/tokenizer.json               word vocabulary of the pool's captions (clipstudy.tokenizer)
    <world>/train/images.npy             uint8 [N, H, W, 3]
    <world>/train/meta.jsonl             {"caption": str, "classes": [int], "noise": str} per row
    <world>/suites/<name>/images.npy     evaluation images, uint8 [N, H, W, 3]
    <world>/suites/<name>/labels.npy     int64 [N] (classification suites)
    <world>/suites/<name>/captions.json  list[list[str]] (retrieval suite)
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

MEAN = STD = 0.5  # pixels -> [-1, 1], as paper A (and the open_clip JSON preprocess_cfg)


def to_model_input(images: torch.Tensor | np.ndarray, size: int | None = None) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, size, size] in [-1, 1] (resized only if needed)."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.sub_(MEAN).div_(STD)


class DataError(ValueError):
    """Missing or malformed data source; the message names the path and what was expected."""


@dataclass
class Pairs:
    """Image-caption pairs held as arrays (np.memmap for large pools)."""

    images: np.ndarray  # uint8 [N, H, W, 3]
    captions: list[str]
    meta: list[dict] = field(default_factory=list)  # optional per-row facts (classes, noise label)

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])


def _decode(data: bytes, size: int | None) -> np.ndarray:
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    if size is not None and img.size != (size, size):
        img = _center_resize(img, size)
    return np.asarray(img, dtype=np.uint8)


def _center_resize(img, size: int):
    from PIL import Image

    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return img.resize((size, size), Image.BICUBIC)


def load_pairs(source: str | Path, image_size: int | None = None, limit: int | None = None) -> Pairs:
    """Read a pool of pairs from a world folder, a world's train folder, tar shards or a HF dataset.

    `source` may be: a world folder (`world.json` inside), a folder with `images.npy` +
    `meta.jsonl`, a folder of `*.tar` shards or a brace pattern (`shards/{000..009}.tar`),
    or a folder written by `datasets.Dataset.save_to_disk`.
    """
    src = str(source)
    path = Path(src)
    if (path / "world.json").is_file():
        path = path / "train"
    if (path / "images.npy").is_file():
        images = np.load(path / "images.npy", mmap_mode="r")
        meta = [json.loads(line) for line in (path / "meta.jsonl").read_text().splitlines() if line]
        if limit is not None:
            images, meta = images[:limit], meta[:limit]
        if image_size is not None and images.shape[1] != image_size:
            raise DataError(f"{path} holds {images.shape[1]} px images, not {image_size} px; "
                            f"build a world at that size or leave image_size unset")
        return Pairs(images, [m["caption"] for m in meta], meta)
    if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
        return _load_hf(path, image_size, limit)
    if path.is_dir() and sorted(path.glob("*.tar")):
        return _load_wds([str(p) for p in sorted(path.glob("*.tar"))], image_size, limit)
    if src.endswith(".tar") or "{" in src:
        return _load_wds(src, image_size, limit)
    raise DataError(f"no pairs found at {src!r}: expected a world folder (world.json), "
                    f"images.npy + meta.jsonl, *.tar webdataset shards, or a saved HF dataset")


def _stack(images: list[np.ndarray], captions: list[str], meta: list[dict], where: str) -> Pairs:
    if not images:
        raise DataError(f"{where} holds no image-caption pairs")
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise DataError(f"{where} holds images of several sizes {sorted(sizes)[:3]}; pass image_size")
    return Pairs(np.stack(images), captions, meta)


def _load_wds(urls, image_size: int | None, limit: int | None) -> Pairs:
    import webdataset as wds

    images, captions, meta = [], [], []
    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        key = next((k for k in ("jpg", "jpeg", "png", "webp") if k in sample), None)
        text = sample.get("txt")
        if key is None or text is None:
            continue
        images.append(_decode(sample[key], image_size))
        captions.append(text.decode("utf-8") if isinstance(text, bytes) else text)
        meta.append(json.loads(sample["json"]) if "json" in sample else {})
        if limit is not None and len(captions) >= limit:
            break
    return _stack(images, captions, meta, f"shards {urls}")


def _load_hf(path: Path, image_size: int | None, limit: int | None) -> Pairs:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"]
    text_col = next((c for c in ("caption", "text", "txt") if c in ds.column_names), None)
    if "image" not in ds.column_names or text_col is None:
        raise DataError(f"HF dataset at {path} needs an 'image' and a 'caption' column; "
                        f"it has {ds.column_names}")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    images, captions, meta = [], [], []
    extra = [c for c in ds.column_names if c not in ("image", text_col)]
    for row in ds:
        img = row["image"].convert("RGB")
        if image_size is not None and img.size != (image_size, image_size):
            img = _center_resize(img, image_size)
        images.append(np.asarray(img, dtype=np.uint8))
        captions.append(row[text_col])
        meta.append({c: row[c] for c in extra})
    return _stack(images, captions, meta, f"HF dataset {path}")


def batch_indices(n: int, batch_size: int, seed: int, start: int = 0) -> Iterator[np.ndarray]:
    """Endless shuffled batches of row indices into a pool of `n`; epoch e uses permutation seed
    (seed, e). `start` skips samples already seen, so a resumed run continues exactly where it
    stopped."""
    if batch_size > n:
        raise DataError(f"batch_size={batch_size} is larger than the pool ({n} pairs)")
    per_epoch = n // batch_size  # drop the last partial batch, as open_clip does
    step = start // batch_size
    while True:
        epoch, i = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        yield np.sort(order[i * batch_size:(i + 1) * batch_size])  # sorted: faster memmap reads
        step += 1


@dataclass
class Suite:
    """An evaluation set: images plus either class labels or lists of captions."""

    name: str
    images: np.ndarray  # uint8 [N, H, W, 3]
    labels: np.ndarray | None = None  # int64 [N]
    captions: list[list[str]] | None = None  # per image, one or more captions


def load_suite(folder: str | Path) -> Suite:
    folder = Path(folder)
    if not (folder / "images.npy").is_file():
        raise DataError(f"no evaluation suite at {folder} (expected images.npy)")
    images = np.load(folder / "images.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy") if (folder / "labels.npy").is_file() else None
    captions = json.loads((folder / "captions.json").read_text()) if (folder / "captions.json").is_file() else None
    return Suite(folder.name, images, labels, captions)


def load_world_info(world: str | Path) -> dict:
    path = Path(world) / "world.json"
    if not path.is_file():
        raise DataError(f"{world} is not a world folder (no world.json); build one with "
                        f"`python -m clipstudy world build --out {world}`")
    return json.loads(path.read_text())
