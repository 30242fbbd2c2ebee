"""Real evaluation sets (ImageNet and its variants, ObjectNet, COCO, Flickr) in the layouts they
ship in, evaluated through the same functions as a world's suites (`clipstudy.evaluate`).

`load_eval_set(path, name, image_size=...)` detects the layout and returns an `EvalSet`: a
`clipstudy.data.Suite` of uint8 images (center-cropped and resized to `image_size`, as
CLIP_benchmark's Resize + CenterCrop) plus class names and zero-shot templates.
`evaluate_eval_set` scores a model on it: top1/top5 or i2t/t2i recall@1/5.

Layouts (the first that matches):

- CLIP_benchmark webdataset (`wds_imagenet1k`, `wds_mscoco_captions`, ...): `test/*.tar`
  (shards `0..n-1` if `test/nshards.txt`), `classnames.txt`, `zeroshot_classification_templates.txt`,
  `dataset_type.txt` ("retrieval" for caption sets). Samples: an image (`webp|png|jpg|jpeg`) with
  `cls` (int label) or `txt` (captions, one a line). Names and templates: the folder's own files.
- Caption annotations over an image folder (a file, or a folder holding one): CLIP_benchmark's
  Flickr form (`flickr30k_test_karpathy.txt`: a header, then `<image>.jpg,<caption>` lines), a
  COCO-format JSON (`images` + `annotations`, e.g. CLIP_benchmark's `coco_test_karpathy.json`) or
  Karpathy's `dataset_coco.json` / `dataset_flickr30k.json` (`images` with `filename`,
  `sentences`, `split`: its `test` split). Images are looked up beside the annotation file, in
  its `filepath` and in the folders next to it (`val2014/`, `flickr30k-images/`).
- ObjectNet (name `objectnet`): CLIP_benchmark's layout, the mapping files in the root (or
  `mappings/`), images in `objectnet-1.0/images/<folder>/`; its 113 ImageNet-overlapping classes,
  as `clip_benchmark.datasets.objectnet.get_metadata` defines them.
- Class folders (torchvision ImageFolder): `root/<class>/**/*.{jpg,jpeg,png,webp,...}`, any case.
  Labels and class names:
  - ImageNet names (`imagenet1k`, `imagenetv2`, `imagenet_sketch`, `imagenet-r`, `imagenet-a`,
    `imagenet-o`): CLIP_benchmark's classes for that set — all 1,000 `en_classnames.json`
    "imagenet1k" names, or the 200 its `build_dataset` keeps for -R/-A/-O (their wnid lists are
    read from `clip_benchmark/datasets/builder.py`, the mask applied to `all_imagenet_wordnet_ids`
    as it does). A wnid folder gets its class's index; a numeric folder `k` (ImageNet-V2) is class
    k. A folder that is not one of the set's classes is a DataError. With a part of the folders
    the set is still the full 1,000- or 200-way problem.
  - another CLIP_benchmark name with a class list (`fer2013`, ...): its names, in sorted folder
    order (as its ImageFolder datasets), one per folder.
  - otherwise: `classnames.txt` in the root, one per line, in sorted folder order (numeric
    folders: folder k is line k); else ImageNet names if every folder is an ImageNet wnid; else
    the folder names with "_" as spaces.
  Templates: with a name, CLIP_benchmark's for it, else its ImageNet ones (builder's fallback;
  `en_zeroshot_classification_templates.json`); without one, the root's
  `zeroshot_classification_templates.txt` if there is one, else CLIP_benchmark's ImageNet ones.

Templates are returned in clipstudy's form, '{}' for the class name (CLIP_benchmark writes
'{c}'), ready for `evaluate.zero_shot`. Images that cannot be read (corrupt, truncated, missing)
and damaged shards are skipped and counted in `EvalSet.skipped` as `load_pairs` does; a root that
cannot be read, or holds nothing usable, is a DataError. With `limit`, class folders are read
round-robin over the classes, so a small limit still covers them all.

Memory: the images are held in RAM, N x image_size^2 x 3 bytes (ImageNet val at 224 px: 7.5 GB).

`build_real_world(out, pool, eval_sets, image_size)` turns such sets into a world folder, so the
chapter notebooks train and evaluate on real data as on an EmojiWorld
(`python -m clipstudy world real`): each set is one suite, read once at `image_size` and written
as `data.load_suite` reads it; world.json names the training pool, which stays where it is. Memory:
one set at a time.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .config import ConfigError
from .data import DataError, Suite, Tally, _decode, tar_samples
from .evaluate import PROBE_SUITE, PROBE_TEST_SUITE, SHIFT_PREFIX, Tokenizer, retrieval, zero_shot
from .world.build import write_folder

# torchvision ImageFolder's extensions (IMG_EXTENSIONS), matched in any case
FOLDER_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
WDS_IMAGE_EXTS = ("webp", "png", "jpg", "jpeg")  # builder.build_wds_dataset's order
IMAGENET_1K = ("imagenet1k", "imagenetv2", "imagenet_sketch")  # all 1,000 classes
IMAGENET_SUBSETS = {"imagenet-r": "imagenet_r_wnids", "imagenet-a": "imagenet_a_wnids",
                    "imagenet-o": "imagenet_o_wnids"}  # name -> its wnid list in builder.py
RETRIEVAL_NAMES = ("mscoco_captions", "flickr30k", "flickr8k")
OBJECTNET_FILES = ("folder_to_objectnet_label.json", "objectnet_to_imagenet_1k.json",
                   "pytorch_to_imagenet_2012_id.json", "imagenet_to_label_2012_v2")


@dataclass
class EvalSet:
    """A real evaluation set as arrays: `suite.images` uint8 [N, S, S, 3] with `suite.labels`
    (classification) or `suite.captions` (retrieval); `templates` hold '{}' for the class name."""

    suite: Suite
    kind: str  # "classification" | "retrieval"
    classnames: list[str] | None
    templates: list[str] | None
    layout: str  # "class folders", "objectnet", "webdataset", "flickr txt", "coco json", "karpathy json"
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count; empty when none
    skipped_examples: list[str] = field(default_factory=list)  # "<file or shard:key> (reason)"

    def __len__(self) -> int:
        return len(self.suite.images)


# ---------------------------------------------------------------------------------------------
# CLIP_benchmark's names and templates
@functools.cache
def _benchmark_json(filename: str) -> dict:
    import clip_benchmark.datasets

    return json.loads((Path(clip_benchmark.datasets.__file__).parent / filename).read_text())


def eval_set_names() -> list[str]:
    """Every valid `name`: CLIP_benchmark's datasets with class names or templates, the ImageNet
    variants, ObjectNet and the caption sets ('wds/' or 'wds_' before any of them is allowed)."""
    names = set(_benchmark_json("en_classnames.json"))
    names |= set(_benchmark_json("en_zeroshot_classification_templates.json"))
    names |= {*IMAGENET_1K, *IMAGENET_SUBSETS, "objectnet", *RETRIEVAL_NAMES}
    return sorted(names - {"dummy"})


def _canonical(name: str | None) -> str | None:
    if name is None:
        return None
    short = re.sub(r"^wds[/_]", "", name)
    if short not in eval_set_names():
        raise ConfigError(f"unknown evaluation set name {name!r}; valid names: {eval_set_names()} "
                          f"(optionally prefixed 'wds/' or 'wds_')")
    return short


def benchmark_templates(name: str | None) -> list[str]:
    """CLIP_benchmark's zero-shot templates for `name`, else its ImageNet ones (as build_dataset
    falls back), in clipstudy's '{}' form."""
    from clip_benchmark.datasets.builder import value_from_first_key_found

    templates = _benchmark_json("en_zeroshot_classification_templates.json")
    return _clipstudy_templates(value_from_first_key_found(templates, [name, "imagenet1k"]))


def _clipstudy_templates(templates: Sequence[str]) -> list[str]:
    """CLIP_benchmark's '{c}' placeholder -> '{}'; any other brace is kept literally."""
    out = []
    for t in templates:
        t = t.strip().replace("{", "{{").replace("}", "}}")
        if t:
            out.append(t.replace("{{c}}", "{}").replace("{{}}", "{}"))
    return out


@functools.cache
def _builder_list(variable: str) -> list[str]:
    """A wnid list that CLIP_benchmark's build_dataset keeps in a local variable (imagenet_r_wnids,
    ...), read from its source so the class sets are CLIP_benchmark's own, not copies."""
    from clip_benchmark.datasets import builder

    for node in ast.walk(ast.parse(Path(builder.__file__).read_text())):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == variable for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError(f"{builder.__file__} no longer defines {variable}; this CLIP_benchmark version "
                       f"is not supported by clipstudy.real")


@functools.cache
def imagenet_classes(name: str) -> tuple[list[str], list[str]]:
    """(wnids, class names) of an ImageNet variant in CLIP_benchmark's label order: all 1,000
    classes, or for -R/-A/-O the 200 that build_dataset keeps (its mask over all_imagenet_wordnet_ids)."""
    from clip_benchmark.datasets.builder import all_imagenet_wordnet_ids

    names = _benchmark_json("en_classnames.json")["imagenet1k"]
    keep = set(_builder_list(IMAGENET_SUBSETS[name])) if name in IMAGENET_SUBSETS else None
    pairs = [(w, n) for w, n in zip(all_imagenet_wordnet_ids, names) if keep is None or w in keep]
    return [w for w, _ in pairs], [n for _, n in pairs]


# ---------------------------------------------------------------------------------------------
# reading images, skipping and counting the bad ones
class _Reader(Tally):
    """An evaluation set's images and targets, read one at a time; bad ones skipped and counted."""

    def __init__(self, where: str, image_size: int, limit: int | None, progress: bool):
        super().__init__(where, progress, unit=" images")
        self.image_size, self.limit = int(image_size), limit
        self.images: list[np.ndarray | None] = []
        self.targets: list = []

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.images) >= self.limit

    def add(self, name: str, data: bytes | None, target) -> None:
        self.bar.update()
        if data is None:
            return self.skip("no image", name)
        try:
            pixels = _decode(data, self.image_size)
        except Exception:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, ...) on bad bytes
            return self.skip("corrupt image", name)
        self.images.append(pixels)
        self.targets.append(target)

    def add_file(self, path: Path, target, name: str) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.bar.update()
            return self.skip("missing image", name)
        except OSError:
            self.bar.update()
            return self.skip("unreadable image", name)
        self.add(name, data, target)

    def finish(self) -> tuple[np.ndarray, list]:
        self.bar.close()
        if not self.images:
            detail = f": skipped {self.skipped}, e.g. {'; '.join(self.examples[:3])}" if self.skipped else ""
            raise DataError(f"{self.where} holds no usable images{detail}")
        s = self.image_size
        out = np.empty((len(self.images), s, s, 3), dtype=np.uint8)
        for i in range(len(out)):  # moved one by one: peak memory one set of images, not two
            out[i], self.images[i] = self.images[i], None
        return out, self.targets


def _lines(path: Path) -> list[str] | None:
    """Stripped non-empty lines of a text file; None if there is none."""
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None


# ---------------------------------------------------------------------------------------------
# the layouts
def load_eval_set(path: str | Path, name: str | None = None, *, image_size: int, limit: int | None = None,
                  progress: bool = False) -> EvalSet:
    """Read a real evaluation set; the layout is detected (see the module docstring). `name`
    picks CLIP_benchmark's class names and templates (`imagenet1k`, `imagenet-r`, ...; see
    `eval_set_names()`). `limit`: at most that many images."""
    canonical = _canonical(name)
    root = Path(path)
    if not root.exists():
        raise DataError(f"no evaluation set at {root}: the path does not exist")
    annotation = _annotation_file(root)
    if (root / "test" / "nshards.txt").is_file() or any((root / "test").glob("*.tar")):
        out = _load_wds(root, canonical, image_size, limit, progress)
    elif annotation is not None:
        out = _load_captions(annotation, image_size, limit, progress)
    elif canonical == "objectnet":
        out = _load_objectnet(root, image_size, limit, progress)
    elif root.is_dir() and _subdirs(root):
        out = _load_folders(root, canonical, image_size, limit, progress)
    else:
        raise DataError(f"no evaluation set found at {root}: expected class folders (root/<class>/*.jpg), "
                        f"CLIP_benchmark webdataset shards (root/test/*.tar), or caption annotations "
                        f"(*_karpathy.txt, a COCO or Karpathy JSON) over an image folder")
    retrieval_name = canonical in RETRIEVAL_NAMES
    if canonical is not None and retrieval_name != (out.kind == "retrieval"):
        raise ConfigError(f"{name!r} is a {'retrieval' if retrieval_name else 'classification'} set, but {root} "
                          f"holds a {out.kind} set ({out.layout})")
    out.suite.name = canonical or (root.stem if root.is_file() else root.name)
    return out


def _load_folders(root: Path, name: str | None, image_size: int, limit: int | None, progress: bool) -> EvalSet:
    dirs = _subdirs(root)
    numeric = all(d.name.isdigit() for d in dirs)
    if numeric:
        dirs.sort(key=lambda d: int(d.name))
    if name in IMAGENET_1K or name in IMAGENET_SUBSETS:
        wnids, classnames = imagenet_classes(name)
        if numeric and name in IMAGENET_1K:
            labels = [int(d.name) for d in dirs]
        else:
            index = {w: i for i, w in enumerate(wnids)}
            labels = [index.get(d.name, -1) for d in dirs]
        bad = [d.name for d, y in zip(dirs, labels) if not 0 <= y < len(classnames)]
        if bad:
            raise DataError(f"{root}: folder(s) {bad[:5]} are not among {name}'s {len(classnames)} classes "
                            f"(expected ImageNet wnid folders{', or 0..999' if name in IMAGENET_1K else ''})")
    elif classnames := _benchmark_classnames(name):  # one name per sorted folder (its ImageFolder sets)
        if len(classnames) != len(dirs):
            raise DataError(f"{root} has {len(dirs)} class folders but CLIP_benchmark's {name} has "
                            f"{len(classnames)} classes")
        labels = list(range(len(dirs)))
    elif classnames := _lines(root / "classnames.txt"):
        if numeric:  # folder k is line k (ImageNet-V2's layout)
            labels = [int(d.name) for d in dirs]
            if labels[-1] >= len(classnames):
                raise DataError(f"{root}: folder {dirs[-1].name} has no line in classnames.txt "
                                f"({len(classnames)} names)")
        elif len(classnames) != len(dirs):
            raise DataError(f"{root} has {len(dirs)} class folders but classnames.txt lists {len(classnames)}")
        else:
            labels = list(range(len(dirs)))
    elif all(d.name in _imagenet_index() for d in dirs):  # ImageNet wnids: their names
        classnames = [imagenet_classes("imagenet1k")[1][_imagenet_index()[d.name]] for d in dirs]
        labels = list(range(len(dirs)))
    else:
        classnames = [d.name.replace("_", " ") for d in dirs]
        labels = list(range(len(dirs)))
    own = None if name else _lines(root / "zeroshot_classification_templates.txt")
    templates = _clipstudy_templates(own) if own else benchmark_templates(name)
    return _read_folders(root, dirs, labels, classnames, templates, "class folders", image_size, limit, progress)


def _benchmark_classnames(name: str | None) -> list[str] | None:
    """CLIP_benchmark's class names for `name`, in its label order; None if it has none."""
    if name in IMAGENET_1K or name in IMAGENET_SUBSETS:
        return imagenet_classes(name)[1]
    return _benchmark_json("en_classnames.json").get(name) if name else None


@functools.cache
def _imagenet_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_classes("imagenet1k")[0])}


def _read_folders(root: Path, dirs: list[Path], labels: list[int], classnames: list[str], templates: list[str],
                  layout: str, image_size: int, limit: int | None, progress: bool) -> EvalSet:
    files = []
    for d in dirs:
        try:
            files.append(sorted(p for p in d.rglob("*") if p.suffix.lower() in FOLDER_EXTS and p.is_file()))
        except OSError as e:
            raise DataError(f"cannot read {d}: {e}") from None
    empty = [str(d.relative_to(root)) for d, class_files in zip(dirs, files) if not class_files]
    if empty:  # as torchvision's ImageFolder: a class of no images would change chance and top-k unseen
        raise DataError(f"{root}: class folder(s) {empty[:5]}{' ...' if len(empty) > 5 else ''} hold no images "
                        f"({' '.join(FOLDER_EXTS)}); remove them or add their images")
    reader = _Reader(str(root), image_size, limit, progress)
    reader.bar.total = sum(map(len, files)) if limit is None else min(limit, sum(map(len, files)))
    for rank in range(max(map(len, files), default=0)):  # round-robin over the classes
        if reader.full:
            break
        for label, class_files in zip(labels, files):
            if reader.full:
                break
            if rank < len(class_files):
                p = class_files[rank]
                reader.add_file(p, label, str(p.relative_to(root)))
    images, targets = reader.finish()
    suite = Suite(root.name, images, labels=np.asarray(targets, dtype=np.int64))
    return EvalSet(suite, "classification", list(classnames), templates, layout, dict(reader.skipped),
                   list(reader.examples))


def _load_objectnet(root: Path, image_size: int, limit: int | None, progress: bool) -> EvalSet:
    from clip_benchmark.datasets.objectnet import get_metadata

    meta = next((d for d in (root, root / "mappings") if all((d / f).is_file() for f in OBJECTNET_FILES)), None)
    if meta is None:
        raise DataError(f"{root} is not an ObjectNet folder: expected the mapping files {list(OBJECTNET_FILES)} "
                        f"in it or in its mappings/ folder (CLIP_benchmark's layout)")
    images = next((d for d in (root / "objectnet-1.0" / "images", root / "images") if d.is_dir()), root)
    try:
        _, _, folders_to_ids, classname_map = get_metadata(meta)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"cannot read ObjectNet's mapping files in {meta}: {type(e).__name__}: {e}") from None
    folders = sorted(folders_to_ids)  # as CLIP_benchmark's ObjectNetDataset: other folders are left out
    label = {f: i for i, f in enumerate(folders)}
    dirs = [d for d in _subdirs(images) if d.name in label]
    if not dirs:
        raise DataError(f"{images} holds none of ObjectNet's {len(folders)} class folders")
    classnames = [classname_map[f].lower() for f in folders]
    return _read_folders(images, dirs, [label[d.name] for d in dirs], classnames, benchmark_templates("objectnet"),
                         "objectnet", image_size, limit, progress)


def _load_wds(root: Path, name: str | None, image_size: int, limit: int | None, progress: bool) -> EvalSet:
    split = root / "test"
    nshards = _lines(split / "nshards.txt")
    if nshards:
        try:
            shards = [split / f"{i}.tar" for i in range(int(nshards[0]))]
        except ValueError:
            raise DataError(f"{split / 'nshards.txt'} holds {nshards[0]!r}, not a number of shards") from None
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise DataError(f"{split}: shard(s) {missing[:5]} listed by nshards.txt do not exist")
    else:
        shards = sorted(split.glob("*.tar"), key=lambda p: (len(p.name), p.name))  # 2.tar before 10.tar
    if not shards:
        raise DataError(f"{split} holds no *.tar shards")
    kind = (_lines(root / "dataset_type.txt") or ["classification"])[0].lower()
    if kind not in ("classification", "retrieval"):
        raise DataError(f"{root}: dataset_type {kind!r} is not supported (classification or retrieval)")
    classnames = templates = None
    if kind == "classification":
        classnames = _lines(root / "classnames.txt") or _benchmark_classnames(name)
        if not classnames:
            raise DataError(f"{root} has no classnames.txt; pass the set's CLIP_benchmark name for its class names")
        templates = _lines(root / "zeroshot_classification_templates.txt")
        templates = _clipstudy_templates(templates) if templates else benchmark_templates(name)
    reader = _Reader(f"{len(shards)} shard{'s' if len(shards) > 1 else ''} in {split}", image_size, limit, progress)
    for shard in shards:
        for key, sample in tar_samples(shard, reader):
            where = f"{shard.name}:{key}"
            image = next((sample[e] for e in WDS_IMAGE_EXTS if e in sample), None)
            if kind == "retrieval":
                try:
                    captions = [c for c in sample["txt"].decode("utf-8").splitlines() if c.strip()]
                except KeyError:
                    captions = None
                except UnicodeDecodeError:
                    reader.skip("caption not UTF-8", where)
                    continue
                if not captions:
                    reader.skip("no caption", where)
                    continue
                reader.add(where, image, captions)
            else:
                try:
                    target = int(sample["cls"].decode("ascii").strip())
                except KeyError:
                    reader.skip("no label", where)
                    continue
                except (UnicodeDecodeError, ValueError):
                    reader.skip("bad label", where)
                    continue
                if not 0 <= target < len(classnames):
                    reader.skip("label out of range", where)
                    continue
                reader.add(where, image, target)
            if reader.full:
                break
        if reader.full:
            break
    images, targets = reader.finish()
    if kind == "retrieval":
        suite = Suite(root.name, images, captions=targets)
    else:
        suite = Suite(root.name, images, labels=np.asarray(targets, dtype=np.int64))
    return EvalSet(suite, kind, classnames, templates, "webdataset", dict(reader.skipped), list(reader.examples))


def _annotation_file(root: Path) -> Path | None:
    """The caption annotation file `root` is, or holds (a test split's when there are several)."""
    if root.is_file():
        return root
    if not root.is_dir():
        return None

    def is_annotation(p: Path) -> bool:
        n = p.name.lower()
        return (p.suffix == ".txt" and "karpathy" in n) or (
            p.suffix == ".json" and ("karpathy" in n or n.startswith(("dataset_", "captions_"))))

    try:
        found = sorted(p for p in root.iterdir() if p.is_file() and is_annotation(p))
    except OSError as e:
        raise DataError(f"cannot read {root}: {e}") from None
    if len(found) > 1:
        found = [p for p in found if "test" in p.name.lower()] or found
    if len(found) > 1:
        raise DataError(f"{root} holds several caption annotation files {[p.name for p in found]}; pass one of them")
    return found[0] if found else None


def _load_captions(ann: Path, image_size: int, limit: int | None, progress: bool) -> EvalSet:
    """Captions per image from a Flickr txt, COCO JSON or Karpathy JSON -> retrieval EvalSet."""
    entries: dict[str, list[str]] = {}  # image path as the annotation names it -> captions
    try:
        text = ann.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {ann}: {e}") from None
    if ann.suffix == ".txt":  # CLIP_benchmark's flickr.Flickr: a header, then "<image>.jpg,<caption>"
        layout = "flickr txt"
        for line in text.splitlines()[1:]:
            image, sep, caption = line.strip().partition(".jpg,")
            if sep and caption.strip():
                entries.setdefault(image + ".jpg", []).append(caption.strip())
    else:
        try:
            data = json.loads(text)
            if isinstance(data, dict) and "annotations" in data:  # COCO format (torchvision CocoCaptions)
                layout = "coco json"
                files = {im["id"]: im["file_name"] for im in data["images"]}
                caps: dict = {}
                for a in data["annotations"]:
                    caps.setdefault(a["image_id"], []).append(a["caption"].strip())
                entries = {files[i]: caps[i] for i in sorted(files) if caps.get(i)}
            else:  # Karpathy's dataset_*.json: its test split
                layout = "karpathy json"
                images = data["images"]
                if any("split" in im for im in images):
                    images = [im for im in images if im.get("split") == "test"]
                for im in images:
                    where = f"{im.get('filepath', '')}/{im['filename']}".lstrip("/")
                    entries[where] = [s["raw"].strip() for s in im["sentences"] if s.get("raw", "").strip()]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{ann} is not a COCO-format or Karpathy caption JSON: {type(e).__name__}: {e}") from None
    entries = {k: v for k, v in entries.items() if v}
    if not entries:
        raise DataError(f"{ann} lists no captioned test images")
    base = ann.parent
    folders = [base, *_subdirs(base)]
    reader = _Reader(str(ann), image_size, limit, progress)
    reader.bar.total = len(entries) if limit is None else min(limit, len(entries))
    for where, captions in entries.items():
        if reader.full:
            break
        rel = Path(where)
        path = next((f / c for f in folders for c in (rel, Path(rel.name)) if (f / c).is_file()), base / rel)
        reader.add_file(path, captions, where)
    images, captions = reader.finish()
    suite = Suite(ann.stem, images, captions=captions)
    return EvalSet(suite, "retrieval", None, None, layout, dict(reader.skipped), list(reader.examples))


# ---------------------------------------------------------------------------------------------
# evaluation
def evaluate_eval_set(model: torch.nn.Module, tokenizer: Tokenizer, eval_set: EvalSet, batch_size: int | None = None,
                      device: str = "cpu", precision: str = "auto") -> dict[str, float]:
    """Classification: {"top1", "top5"} by `evaluate.zero_shot` over the set's class names and
    templates; retrieval: {"i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"} by `evaluate.retrieval`;
    `batch_size` images a forward pass (None: 256 on a CPU, 1,024 on a GPU)."""
    s = eval_set.suite
    if eval_set.kind == "classification":
        return zero_shot(model, tokenizer, s.images, s.labels, eval_set.classnames, eval_set.templates,
                         batch_size=batch_size, device=device, precision=precision)
    if eval_set.kind == "retrieval":
        return retrieval(model, tokenizer, s.images, s.captions, batch_size, device, precision=precision)
    raise ConfigError(f"eval set kind {eval_set.kind!r}; expected 'classification' or 'retrieval'")


# ---------------------------------------------------------------------------------------------
# a real world: evaluation sets as a world's suites, beside a training pool it names
RETRIEVAL_SUITE = "retrieval"
SUITE_FORMS = f"{PROBE_TEST_SUITE!r}, {PROBE_SUITE!r}, {RETRIEVAL_SUITE!r} or '{SHIFT_PREFIX}<name>'"


def build_real_world(out: str | Path, pool: str, eval_sets: dict[str, tuple[str | None, str | Path]],
                     image_size: int, overwrite: bool = False, progress: bool = False,
                     limit: int | None = None) -> Path:
    """Write a world folder of real data to `out` and return its path.

    `eval_sets` maps a suite name (`id`, `probe`, `retrieval` or `shift-<name>`) to (CLIP_benchmark
    set name or None, path); each set is read by `load_eval_set` at `image_size` (at most `limit`
    images) into `out/suites/<suite>/`. `pool` is the training source, any `data.load_pairs`
    source, recorded in world.json (a relative path made absolute) and never read here. The
    world's classes and prompts are the `id` set's (else the first classification set's); a
    classification suite with other classes or templates (ImageNet-R's 200) carries its own,
    so `evaluate.evaluate_world` builds it a classifier of its own. `probe` trains few-shot and
    linear probes tested on `id`, so it needs an `id` suite with the same classes.

    Written as `world.build.write_folder` writes (into `<out>.tmp-<pid>`, renamed when complete):
    an error leaves nothing at `out`."""
    start = time.perf_counter()
    sets = _check_real_world(out, pool, eval_sets, image_size, overwrite, limit)

    def write(tmp: Path) -> None:
        info = _write_real_world(tmp, sets, image_size, limit, progress)
        info["pool"] = {"source": _absolute(pool), "image_size": image_size}
        info["config"] = {"image_size": image_size, "pool": _absolute(pool), "limit": limit,
                          "eval_sets": {name: {"set": s, "source": str(path)} for name, (s, path) in sets.items()}}
        info["seconds"] = round(time.perf_counter() - start, 1)
        (tmp / "world.json").write_text(json.dumps(info, indent=1))

    out = Path(out)
    write_folder(out, write)
    return out


def _absolute(source: str) -> str:
    """A local path (or brace pattern) made absolute; a URL or `pipe:` command as given."""
    return source if re.match(r"^[a-z][a-z0-9+.-]*:", source) else os.path.abspath(os.path.expanduser(source))


def _check_real_world(out, pool, eval_sets, image_size, overwrite, limit) -> dict[str, tuple[str | None, Path]]:
    """Everything that can be checked before reading a set -> suite -> (set name, absolute path)."""
    if Path(out).exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it")
    if not isinstance(pool, str) or not pool.strip():
        raise ConfigError(f"pool={pool!r} is not a training source; give shards, a brace pattern, a HF dataset "
                          f"folder or a caption CSV / TSV (anything `clipstudy.data.load_pairs` reads)")
    if not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(f"image_size={image_size!r} is out of range; use an integer >= 1 (px)")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit={limit!r} is out of range; use None (every image) or an integer >= 1")
    if not eval_sets:
        raise ConfigError(f"no evaluation sets; give at least one suite: {SUITE_FORMS}")
    sets = {}
    for suite, (name, path) in eval_sets.items():
        if suite not in (PROBE_TEST_SUITE, PROBE_SUITE, RETRIEVAL_SUITE) and not (
                suite.startswith(SHIFT_PREFIX) and len(suite) > len(SHIFT_PREFIX)):
            raise ConfigError(f"suite name {suite!r} is not valid; use {SUITE_FORMS}")
        canonical = _canonical(name)
        kind = "retrieval" if canonical in RETRIEVAL_NAMES else "classification"
        if canonical is not None and kind != _suite_kind(suite):
            raise ConfigError(f"suite {suite!r} needs a {_suite_kind(suite)} set, but {name!r} is a {kind} set; "
                              f"the retrieval sets {list(RETRIEVAL_NAMES)} go to suite {RETRIEVAL_SUITE!r} only")
        sets[suite] = (name, Path(os.path.abspath(Path(path).expanduser())))
    if PROBE_SUITE in sets and PROBE_TEST_SUITE not in sets:
        raise ConfigError(f"suite {PROBE_SUITE!r} needs an {PROBE_TEST_SUITE!r} suite: its probes are tested on "
                          f"{PROBE_TEST_SUITE!r}; add one, or leave {PROBE_SUITE!r} out")
    return sets


def _suite_kind(suite: str) -> str:
    return "retrieval" if suite == RETRIEVAL_SUITE else "classification"


def _write_real_world(folder: Path, sets: dict[str, tuple[str | None, Path]], image_size: int,
                      limit: int | None, progress: bool) -> dict:
    """Read each set and write its suite into `folder` (one set in memory at a time) -> world.json
    content less the pool and config. `id` is read first: its classes are the world's."""
    names = prompts = None  # the world's classes and prompts: the id set's, else the first classification set's
    suites = {}
    for suite in sorted(sets, key=lambda s: s != PROBE_TEST_SUITE):
        name, path = sets[suite]
        es = load_eval_set(path, name, image_size=image_size, limit=limit, progress=progress)
        if es.kind != _suite_kind(suite):
            raise ConfigError(f"suite {suite!r} needs a {_suite_kind(suite)} set, but {path} holds a {es.kind} set "
                              f"({es.layout}); retrieval sets go to suite {RETRIEVAL_SUITE!r}, the others to "
                              f"{PROBE_TEST_SUITE!r}, {PROBE_SUITE!r} or '{SHIFT_PREFIX}<name>'")
        if es.kind == "classification" and names is None:
            names, prompts = es.classnames, es.templates
        if suite == PROBE_SUITE and es.classnames != names:
            raise ConfigError(f"suite {PROBE_SUITE!r} ({path}, {len(es.classnames)} classes) does not have the "
                              f"classes of suite {PROBE_TEST_SUITE!r} ({len(names)}): its probes are tested on "
                              f"{PROBE_TEST_SUITE!r}; give it the same set's classes (e.g. {name or 'imagenet1k'} "
                              f"over a few train images per class)")
        dest = folder / "suites" / suite
        dest.mkdir(parents=True)
        np.save(dest / "images.npy", es.suite.images)
        if es.kind == "retrieval":
            (dest / "captions.json").write_text(json.dumps(es.suite.captions))
        else:
            np.save(dest / "labels.npy", es.suite.labels.astype(np.int64))
        spec = {"kind": es.kind, "n": len(es), "set": _canonical(name), "source": str(path), "layout": es.layout,
                "skipped": es.skipped, "skipped_examples": es.skipped_examples}
        if es.kind == "classification" and (es.classnames, es.templates) != (names, prompts):
            spec.update(classnames=es.classnames, templates=es.templates)
        suites[suite] = spec
        del es  # one set in memory at a time
    # phrases = names: CLIP_benchmark's templates hold their own articles ("a photo of a {}.")
    return {"kind": "real", "classes": {"names": names or [], "phrases": names or []}, "prompts": prompts or [],
            "suites": {s: suites[s] for s in sets}}
