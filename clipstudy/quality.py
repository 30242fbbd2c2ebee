"""Data quality (paper A's A2): score each pair of a pool by a reference CLIP's image-text
similarity, keep the top fraction, and measure each cut against the world's ground-truth noise.

    s = scores(reference_run, "data/worlds/study-laptop-noisy")    # cosine similarity per pair, cached
    keep = top_fraction(s, 0.4, candidates)                         # the best 40% of the candidates
    path = save_subset(keep, "data/runs")                           # a TrainConfig's data_subset
    cut_quality(keep, noise_labels(world), candidates)              # precision / recall of the cut

As paper A and DataComp's CLIP-score filter: the reference model embeds each image and its
caption, the cosine of the two is the pair's score, and a cut keeps the highest-scoring pairs. The
reference here is a CLIP that clipstudy trained on a separate clean subset (the chapter keeps its
rows out of the candidates); any run folder `runs.load_run` reads will do.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

SUBSETS = "subsets"  # <runs_dir>/subsets/<content hash>.npy: row indices a run trains on
MIX = {"noise_mismatch": 1 / 2, "noise_boilerplate": 1 / 3, "noise_partial": 1 / 6}  # a web-like mix of noise kinds


def noise_mix(rate: float) -> dict[str, float]:
    """The world options that make a share `rate` of the pool captions noisy, in MIX's proportions."""
    return {k: round(rate * share, 6) for k, share in MIX.items()} if rate else {}


def scores(run: str | Path, data: str | Path, batch_size: int = 512, progress: bool = False) -> np.ndarray:
    """float32 [N]: the cosine similarity of each pair of `data`'s pool under the model of the run
    folder `run`, on the device it trained on. Cached beside the run (`scores/<data identity>.npy`),
    so a pool is scored once per reference."""
    from clipstudy.compute import resolve_device, resolve_precision
    from clipstudy.data import load_pairs
    from clipstudy.evaluate import image_features, text_features
    from clipstudy.runs import data_identity, load_run, run_lock

    run = Path(run)
    key = hashlib.sha256(data_identity(data).encode()).hexdigest()[:16]
    cache = run / "scores" / f"{key}.npy"
    with run_lock(run):  # two chapters asking at once: one scores, the other reads
        if cache.is_file():
            return np.load(cache)
        model, tokenizer, cfg = load_run(run)
        device = str(resolve_device(cfg["train"].get("device", "auto")))
        precision = resolve_precision("auto", device)
        model = model.to(device)
        pairs = load_pairs(data)
        image = image_features(model, pairs.images, batch_size, device, progress=progress, precision=precision)
        text = text_features(model, tokenizer, pairs.captions, batch_size, device, precision)
        out = (image * text).sum(dim=1).numpy().astype(np.float32)
        cache.parent.mkdir(exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npy")
        np.save(tmp, out)
        os.replace(tmp, cache)
    return out


def top_fraction(score: np.ndarray, fraction: float, candidates: np.ndarray | None = None) -> np.ndarray:
    """The sorted row indices of the best `fraction` of `candidates` (default: every row) by
    score; ties broken by row order, so a cut is a pure function of the scores."""
    if not 0 < fraction <= 1:
        from clipstudy.config import ConfigError

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
