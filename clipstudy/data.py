"""Image-caption data as uint8 arrays, and the readers that turn any source into them.

Every source ends up as uint8 images [N, H, W, 3] plus captions, so training and evaluation
have one input path whether the pairs come from an EmojiWorld folder, webdataset tar shards
(CC3M/CC12M style: `<key>.jpg|png` + `<key>.txt`), a Hugging Face `datasets` folder
(`image` + `caption`/`text` columns), or a captions CSV / TSV beside local image files
(open_clip_train's `--dataset-type csv`: a header with `filepath` + `title` columns or their
aliases; or CC3M's release format: headerless `caption<TAB>image` lines).

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

import csv
import hashlib
import io
import json
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import braceexpand
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from tqdm.auto import tqdm
from webdataset.tariterators import base_plus_ext

MEAN = STD = 0.5  # pixels -> [-1, 1], as paper A (and the open_clip JSON preprocess_cfg)


def to_model_input(images: torch.Tensor | np.ndarray, size: int | None = None,
                   mean: float | Sequence[float] = MEAN, std: float | Sequence[float] = STD) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, size, size] (resized only if needed), as (pixel / 255 -
    mean) / std: [-1, 1] by default; `mean` and `std` may be per channel (a pre-trained model's own)."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean, std = (v if isinstance(v, (int, float)) else torch.tensor(v, device=x.device).view(-1, 1, 1)  # [3, 1, 1]
                 for v in (mean, std))
    return x.sub_(mean).div_(std)


class DataError(ValueError):
    """Missing or malformed data source; the message names the path and what was expected."""


@dataclass
class Pairs:
    """Image-caption pairs held as arrays (np.memmap for large pools), and what was skipped reading
    them: `skipped` counts samples by reason, `skipped_examples` names the first few."""

    images: np.ndarray  # uint8 [N, H, W, 3]
    captions: list[str]
    meta: list[dict] = field(default_factory=list)  # optional per-row facts (classes, noise label)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count; empty when none
    skipped_examples: list[str] = field(default_factory=list)  # "shard.tar:key (reason)", "HF row 17 (reason)"

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])


WHOLE_FILE, HF_ROW = -1, -2  # LazyImages sizes that are not byte counts


class LazyImages:
    """A pool's images left on disk until indexed: `images[rows]` reads, decodes and resizes those
    rows -> uint8 [len(rows), S, S, 3]. It holds only where each image's bytes are (a byte range
    of an uncompressed tar shard, an image file, or a row of a HF dataset on disk), so a pool larger
    than memory streams: training decodes each batch in DataLoader workers (TrainConfig's
    `data_workers`). An image that fails to decode is replaced by the next row that does (the same
    one every time, so a resumed run stays exact), and its row is counted in `bad`."""

    def __init__(self, files: list[str], file: np.ndarray, offset: np.ndarray, size: np.ndarray, image_size: int):
        self.files, self.file, self.offset, self.size = files, file, offset, size
        self.image_size = image_size
        self.bad: set[int] = set()
        self._handles: dict = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.file)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return len(self), self.image_size, self.image_size, 3

    def subset(self, rows: np.ndarray) -> LazyImages:
        """The images at `rows`, still on disk."""
        return LazyImages(self.files, self.file[rows], self.offset[rows], self.size[rows], self.image_size)

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.arange(*rows.indices(len(self))) if isinstance(rows, slice) else np.asarray(rows)
        if rows.size and not -len(self) <= rows.min() <= rows.max() < len(self):
            raise IndexError(f"rows {rows.min()}..{rows.max()} out of range for {len(self)} images")
        images, bad = self.decode(np.atleast_1d(rows))
        self.bad.update(bad)
        return images if rows.ndim else images[0]

    def decode(self, rows) -> tuple[np.ndarray, list[int]]:
        """(uint8 [len(rows), S, S, 3], the rows whose image failed to decode and was replaced)."""
        images, bad = [], []
        n = len(self)
        for row in rows:
            for r in range(int(row), int(row) + n):  # this row, else the next that decodes
                try:
                    images.append(_decode(self.read(r % n), self.image_size))
                    break
                except Exception:  # Pillow raises many kinds on bad bytes; a missing file too
                    bad.append(r % n)
            else:
                raise DataError(f"no image of the pool ({len(self)} rows, e.g. {self.name(0)}) decodes")
        return np.stack(images) if images else np.zeros((0, *self.shape[1:]), np.uint8), bad

    def read(self, row: int) -> bytes:
        if os.getpid() != self._pid:  # a DataLoader worker: file handles are per process
            self._handles, self._pid = {}, os.getpid()
        path, offset, size = self.files[self.file[row]], int(self.offset[row]), int(self.size[row])
        if size == WHOLE_FILE:
            return Path(path).read_bytes()
        if path not in self._handles:
            self._handles[path] = _open_hf(Path(path))[0] if size == HF_ROW else open(path, "rb")
        if size == HF_ROW:
            return _hf_image_bytes(self._handles[path][offset]["image"])
        f = self._handles[path]
        f.seek(offset)
        return f.read(size)

    def name(self, row: int) -> str:
        path, offset, size = self.files[self.file[row]], int(self.offset[row]), int(self.size[row])
        return {WHOLE_FILE: Path(path).name, HF_ROW: f"HF row {offset}"}.get(size, f"{Path(path).name}@{offset}")

    def __getstate__(self) -> dict:  # to DataLoader workers: without open files
        return {**self.__dict__, "_handles": {}}


IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")  # webdataset member extensions read as the image
CAPTION_EXTS = ("txt", "text", "caption")  # ... and as the caption
# Only these decoders see untrusted bytes: Pillow's EPS plugin, for one, runs Ghostscript. (No
# "MPO": Pillow's JPEG opener reads those, and a name Pillow has no opener for makes Image.open
# raise KeyError for every format after the first two.)
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM")
EXAMPLES = 10  # skipped samples named in Pairs.skipped_examples
EXIF_ORIENTATION = 0x0112  # the EXIF tag of how a photo is turned (1 = as stored)


def _decode(data: bytes, size: int | None) -> np.ndarray:
    """Encoded image -> uint8 [H, W, 3], turned as its EXIF orientation says, center-cropped and
    resized to size x size if given. Raises whatever Pillow raises for bytes it cannot decode."""
    img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    if size is not None:  # a JPEG decodes at 1/2, 1/4 or 1/8 scale while still >= size: ~2x faster 500 -> 64 px
        img.draft(None, (size, size))
    img.load()  # Image.open is lazy: a truncated file fails only here
    if img.getexif().get(EXIF_ORIENTATION, 1) != 1:  # a camera's rotation, applied as image viewers and loaders do
        img = ImageOps.exif_transpose(img)
    img = _to_rgb(img)
    if size is not None and img.size != (size, size):
        img = _center_resize(img, size)
    return np.asarray(img, dtype=np.uint8)


def _to_rgb(img):
    """Any Pillow mode -> 8-bit RGB; transparency is composited over white."""
    if img.mode.startswith("I"):  # 16-bit grey ("I;16", or "I" from older Pillow): scale, don't clip
        grey = np.asarray(img).astype(np.float32) / 257.0  # 65535 -> 255
        img = Image.fromarray(np.clip(grey.round(), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
    return img.convert("RGB")  # P, L, 1, CMYK, YCbCr, ...


def _center_resize(img, size: int):
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return img.resize((size, size), Image.BICUBIC)


def load_pairs(source: str | Path, image_size: int | None = None, limit: int | None = None,
               progress: bool = False, stream: bool = False) -> Pairs:
    """Read a pool of pairs from a world folder, a world's train folder, tar shards, a HF dataset
    or a captions CSV / TSV.

    `source` may be: a world folder (`world.json` inside), a folder with `images.npy` +
    `meta.jsonl`, a folder of `*.tar` shards or a brace pattern (`shards/{000..009}.tar`),
    a folder written by `datasets.Dataset.save_to_disk`, or a `.csv` / `.tsv` file (or a folder
    holding exactly one) whose rows name local image files (see `_load_csv`): open_clip_train's
    CSV (a header with an image column `filepath`/`image`/`image_path`/`file`/`path`/`url` and a
    caption column `title`/`caption`/`text`/`txt`; `clipstudy world export --format csv` writes
    one) or CC3M's release format (headerless `caption<TAB>image` lines). The layouts are tried in
    that order, so a folder that is a world, HF dataset or shards folder is read as one.

    Shards, HF datasets and CSVs: `image_size` center-crops and resizes every image to that size;
    without it, images of several sizes are a DataError. Samples that cannot be used (corrupt or
    missing image, missing or bad caption, truncated shard, ...) are skipped and counted in
    `Pairs.skipped`; a source that cannot be read at all, or with nothing usable, is a DataError.
    A world is our own format: any damage is a DataError, and its images come back at their stored
    size whatever `image_size` says (the trainer resizes each batch with `to_model_input`).

    `stream`: shards, HF datasets and CSVs are indexed, not loaded: captions are read, images
    stay on disk as `LazyImages` (needs `image_size`; tar shards must be uncompressed). A world's
    images are memory-mapped either way. A real world (`python -m clipstudy world real`) names its
    pool in world.json, and that pool always streams.
    """
    src = str(source)
    path = Path(src)
    if (path / "world.json").is_file():
        pool = load_world_info(path).get("pool")
        if pool:  # a real world: its pool is the source it names (relative to the world folder)
            return load_pairs(path / pool["source"] if "{" not in pool["source"] else pool["source"],
                              image_size or pool["image_size"], limit, progress, stream=True)
        path = path / "train"
    if stream and (path / "images.npy").is_file():
        stream = False
    if stream and not image_size:
        raise DataError(f"streaming {src} needs image_size (--image-size): images are decoded as batches are "
                        f"drawn, each center-cropped and resized to that size")
    if (path / "images.npy").is_file():
        return _load_world(path, limit)
    if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
        return _load_hf(path, image_size, limit, progress, stream)
    if path.is_dir() and sorted(path.glob("*.tar")):
        return _load_wds([str(p) for p in sorted(path.glob("*.tar"))], image_size, limit, progress, stream)
    if path.suffix.lower() in CSV_SUFFIXES and path.is_file():
        return _load_csv(path, image_size, limit, progress, stream)
    if src.endswith(".tar") or "{" in src:
        return _load_wds(src, image_size, limit, progress, stream)
    if path.is_dir():
        tables = sorted(p for p in path.iterdir()
                        if p.suffix.lower() in CSV_SUFFIXES and p.is_file() and not p.name.startswith("."))
        if len(tables) == 1:
            return _load_csv(tables[0], image_size, limit, progress, stream)
        if tables:
            raise DataError(f"{src} holds {len(tables)} caption tables ({', '.join(p.name for p in tables)}); "
                            f"pass the one to read as the source")
    if path.suffix.lower() in CSV_SUFFIXES:
        raise DataError(f"caption table {src} does not exist")
    raise DataError(f"no pairs found at {src!r}: expected a world folder (world.json), "
                    f"images.npy + meta.jsonl, *.tar webdataset shards, a saved HF dataset, "
                    f"or a .csv / .tsv of image paths and captions")


def _load_world(path: Path, limit: int | None) -> Pairs:
    try:
        images = np.load(path / "images.npy", mmap_mode="r")
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path / 'images.npy'}: {e}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"{path / 'images.npy'} holds {images.dtype} {list(images.shape)}, not uint8 [N, H, W, 3]")
    try:
        lines = (path / "meta.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path / 'meta.jsonl'}: {e}") from None
    meta = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise DataError(f"{path / 'meta.jsonl'} line {n} is not JSON: {e}") from None
        if not isinstance(row, dict) or not isinstance(row.get("caption"), str):
            raise DataError(f"{path / 'meta.jsonl'} line {n} has no \"caption\" string")
        meta.append(row)
    if len(meta) != len(images):
        raise DataError(f"{path} holds {len(images)} images but {len(meta)} caption rows in meta.jsonl; "
                        f"rebuild the world")
    if limit is not None:
        images, meta = images[:limit], meta[:limit]
    return Pairs(images, [m["caption"] for m in meta], meta)


class Tally:
    """Samples skipped while reading a source: counts by reason, the first EXAMPLES named, and the
    total on a progress bar over the samples read (the training pool's and real evaluation sets')."""

    def __init__(self, where: str, progress: bool, unit: str = " samples"):
        self.where = where
        self.skipped: dict[str, int] = {}
        self.examples: list[str] = []
        self.bar = tqdm(desc=f"reading {where}", unit=unit, disable=not progress, leave=False)

    def skip(self, reason: str, name: str, n: int = 1) -> bool:
        """Count `n` samples skipped for `reason`, named once by `name`; False (the sample was not kept)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{name} ({reason})")
        self.bar.set_postfix(skipped=sum(self.skipped.values()), refresh=False)
        return False


class _Collector(Tally):
    """The pairs of a shard or HF source, added one sample at a time: each is checked and decoded,
    kept or skipped with a reason, and all kept images have one size. `stream`: images arrive as
    (file, offset, size) references and stay undecoded (`LazyImages`)."""

    def __init__(self, where: str, image_size: int | None, limit: int | None, progress: bool, stream: bool = False):
        super().__init__(where, progress)
        self.image_size, self.limit, self.stream = image_size, limit, stream
        self.images, self.captions, self.meta, self.names = [], [], [], []

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.captions) >= self.limit

    def add(self, name: str, image: bytes | None, caption: bytes | str | None, meta: dict) -> bool:
        """One sample read; True if it was kept."""
        self.bar.update()
        if image is None:
            return self.skip("no image", name)
        if isinstance(caption, bytes):
            try:
                caption = caption.decode("utf-8")
            except UnicodeDecodeError:
                return self.skip("caption not UTF-8", name)
        if not isinstance(caption, str):  # None: the sample has no caption member / a null cell
            return self.skip("no caption", name)
        if not caption.strip():
            return self.skip("empty caption", name)
        if self.stream:  # decoded when drawn (LazyImages)
            self.images.append(image)
            self.captions.append(caption)
            self.meta.append(meta)
            return True
        try:
            pixels = _decode(image, self.image_size)
        except Exception:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, ...) on bad bytes
            return self.skip("corrupt image", name)
        if self.images and pixels.shape != self.images[0].shape:
            (h0, w0), (h, w) = self.images[0].shape[:2], pixels.shape[:2]
            raise DataError(f"{self.where} holds images of several sizes ({w0}x{h0} px at {self.names[0]}, "
                            f"{w}x{h} px at {name}); pass image_size (--image-size) to crop and resize them all")
        self.images.append(pixels)
        self.captions.append(caption)
        self.meta.append(meta)
        self.names.append(name)
        return True

    def pairs(self) -> Pairs:
        self.bar.close()
        if not self.captions:
            if self.skipped:
                raise DataError(f"{self.where} holds no usable pairs: skipped {self.skipped}, "
                                f"e.g. {'; '.join(self.examples[:3])}")
            raise DataError(f"{self.where} holds no image-caption pairs")
        if self.stream:
            files = list(dict.fromkeys(path for path, _, _ in self.images))
            number = {path: i for i, path in enumerate(files)}
            refs = np.array([(number[path], offset, size) for path, offset, size in self.images], np.int64)
            images = LazyImages(files, refs[:, 0].astype(np.int32), refs[:, 1], refs[:, 2], self.image_size)
        else:
            images = np.stack(self.images)
        return Pairs(images, self.captions, self.meta, dict(self.skipped), list(self.examples))


def _load_wds(urls, image_size: int | None, limit: int | None, progress: bool = False, stream: bool = False) -> Pairs:
    shards = list(braceexpand.braceexpand(urls)) if isinstance(urls, str) else list(urls)
    missing = [s for s in shards if not Path(s).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more of {len(shards)})" if len(missing) > 1 else ""
        raise DataError(f"shard {missing[0]} does not exist{more}")
    where = f"shards {urls}" if isinstance(urls, str) else (f"{len(shards)} shard{'s' if len(shards) > 1 else ''} in "
                                                           f"{Path(shards[0]).parent}")
    out = _Collector(where, image_size, limit, progress, stream)
    for shard in shards:
        if out.full:
            break
        _read_shard(shard, out)
    return out.pairs()


def _read_shard(shard: str, out: _Collector) -> None:
    """Add one tar shard's samples to `out`."""
    name = Path(shard).name
    for key, sample in tar_samples(shard, out, refs=out.stream):
        _add_wds_sample(out, f"{name}:{key}", sample)
        if out.full:
            return


DUPLICATE_KEY = "duplicate key (members cannot be paired)"
DOTTED_KEY = "dot in key (webdataset's convention: a key ends at the file name's first dot)"


def tar_samples(shard: str | Path, tally: Tally, refs: bool = False) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample of a tar shard, grouped by webdataset's convention:
    consecutive members with one key, the name up to the first dot of the basename (`a.b.png` is
    key `a`, extension `b.png`). Counted in `tally` rather than yielded: a key whose consecutive
    members repeat an extension (DUPLICATE_KEY, once per copy: webdataset would pair `a.png, a.png,
    a.txt, a.txt` as the second image with the first caption), a sample whose image or caption
    hides behind a dot in its name (DOTTED_KEY: `a.b.png` + `a.b.txt`), and a truncated or empty
    shard. One that cannot be opened at all is a DataError naming it.
    `refs`: image members come as (shard, offset, size) of their bytes, unread (the shard must be
    an uncompressed tar, so that the bytes can be read there later)."""
    name = Path(shard).name
    if Path(shard).stat().st_size == 0:
        tally.skip("empty shard", name)
        return
    if refs:
        with open(shard, "rb") as f:
            magic = f.read(6)
        if magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic == b"\xfd7zXZ\x00":
            raise DataError(f"{shard} is compressed: streaming reads images in place, so shards must be "
                            f"plain .tar (decompress them, or load the pool into memory: data_workers=0)")
    try:
        tar = tarfile.open(shard)
    except tarfile.ReadError:
        raise DataError(f"{shard} is not a tar file (or is damaged at its start)") from None
    except OSError as e:
        raise DataError(f"cannot open shard {shard}: {e}") from None
    with tar:
        key, sample, seen, read = None, {}, {}, 0
        try:
            for member in tar:
                base, ext = base_plus_ext(member.name) if member.isreg() else (None, None)
                if base is None:  # directories, links, names without an extension: webdataset skips them too
                    continue
                ext = ext.lower()
                if sample and base != key:  # a new sample starts
                    yield from _checked(name, key, sample, max(seen.values()), tally)
                    read, sample, seen = read + 1, {}, {}
                key = base
                seen[ext] = seen.get(ext, 0) + 1
                if seen[ext] > 1:  # the key again, with the same extension: which member goes with which is unknown
                    continue
                if refs and ext in IMAGE_EXTS:
                    sample[ext] = (str(shard), member.offset_data, member.size)
                else:
                    sample[ext] = tar.extractfile(member).read()
            # tarfile stops quietly at a header it cannot parse; an intact tar ends with a zero block
            tar.fileobj.seek(tar.offset)
            intact = tar.fileobj.read(tarfile.BLOCKSIZE) == tarfile.NUL * tarfile.BLOCKSIZE
        except (tarfile.TarError, OSError, EOFError, zlib.error):
            intact = False
        if not intact:  # the sample being read at the damage is dropped: it may be incomplete
            tally.skip("truncated shard", name)
        elif sample:
            yield from _checked(name, key, sample, max(seen.values()), tally)
        elif read == 0:
            tally.skip("empty shard", name)


def _checked(shard: str, key: str, sample: dict, copies: int, tally: Tally) -> list[tuple[str, dict]]:
    """[(key, sample)], or [] with the sample counted in `tally`: a duplicated key (`copies`, the
    most members of one extension, > 1: that many samples, unpairable) or a dot that hid the image
    or caption."""
    if copies > 1:
        tally.bar.update(copies)
        tally.skip(DUPLICATE_KEY, f"{shard}:{key}", copies)
        return []
    for wanted in (IMAGE_EXTS, CAPTION_EXTS):  # missing, but there behind a dot: `a.b.png` is key a, extension b.png
        hidden = [e for e in sample if "." in e and e.rsplit(".", 1)[1] in wanted]
        if hidden and not any(e in sample for e in wanted):
            tally.bar.update()
            tally.skip(DOTTED_KEY, f"{shard}:{key}.{hidden[0].rsplit('.', 1)[0]}")
            return []
    return [(key, sample)]


def _add_wds_sample(out: _Collector, name: str, sample: dict[str, bytes]) -> None:
    image = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
    caption = next((sample[e] for e in CAPTION_EXTS if e in sample), None)
    meta, bad_json = {}, False
    if "json" in sample:
        try:
            meta = json.loads(sample["json"])
        except (ValueError, RecursionError):  # ValueError includes bad UTF-8
            meta = None
        if not isinstance(meta, dict):
            meta, bad_json = {}, True
    if out.add(name, image, caption, meta) and bad_json:
        out.skip("bad json (pair kept)", name)


def _load_hf(path: Path, image_size: int | None, limit: int | None, progress: bool = False,
             stream: bool = False) -> Pairs:
    ds, text_col = _open_hf(path)
    out = _Collector(f"HF dataset {path}", image_size, limit, progress, stream)
    out.bar.total = len(ds)
    extra = [c for c in ds.column_names if c not in ("image", text_col)]
    if stream:  # the image column stays on disk: LazyImages reads a row's image when it is drawn
        for i, row in enumerate(ds.select_columns([text_col, *extra])):
            if out.full:
                break
            out.add(f"HF row {i}", (str(path), i, HF_ROW), row[text_col], {c: row[c] for c in extra})
        return out.pairs()
    for i, row in enumerate(ds):
        if out.full:
            break
        out.add(f"HF row {i}", _hf_image_bytes(row["image"]), row[text_col], {c: row[c] for c in extra})
    return out.pairs()


def _open_hf(path: Path):
    """(the dataset saved at `path`, its caption column), images undecoded: the `train` split
    of a DatasetDict, or its only one."""
    import datasets  # lazy: Hugging Face datasets takes seconds to import, HF sources only

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many kinds (ArrowInvalid, JSONDecodeError, FileNotFoundError, ...)
        detail = " ".join(str(e).split())
        raise DataError(f"cannot read the HF dataset at {path}: {type(e).__name__}: {detail}") from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds and len(ds) != 1:
            raise DataError(f"HF dataset at {path} has splits {list(ds)} and none is called 'train'")
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    text_col = next((c for c in ("caption", "text", "txt") if c in ds.column_names), None)
    if "image" not in ds.column_names or text_col is None:
        raise DataError(f"HF dataset at {path} needs an 'image' and a 'caption' column; "
                        f"it has {ds.column_names}")
    if isinstance(ds.features["image"], datasets.Image):
        ds = ds.cast_column("image", datasets.Image(decode=False))  # bytes: decode errors become skips
    return ds, text_col


def _hf_image_bytes(value) -> bytes | None:
    """An undecoded `datasets.Image` value ({"bytes", "path"}) or a binary column -> bytes."""
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return value["bytes"]
        if value.get("path"):
            try:
                return Path(value["path"]).read_bytes()
            except OSError:
                return None  # an image file that is gone: counted as "no image"
        return None
    return value if isinstance(value, bytes) else None


CSV_SUFFIXES = (".csv", ".tsv")
CSV_IMAGE_COLUMNS = ("filepath", "image", "image_path", "file", "path", "url")  # first present wins
CSV_CAPTION_COLUMNS = ("title", "caption", "text", "txt")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # http(s)://, s3://, gs://, ...: never fetched


def _load_csv(path: Path, image_size: int | None, limit: int | None, progress: bool = False,
              stream: bool = False) -> Pairs:
    """A caption table beside local image files, in one of two forms:

    - open_clip_train's CSV: a header naming an image column (one of CSV_IMAGE_COLUMNS) and a
      caption column (one of CSV_CAPTION_COLUMNS), case-insensitive; the other columns go into
      each row's meta. The separator is the one (tab or comma) that splits the header into those
      names, whatever the suffix: open_clip_train's own default is a tab, even in a `.csv`.
    - CC3M's release format: no header, `caption<TAB>image` per line, recognised by the first
      line's second cell looking like an image (a URL, an image file extension, or a file there).

    Standard CSV quoting (as pandas, which open_clip_train reads with): a quoted cell may hold the
    separator, quotes ("") and newlines. Image paths are relative to the table's folder unless
    absolute. Rows are skipped and counted as: "bad row" (too few or too many cells), "remote
    image (download first)" (a URL: nothing is ever downloaded), "missing image", "unreadable
    image", "no image" (empty cell), "empty caption", "corrupt image"; a skipped row is named
    `<file>:row N`, N counting data rows from 1. A file that is not UTF-8, a header without the
    columns, or text the csv module cannot parse is a DataError."""
    name = path.name
    delimiter, header = _csv_layout(path)
    if header is None:
        image_col, caption_col, extra, width = 1, 0, {}, 2
        kind = "CC3M-style TSV"
    else:
        names = _lower(header)
        image_col = names.index(next(c for c in CSV_IMAGE_COLUMNS if c in names))
        caption_col = names.index(next(c for c in CSV_CAPTION_COLUMNS if c in names))
        extra = {i: h for i, h in enumerate(header) if i not in (image_col, caption_col)}
        width = len(header)
        kind = "TSV" if delimiter == "\t" else "CSV"
    out = _Collector(f"{kind} {path}", image_size, limit, progress, stream)
    row = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            if header is not None:
                next(reader)
            for cells in reader:
                if out.full:
                    break
                if not cells:  # a blank line (pandas skips them too)
                    continue
                row += 1
                where = f"{name}:row {row}"
                if len(cells) != width:
                    out.bar.update()
                    out.skip("bad row", where)
                    continue
                image = _csv_image(path.parent, cells[image_col].strip(), out, where)
                if image is not False:
                    out.add(where, image, cells[caption_col], {h: cells[i] for i, h in extra.items()})
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text (undecodable bytes at or after data row {row + 1}); "
                        f"re-save it as UTF-8") from None
    except csv.Error as e:
        raise DataError(f"cannot parse {path} after data row {row}: {e}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None
    return out.pairs()


def _lower(header: list[str]) -> list[str]:
    return [h.strip().lower() for h in header]


def _csv_layout(path: Path) -> tuple[str, list[str] | None]:
    """(separator, header cells) of a caption table; header None for a headerless CC3M TSV. The
    first record is parsed with each separator (a quoted first caption may span lines)."""
    first, errors = {}, []
    for delimiter in ("\t", ","):
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                first[delimiter] = next(csv.reader(f, delimiter=delimiter), [])
        except UnicodeDecodeError:
            raise DataError(f"{path} is not UTF-8 text; re-save it as UTF-8") from None
        except csv.Error as e:  # e.g. a quote the other separator would close: try the next one
            first[delimiter] = []
            errors.append(str(e))
        except OSError as e:
            raise DataError(f"cannot read {path}: {e}") from None
    if len(errors) == len(first):
        raise DataError(f"cannot parse the first row of {path}: {errors[0]}")
    if not any(first.values()):
        raise DataError(f"{path} is empty (expected a header row, or caption<TAB>image rows)")
    for delimiter, cells in first.items():
        names = _lower(cells)
        if any(c in names for c in CSV_IMAGE_COLUMNS) and any(c in names for c in CSV_CAPTION_COLUMNS):
            return delimiter, cells
    if len(first["\t"]) == 2 and _looks_like_image(path.parent, first["\t"][1].strip()):
        return "\t", None
    cells = max(first.values(), key=len)
    raise DataError(f"{path} has columns {cells}: expected a header with an image column (one of "
                    f"{', '.join(CSV_IMAGE_COLUMNS)}) and a caption column (one of "
                    f"{', '.join(CSV_CAPTION_COLUMNS)}), or headerless caption<TAB>image rows (CC3M)")


def _looks_like_image(folder: Path, cell: str) -> bool:
    if _URL.match(cell) or Path(cell).suffix.lower().lstrip(".") in IMAGE_EXTS + ("gif", "bmp", "tif", "tiff"):
        return True
    try:
        return bool(cell) and (folder / cell).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _csv_image(folder: Path, cell: str, out: _Collector, where: str) -> bytes | tuple | None | bool:
    """A row's image cell -> its file's bytes (streaming: a reference to the file); None for an
    empty cell (Collector: "no image"); False when the row was skipped here (counted in `out`)."""
    if not cell:
        return None
    reason = None
    if _URL.match(cell):
        reason = "remote image (download first)"
    else:
        file = Path(cell) if Path(cell).is_absolute() else folder / cell
        try:
            if out.stream:  # read when drawn (LazyImages)
                if not file.is_file():
                    raise FileNotFoundError(file)
                return str(file), 0, WHOLE_FILE
            return file.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            reason = "missing image"
        except (OSError, ValueError):  # permissions, a name too long, a NUL byte in the name
            reason = "unreadable image"
    out.bar.update()
    return out.skip(reason, where)


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


def data_identity(data: str | Path) -> str:
    """What the data is, not only where: a world folder's world.json (less its build timings), so
    a world rebuilt with other settings at the same path is other data; any other source, its path."""
    info_path = Path(data) / "world.json"
    if not info_path.is_file():
        return str(data)
    info = json.loads(info_path.read_text())
    info.pop("seconds", None)
    return hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
