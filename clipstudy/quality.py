"""Data quality (paper A's A2): score each pair of a pool by a reference CLIP's image-text
similarity, keep the top fraction, and measure each cut against the world's ground-truth noise.

    s = scores(reference_run, "data/worlds/study-laptop-noisy")    # cosine similarity per pair, cached
    keep = top_fraction(s, 0.4, candidates)                         # the best 40% of the candidates
    path = save_subset(keep, "data/runs")                           # a TrainConfig's data_subset
    cut_quality(keep, noise_labels(world), candidates)              # precision / recall of the cut

As paper A and DataComp's CLIP-score filter: the reference model embeds each image and its
caption, the cosine of the two is the pair's score, and a cut keeps the highest-scoring pairs. The
reference is a CLIP that clipstudy trained on a separate clean subset (the chapter keeps its
rows out of the candidates; any run folder `store.load_run` reads will do), or any open_clip
checkpoint, as DataComp filters with OpenAI's ViT-L/14:

    s = scores("open_clip:ViT-B-32:laion2b_s34b_b79k", world)      # a pretrained tag (weights in open_clip's cache)
    s = scores("open_clip:ViT-B-32:/models/vit-b-32.bin", world)    # a checkpoint file open_clip loads

Cost: one forward pass of each image and caption of the pool, as `evaluate.image_features` and
`text_features`; cached, so a pool is scored once per reference.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import open_clip

from clipstudy.compute import resolve_device, resolve_precision
from clipstudy.config import ConfigError
from clipstudy.data import MEAN, STD, data_identity, load_pairs
from clipstudy.evaluate import image_features, text_features
from clipstudy.records import run_lock
from clipstudy.store import load_run

SUBSETS = "subsets"  # <runs_dir>/subsets/<content hash>.npy: row indices a run trains on
SCORES = "scores"  # <run>/scores/ or <runs_dir>/scores/<model>-<reference hash>/: <pool hash>.npy, one per pool scored
OPEN_CLIP = "open_clip:"  # a reference that is an open_clip checkpoint, not a clipstudy run folder
REFERENCE_FORMS = ("a clipstudy run folder, or open_clip:<model name>:<checkpoint file or pretrained tag> "
                   "(e.g. open_clip:ViT-B-32:laion2b_s34b_b79k)")
MIX = {"noise_mismatch": 1 / 2, "noise_boilerplate": 1 / 3, "noise_partial": 1 / 6}  # a web-like mix of noise kinds


def noise_mix(rate: float) -> dict[str, float]:
    """The world options that make a share `rate` of the pool captions noisy, in MIX's proportions."""
    return {k: round(rate * share, 6) for k, share in MIX.items()} if rate else {}


def parse_reference(reference: str | Path) -> tuple[str, str] | None:
    """(open_clip model name, checkpoint file or pretrained tag) of an `open_clip:` reference, None
    for a run folder. Anything else (another form, a model open_clip does not know, a file that is
    not there, a tag the model lacks) is a ConfigError naming the value and the valid ones, so a
    chapter fails before it builds worlds rather than after."""
    spec = str(reference)
    if not spec.startswith(OPEN_CLIP):
        if not Path(spec).is_dir():
            raise ConfigError(f"reference {spec!r} is not {REFERENCE_FORMS}")
        return None

    name, _, pretrained = spec[len(OPEN_CLIP):].partition(":")
    if not name or not pretrained:
        raise ConfigError(f"reference {spec!r} is not {REFERENCE_FORMS}")
    if name not in open_clip.list_models():
        raise ConfigError(f"reference {spec!r}: open_clip has no model {name!r}; its models: {open_clip.list_models()}")
    if not Path(pretrained).is_file() and not open_clip.get_pretrained_cfg(name, pretrained):
        raise ConfigError(f"reference {spec!r}: {pretrained!r} is neither a checkpoint file (there is none at that "
                          f"path) nor a pretrained tag of {name}; its tags: "
                          f"{open_clip.list_pretrained_tags_by_model(name)}")
    return name, pretrained


def scores(reference: str | Path, data: str | Path, batch_size: int = 512, progress: bool = False,
           cache_dir: str | Path | None = None) -> np.ndarray:
    """float32 [N]: the cosine similarity of each pair of `data`'s pool under the reference model,
    scored once per reference and pool. `reference` (`parse_reference`) is a clipstudy run folder,
    scored on the device it trained on and cached beside it (`<run>/scores/`), or an open_clip
    checkpoint, scored on the best device here with its model's own image size, pixel mean and std
    and tokenizer, and cached in `<cache_dir>/<model>-<hash>/` (default data/runs/scores; the hash
    is of the model and tag, or of the file's path, size and time, so a rewritten file is scored
    again). A real world's pool streams from disk (`data.LazyImages`), decoded batch by batch in this
    process; an image that does not decode is scored as the next row's image (LazyImages'
    replacement), so its pair scores as a mismatch would."""
    spec = parse_reference(reference)
    if spec is None:  # a run folder: its scores lie in it, under the run's own lock
        owner = Path(reference)
        folder = owner / SCORES
    else:
        owner = folder = Path(cache_dir or Path("data/runs") / SCORES) / _reference_key(*spec)
    cache = folder / f"{hashlib.sha256(data_identity(data).encode()).hexdigest()[:16]}.npy"
    with run_lock(owner):  # two chapters asking at once: one scores, the other reads
        if cache.is_file():
            return np.load(cache)
        model, tokenizer, device, mean, std = _reference_model(reference, spec)
        precision = resolve_precision("auto", device)
        pairs = load_pairs(data)
        image = image_features(model, pairs.images, batch_size, device, progress=progress, precision=precision,
                               mean=mean, std=std)
        text = text_features(model, tokenizer, pairs.captions, batch_size, device, precision)
        out = (image * text).sum(dim=1).cpu().numpy().astype(np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npy")
        np.save(tmp, out)
        os.replace(tmp, cache)
    return out


def _reference_key(name: str, pretrained: str) -> str:
    """The cache folder of an open_clip reference: its model name and a hash of what its weights
    are (the tag, or the checkpoint file's absolute path, size and modification time)."""
    file = Path(pretrained)
    what = [name, pretrained]
    if file.is_file():
        what = [name, str(file.resolve()), file.stat().st_size, file.stat().st_mtime_ns]
    return f"{name}-{hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]}"


def _reference_model(reference: str | Path, spec: tuple[str, str] | None):
    """-> (model in eval mode on its device, tokenizer, device, pixel mean, pixel std): a run's
    model on the device it trained on with clipstudy's [-1, 1] pixels, or an open_clip model on
    the best device here with the normalisation its config or pretrained tag names."""
    if spec is None:
        model, tokenizer, cfg = load_run(Path(reference))
        device = str(resolve_device(cfg["train"].get("device", "auto")))
        return model.to(device), tokenizer, device, MEAN, STD

    name, pretrained = spec
    device = str(resolve_device("auto"))
    model, _, _ = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
    norm = model.visual.preprocess_cfg  # what the returned transforms normalise with
    return model.eval(), open_clip.get_tokenizer(name), device, tuple(norm["mean"]), tuple(norm["std"])


def top_fraction(score: np.ndarray, fraction: float, candidates: np.ndarray | None = None) -> np.ndarray:
    """The sorted row indices of the best `fraction` of `candidates` (default: every row) by
    score; ties broken by row order, so a cut is a pure function of the scores."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction={fraction} is out of range; use 0 < fraction <= 1 (0.4 = the top 40%)")
    candidates = np.arange(len(score)) if candidates is None else np.asarray(candidates)
    order = np.argsort(-score[candidates], kind="stable")
    keep = max(1, round(fraction * len(candidates)))
    return np.sort(candidates[order[:keep]])


def save_subset(indices: np.ndarray, runs_dir: str | Path) -> Path:
    """Write row indices as `<runs_dir>/subsets/<hash of the indices>.npy` (once; the name is the
    content, so a run's config names exactly the rows it trained on) and return the path."""
    indices = np.asarray(indices, dtype=np.int64)
    path = Path(runs_dir) / SUBSETS / f"{hashlib.sha256(indices.tobytes()).hexdigest()[:16]}.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, indices)
        os.replace(tmp, path)
    return path


def noise_labels(world: str | Path) -> list[str]:
    """The ground-truth noise label of each pool pair of a world ("clean", "mismatch", ...)."""
    path = Path(world) / "train" / "meta.jsonl"
    return [json.loads(line).get("noise", "clean") for line in path.read_text().splitlines() if line]


def cut_quality(kept: np.ndarray, labels: list[str], candidates: np.ndarray | None = None) -> dict[str, float]:
    """How a cut sorts clean from noisy pairs, against the ground truth: `precision` (the share of
    kept pairs that are clean), `recall` (the share of clean candidates kept), and for each noise
    type the share of its candidates the cut removed (`removed/<type>`)."""
    labels = np.asarray(labels)
    candidates = np.arange(len(labels)) if candidates is None else np.asarray(candidates)
    kept_mask = np.zeros(len(labels), bool)
    kept_mask[np.asarray(kept)] = True
    cand = labels[candidates]
    kept_labels = labels[kept_mask]
    out = {"kept": float(kept_mask.sum()), "precision": float(np.mean(kept_labels == "clean")),
           "recall": float(kept_mask[candidates][cand == "clean"].mean()) if (cand == "clean").any() else float("nan")}
    for kind in sorted(set(cand) - {"clean"}):
        out[f"removed/{kind}"] = float(1 - kept_mask[candidates][cand == kind].mean())
    return out
