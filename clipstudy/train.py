"""One readable CLIP training function: schedule -> forward -> loss -> backward -> step -> log.

    python -m clipstudy train --data data/worlds/default --samples 250000 --out data/runs/demo

A run folder holds `config.json` (this TrainConfig + code version), `metrics.jsonl` (one JSON
line per logged step), `checkpoint.pt` (+ the open_clip JSON that loads it in plain open_clip)
and `summary.json`. The run is written to `<out>.partial` and renamed to `<out>` when it
finishes, so a folder without the suffix is always a complete run.

Cost: the default laptop run (vit-s-8, 32 px, 250k samples, word vocabulary, 16-token captions)
took 254 s on 2 CPU cores of an AMD EPYC (x86 family 26) with native bf16 (~980 samples/s) and
reached 11.6% zero-shot top-1 on the 1,021-way suite (chance 0.1%; seed 0, `make book`). With
open_clip's BPE and 32-token captions (before calibration) the same run took 5-10 minutes
(~410-800 samples/s, 13-19 in fp32) and reached 4-8% (benchmarks/precision.py, older records).

Speed (see the book's Performance page): the pool stays a uint8 array in memory; bf16 autocast
where the hardware has it (`precision="auto"`); attention on the math kernel on CPU; one fused
AdamW step; `compile=True` adds torch.compile (~1.1x more on CPU after a one-off compile; on a GPU
with CUDA graphs: vit-b-16 at 64 px, batch 1024, 2.2x on an H200, benchmarks/gpu_step.py).

Text side (the calibration page): by default a word vocabulary of the data's own captions (a
world's tokenizer.json) and 16-token captions, as paper A's own vocabulary and 16 tokens;
`vocab="bpe", context_length=32` is open_clip's BPE as the chapters ran before calibration.

Losses: `loss="clip"` (softmax over the batch) or `"siglip"` (a sigmoid per pair, open_clip's
SigLipLoss, logit scale from 10 and bias from -10, both learned).

Training strategies are fields of this one config, each off at its default (chapters 5-7):
`patch_dropout` (FLIP), `augment` (the CLIP view's uint8 batch augmentation, clipstudy/augment.py),
`ssl_scale` (SLIP: a SimCLR loss on two more views, lightly's head and NT-Xent), `tome_r` /
`tome_schedule` (token merging, clipstudy/tome.py, in training and at evaluation),
`pretrained_image` (a SimCLR tower pre-trained on the pool's images, clipstudy/pretrain.py),
`pretrained_text` (the MiniLM sentence encoder) and `lock_image` / `lock_text` (LiT: the
pre-trained body frozen, its projection trained). The FLOPs the run records count what training
runs: FLIP's kept patches, ToMe's merged tokens, SLIP's extra views, no backward through a locked tower.

Reliability: with `checkpoint_every`, a killed run resumes exactly when the same config is
trained again (the data order is a pure function of seed and step; checkpoints carry the
optimizer, the RNG states and the metrics so far, are written atomically and never from a
non-finite state). A non-finite loss stops the run before its step (on a GPU, where the loss is
read only on logged steps, up to `log_every` steps later), records `failed.json` and raises
`records.RunFailed`. Ctrl-C stops it at the end of a step, checkpointed there when it has
`checkpoint_every`, and raises `records.Interrupted`. A run folder's lock (`records.run_lock`, in
`<out's folder>/.locks/`) keeps a second process from training it at the same time. Under torchrun it trains data-parallel (clipstudy/distributed.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal, TypeVar

import filelock
import numpy as np
import torch
from tqdm.auto import tqdm

from clipstudy import __version__, augment, distributed, models, pretrain, tome
from clipstudy import tokenizer as word_vocab
from clipstudy.augment import AUGMENTATIONS
from clipstudy.compute import autocast, resolve_device, resolve_precision, use_fast_kernels
from clipstudy.config import ConfigError, to_dict
from clipstudy.data import DataError, LazyImages, batch_indices, load_pairs, load_suite, load_world_info, to_model_input
from clipstudy.evaluate import load_templates, zero_shot
from clipstudy.losses import logit_init, make_loss, make_ssl_head, ssl_loss
from clipstudy.optim import lr_at, make_optimizer
from clipstudy.records import FAILED, Interrupted, RunFailed, check_writable, run_lock

T = TypeVar("T")


@dataclass
class TrainConfig:
    data: str = "data/worlds/default"  # world folder, *.tar shards (folder or brace pattern), saved HF dataset, or a caption CSV/TSV
    out: str = "data/runs/default"  # run folder (written as <out>.partial, renamed when done)
    model: str = "vit-s-8"  # a name from clipstudy/model_configs (see `python -m clipstudy models`)
    image_size: int = 0  # px fed to the model; 0 = the data's own size
    data_limit: int = 0  # use only the first N pairs of the pool (data-quantity studies); 0 = all
    data_subset: str = ""  # a .npy of pool row indices to train on (data-quality cuts, clipstudy/quality.py); "" = all
    data_workers: int = 0  # > 0: stream the pool (shards, HF or CSV indexed, not loaded; needs image_size), each batch decoded in one of this many DataLoader processes; 0: load it into memory (a real world's pool always streams)
    samples: int = 250_000  # training samples seen: the budget axis of paper A (2.5 epochs of the default pool)
    batch_size: int = 256  # pairs per step (the contrastive loss sees batch_size^2 pairs)
    lr: float = 1e-3  # peak learning rate (paper A: 1e-3)
    min_lr: float = 0.0  # learning rate at the end of the cosine decay
    warmup: int = 5_000  # samples of linear warm-up from 0 to lr
    weight_decay: float = 0.1  # decoupled; not applied to gains, biases, embeddings, temperature
    optimizer: Literal["adamw", "adafactor"] = "adamw"  # paper A uses Adafactor (LiT recipe)
    beta1: float = 0.9  # AdamW only (torch's Adafactor has no first moment)
    beta2: float = 0.98  # AdamW second-moment decay (open_clip's CLIP recipe)
    eps: float = 1e-6  # AdamW epsilon
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast where the device multiplies bf16 natively, else fp32
    compile: bool = False  # torch.compile the model: ~1.1-1.2x faster CPU steps after a one-off compile (~50 s on 2 cores, cached after); on a GPU also CUDA graphs
    loss: Literal["clip", "siglip"] = "clip"  # clip: softmax contrastive (open_clip ClipLoss); siglip: pairwise sigmoid with a learnable bias (SigLipLoss, bias init -10)
    temperature: float = 0.07  # initial temperature (logit scale 1/T; CLIP: 0.07); siglip runs start at 0.1 (scale 10, SigLIP's t' = log 10) while this is left at 0.07
    learn_temperature: bool = True  # False holds it fixed at `temperature`
    logit_bias: float = -10.0  # siglip only: the learned bias's start (SigLIP: -10); -log(batch - 1) starts each pair's sigmoid at the batch's share of positive pairs
    # training strategies (paper A's A5/A6, paper B's B1-B3), each off at its default
    patch_dropout: float = 0.0  # FLIP: fraction of image patches dropped in training (both papers: 0.5); ViT towers; eval sees every patch
    augment: str = "none"  # the CLIP view's uint8 batch augmentation: none | crop_flip | randaugment | stacked_randaugment | stacked_randaugment_nocrop | simclr (clipstudy/augment.py)
    ssl_scale: float = 0.0  # SLIP: + ssl_scale x SimCLR loss (NT-Xent, tau 0.1) on two more views of each image (SLIP: 1.0); ~2x the image tower's compute
    tome_r: int = 0  # token merging (ToMe): tokens merged in each ViT block; 0 = off
    tome_schedule: Literal["constant", "decreasing"] = "constant"  # tome_r in every block, or ToMe's decreasing schedule (2 x tome_r falling linearly to 0: about as many merged in all)
    pretrained_image: Literal["", "simclr"] = ""  # "": from scratch; simclr: the image tower first pre-trained without text on the pool's images (SimCLR, the DINO analogue)
    pretrained_text: str = ""  # "": from scratch; minilm: all-MiniLM-L6-v2, offline (its own tokenizer; the XLM-R analogue); hf:<Hub id or folder>: any Hugging Face text model
    lock_image: bool = False  # LiT: the pre-trained image tower stays frozen (its projection to the joint space trains); no backward through it
    lock_text: bool = False  # the same for the pre-trained text tower
    pretrain_samples: int = 65_536  # images seen by the SimCLR pre-training of pretrained_image="simclr" (at batch_size and lr)
    vocab: Literal["world", "bpe"] = "world"  # world: a word per token, fitted to the data's captions; bpe: open_clip's 49k BPE
    context_length: int = 16  # caption tokens incl. start/end (paper A: 16; open_clip: 77)
    seed: int = 0  # model init and data order
    threads: int = 0  # torch CPU threads; 0 = torch's default
    device: str = "auto"  # "auto" = cuda if available, else cpu
    log_every: int = 10  # steps between metrics.jsonl lines
    curve_every: int = 0  # samples between zero-shot checks on a fixed 1,000-image subset of the world's `id` suite (curve.jsonl); 0 = off
    checkpoint_every: int = 0  # samples between checkpoints; 0 = only at the end
    keep_optimizer: bool = False  # the final checkpoint keeps the optimizer state too (3x its size with AdamW); checkpoints to resume from always do
    overwrite: bool = False  # replace an existing run folder

    def check(self) -> None:
        """Raise ConfigError, naming the field, its value and the valid range, for a run that
        cannot train as asked; runs before anything is written. (NaN fails every range test.)"""
        for name in ("samples", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.samples < self.batch_size:
            raise ConfigError(f"samples={self.samples} is less than one batch (batch_size={self.batch_size})")
        for name in ("warmup", "image_size", "data_limit", "checkpoint_every", "curve_every", "threads", "data_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        if not 0 <= self.seed < 2**63:  # numpy takes no negative seed, torch none of 2**64 or more
            raise ConfigError(f"seed={self.seed} is out of range; use 0 <= seed < 2**63")
        if not 0 < self.lr < math.inf:
            raise ConfigError(f"lr={self.lr} is out of range; use a finite lr > 0 (paper A: 1e-3)")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"min_lr={self.min_lr} is out of range; use 0 <= min_lr <= lr (lr={self.lr})")
        if not 0 < self.eps < math.inf:
            raise ConfigError(f"eps={self.eps} is out of range; use a finite eps > 0 (AdamW: 1e-6 to 1e-8)")
        for name, default in (("beta1", 0.9), ("beta2", 0.98)):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} is out of range; use 0 <= {name} < 1 (default {default})")
        for name in ("grad_clip", "weight_decay"):  # a negative clip or decay climbs the loss
            if not 0 <= getattr(self, name) < math.inf:
                raise ConfigError(f"{name}={getattr(self, name)} is out of range; use a finite {name} >= 0 (0 = off)")
        if not 0 < self.temperature <= 1:
            raise ConfigError(f"temperature={self.temperature} is out of range; use 0 < temperature <= 1 (CLIP: 0.07)")
        if not 3 <= self.context_length <= 77:
            raise ConfigError(f"context_length={self.context_length} is out of range; use 3..77")
        if self.model not in models.MODELS:
            raise ConfigError(f"model={self.model!r} is not registered; valid models: {sorted(models.MODELS)}")
        # a ViT takes multiples of its patch size, the CNN towers of their total stride; 1024 px
        # (16k patches of 8 px) is far past what any registered model is sized for
        multiple = models._size_multiple(models.model_config(self.model)["vision_cfg"])
        if self.image_size and (self.image_size % multiple or self.image_size > 1024):
            raise ConfigError(f"image_size={self.image_size} is out of range for {self.model}; use 0 (the data's "
                              f"own size) or a multiple of {multiple} px up to 1024")
        resolve_device(self.device)  # ConfigError for a device name that is not valid or not here
        if self.data_subset and (self.data_limit or not Path(self.data_subset).is_file()):
            raise ConfigError(f"data_subset={self.data_subset!r} must be an existing .npy of row indices, "
                              f"and data_limit 0 (got {self.data_limit}): a run takes one or the other")
        self._check_strategies()
        for f in dataclasses.fields(self):  # any float field the checks above do not bound
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name}={value} is out of range; use a finite number")

    def _check_strategies(self) -> None:
        if not 0 <= self.patch_dropout < 1:
            raise ConfigError(f"patch_dropout={self.patch_dropout} is out of range; use 0 <= patch_dropout < 1 (FLIP: 0.5)")
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(f"augment={self.augment!r} is not valid; choose one of {list(AUGMENTATIONS)}")
        if not 0 <= self.ssl_scale <= 100:
            raise ConfigError(f"ssl_scale={self.ssl_scale} is out of range; use 0 <= ssl_scale <= 100 (SLIP: 1.0)")
        if self.tome_r < 0 or self.pretrain_samples < 1:
            raise ConfigError(f"need tome_r >= 0 and pretrain_samples >= 1 (got {self.tome_r}, {self.pretrain_samples})")
        hf = self.pretrained_text.startswith(models.HF_PREFIX) and len(self.pretrained_text) > len(models.HF_PREFIX)
        if self.pretrained_text and not (self.pretrained_text in models.TEXT_TOWERS or hf):
            raise ConfigError(f"pretrained_text={self.pretrained_text!r} is not valid; choose '', one of "
                              f"{list(models.TEXT_TOWERS)} or '{models.HF_PREFIX}<Hugging Face Hub id or model folder>'")
        vit = models.is_vit(self.model)
        for name, on in (("patch_dropout", self.patch_dropout > 0), ("tome_r", self.tome_r > 0)):
            if on and not vit:
                raise ConfigError(f"{name} needs a ViT image tower: {self.model} has no patch tokens to drop or "
                                  f"merge; ViTs: {[m for m in models.MODELS if models.is_vit(m)]}")
        if self.logit_bias != -10.0 and self.loss != "siglip":
            raise ConfigError(f"logit_bias={self.logit_bias} needs loss='siglip' (the softmax loss has no bias); "
                              f"leave it at -10 with loss={self.loss!r}")
        for tower in ("image", "text"):
            if getattr(self, f"lock_{tower}") and not getattr(self, f"pretrained_{tower}"):
                raise ConfigError(f"lock_{tower}=true needs pretrained_{tower}: a frozen random tower learns nothing")


def make_model(cfg: TrainConfig, image_size: int, overrides: dict, device: torch.device, progress: bool = False):
    """The run's CLIP: open_clip's model as `overrides` say, a pre-trained image tower loaded,
    token merging patched in, locked towers frozen (their projections train), on `device`."""
    torch.manual_seed(cfg.seed)
    model = models.create_model(cfg.model, image_size=image_size, **overrides)
    if cfg.pretrained_image:
        model.visual.load_state_dict(pretrain.image_tower(cfg, image_size, device, progress))
    if cfg.tome_r:
        tome.apply(model, tome.run_schedule(cfg))
    for tower in ("image", "text"):
        if getattr(cfg, f"lock_{tower}"):
            for _, p in models.tower_parameters(model, tower, include_projection=False):
                p.requires_grad_(False)
    model.logit_scale.requires_grad_(cfg.learn_temperature)
    return model.to(device)


def locked_eval_mode(cfg: TrainConfig, model) -> None:
    """A locked tower runs as at inference (LiT): no dropout (MiniLM's 0.1), batch-norm statistics
    kept; FLIP's patch dropout stays on, as it is part of the strategy, not of the tower."""
    if cfg.lock_text:
        (model.text if hasattr(model, "text") else model.transformer).eval()
    if cfg.lock_image:
        model.visual.eval()
        if cfg.patch_dropout:
            model.visual.patch_dropout.train()


def train_flops(cfg: TrainConfig, model, ssl_head, image_size: int, context_length: int) -> dict:
    """GFLOPs per training sample on paper A's compute axis: each tower's forward as training
    runs it (FLIP's kept patches, ToMe's merged tokens), x3 where it trains (backward = 2x the
    forward), x1 where it is locked (no backward through it); SLIP adds two image views and its
    projector, trained."""
    f = models.flops_per_sample(model, image_size, context_length, training=True)
    image, text = f["image_gflops"], f["text_gflops"]
    train = (1 if cfg.lock_image else 3) * image + (1 if cfg.lock_text else 3) * text
    full = (models.flops_per_sample(model, image_size, context_length)["image_gflops"]  # SSL views keep every patch
            if ssl_head is not None or cfg.pretrained_image else 0.0)
    # SLIP's projector and SimCLR's pre-training head are one shape (losses.make_ssl_head): built only if no run has it
    head = _head_gflops(ssl_head if ssl_head is not None else make_ssl_head(cfg)) if full else 0.0
    if ssl_head is not None:
        train += 3 * 2 * (full + head)
    # the image tower's SimCLR pre-training (clipstudy/pretrain.py) is compute the run needs too:
    # two trained views of each of `pretrain_samples` images through the tower and its head
    pretrain = 3 * 2 * (full + head) * cfg.pretrain_samples if cfg.pretrained_image else 0.0
    return {**f, "train_gflops": train, "pretrain_gflops": pretrain}


def _head_gflops(head: torch.nn.Module) -> float:
    """An MLP head's forward GFLOPs for one input: its matmuls' multiply-adds x2."""
    return 2 * sum(p.numel() for p in head.parameters() if p.ndim == 2) / 1e9


def text_side(cfg: TrainConfig, captions: list[str]) -> tuple[Callable, dict]:
    """The run's tokenizer and the text-tower overrides it needs. `vocab="world"`: the data's
    own word vocabulary (a world folder's tokenizer.json, fitted to its whole pool when it was
    built, so every run on a world shares one vocabulary), else one fitted to `captions`."""
    if cfg.pretrained_text:  # the pre-trained tower's own tokenizer
        return (models.text_tower_tokenizer(cfg.pretrained_text, cfg.context_length),
                models.text_tower_overrides(cfg.pretrained_text, cfg.context_length))
    if cfg.vocab == "bpe":
        return models.get_tokenizer(cfg.model, cfg.context_length), {"context_length": cfg.context_length}
    if word_vocab.exists(cfg.data):
        tok = word_vocab.load(cfg.data, cfg.context_length)
    else:
        tok = word_vocab.fit(captions, cfg.context_length)
    return tok, {"vocab_size": tok.vocab_size, "context_length": cfg.context_length,
                 "hf_tokenizer_name": word_vocab.OPEN_CLIP_NAME}


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"clipstudy {__version__}" + (f" ({sha})" if sha else "")


def tokenize_pool(tokenizer, captions: list[str], progress: bool = False, chunk: int = 16_384) -> torch.Tensor:
    """Every caption's tokens [N, context_length], once per run rather than once per step: the
    same tokens, and the tokenizer (pure Python, ~40 us a caption) leaves the training loop,
    where on a GPU it would take longer than the step itself."""
    starts = range(0, len(captions), chunk)
    parts = [tokenizer(captions[s:s + chunk]) for s in tqdm(starts, desc="tokenize", disable=not progress or len(starts) < 4)]
    return torch.cat(parts)


def _one_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of `items`, each prepared in a background thread while the caller works on the
    one before (the same items in the same order). Pays where the caller's work waits on a
    device with the GIL released, as on a GPU: the next batch's images are gathered meanwhile."""
    end = object()
    with ThreadPoolExecutor(1) as pool:
        upcoming = pool.submit(next, items, end)
        while (item := upcoming.result()) is not end:
            upcoming = pool.submit(next, items, end)
            yield item


# may change on resume (compile may not: compiled random draws, e.g. FLIP's, differ from eager ones)
RESUME_IGNORES = ("out", "overwrite", "threads", "checkpoint_every", "log_every", "keep_optimizer")


class _Decoded(torch.utils.data.Dataset):
    """A batch of pool rows -> (uint8 images, the rows, the rows whose image failed and was
    replaced), decoded in whichever process the DataLoader runs it."""

    def __init__(self, images: LazyImages):
        self.images = images

    def __getitem__(self, rows: np.ndarray):
        images, bad = self.images.decode(rows)
        return torch.from_numpy(images), rows, bad


def _stream(images: LazyImages, batches: Iterator[np.ndarray], tokens: torch.Tensor, workers: int,
            device: torch.device, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, tokens) per batch of row indices, each batch read from disk and decoded in one of
    `workers` DataLoader processes (0: here). In order, so a run is the same with any number of
    workers; rows whose image failed to decode are added to `images.bad`. The workers start by fork
    where the platform has it, also in a run process of `study.train_all` (started by spawn, which
    its loaders would inherit: each worker importing torch again, ~8 s a run on 2 cores)."""
    fork = multiprocessing.get_context("fork") if workers and "fork" in multiprocessing.get_all_start_methods() else None
    prefetch = _prefetch(workers, batch * images.image_size ** 2 * 3) if workers else None
    loader = torch.utils.data.DataLoader(_Decoded(images), sampler=batches, batch_size=None, num_workers=workers,
                                         pin_memory=device.type == "cuda", prefetch_factor=prefetch,
                                         worker_init_fn=_ignore_interrupt if workers else None,
                                         multiprocessing_context=fork)
    for x, rows, bad in loader:
        images.bad.update(bad)
        yield x, tokens[torch.as_tensor(rows)]


SHM = "/dev/shm"  # where DataLoader workers hand their batches to the trainer (Linux)


def _prefetch(workers: int, batch_bytes: int, shm: str = SHM) -> int:
    """Batches each DataLoader worker keeps ready: 4, or fewer where shared memory cannot hold
    workers x that many batches twice over (a container's default /dev/shm is 64 MB, and a
    worker that overflows it dies with an opaque bus error). ConfigError where not one fits."""
    try:
        free = shutil.disk_usage(shm).free
    except OSError:  # no /dev/shm (macOS): torch shares memory another way
        return 4
    for prefetch in (4, 3, 2, 1):
        if 2 * workers * prefetch * batch_bytes <= free:
            return prefetch
    raise ConfigError(f"data_workers={workers} hand batches of {batch_bytes / 2**20:.0f} MiB to the trainer through "
                      f"{shm}, which has {free / 2**20:.0f} MiB free; it needs at least {2 * workers * batch_bytes / 2**20:.0f} "
                      f"MiB (2 x workers x one batch): give the container more shared memory (docker run "
                      f"--shm-size=8g), or lower data_workers or batch_size")


def _subset(pairs, path: str):
    """The pairs at the row indices saved in `path` (in memory: a cut of a pool is a copy)."""
    rows = np.load(path)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer) or len(rows) == 0 \
            or rows.min() < 0 or rows.max() >= len(pairs):
        raise DataError(f"data_subset {path} must hold row indices of the pool (0..{len(pairs) - 1}); "
                        f"it holds {rows.dtype} {rows.shape}")
    rows = np.sort(rows)
    images = pairs.images.subset(rows) if isinstance(pairs.images, LazyImages) else np.asarray(pairs.images[rows])
    return dataclasses.replace(pairs, images=images, captions=[pairs.captions[i] for i in rows],
                               meta=[pairs.meta[i] for i in rows] if pairs.meta else [])


def _claim(cfg: TrainConfig, lock, streams: bool) -> tuple[Path, Path, dict | None]:
    """Take the run folder's lock (re-entered when train_or_load holds it already), then
    `_prepare_out`; a folder another process is training is refused at once."""
    try:
        lock.acquire(blocking=False)
    except filelock.Timeout:
        raise ConfigError(f"{cfg.out} is being trained by another process (it holds {lock.lock_file}); "
                          f"wait for it, or choose another out") from None
    try:
        return _prepare_out(cfg, streams)
    except BaseException:
        lock.release()
        raise


def _prepare_out(cfg: TrainConfig, streams: bool) -> tuple[Path, Path, dict | None]:
    """(out, the `<out>.partial` folder to write, the checkpoint to resume from or None). A
    partial run of the same config is resumed; `overwrite` is the only way to throw one away.
    `streams`: whether this run's pool streams (`data.LazyImages`), for `_same_loading`."""
    out = Path(cfg.out)
    partial = out.with_name(out.name + ".partial")
    if out.exists() and not cfg.overwrite:
        raise ConfigError(f"run folder {out} already exists; pass overwrite=true or choose another out")
    if cfg.overwrite or not partial.exists():
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        return out, partial, None
    if (partial / FAILED).is_file():
        why = json.loads((partial / FAILED).read_text())["error"]
        raise RunFailed(f"{partial} failed before ({why}); pass overwrite=true to train it again")
    ckpt = partial / "checkpoint.pt"
    if not ckpt.is_file():  # killed before its first checkpoint: nothing to resume
        shutil.rmtree(partial)
        partial.mkdir(parents=True)
        return out, partial, None
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # written atomically, so only damage from outside gets here
        raise DataError(f"cannot resume from {ckpt} ({type(e).__name__}: {e}); pass overwrite=true to start again") from e
    saved, now = state["train_config"], to_dict(cfg)
    differ = sorted(k for k in now if k not in RESUME_IGNORES and saved.get(k) != now[k])
    if "data_workers" in differ and _same_loading(saved["data_workers"], cfg.data_workers, streams):
        differ.remove("data_workers")
    if differ or "resume" not in state:
        values = ", ".join(f"{k}={saved.get(k)!r} there, {now[k]!r} now" for k in differ)
        why = " (0 loads the pool into memory, > 0 streams it: they treat undecodable images apart)" \
            if "data_workers" in differ else ""
        raise ConfigError(f"{partial} is a partial run of another config (it differs in {differ}: {values}{why}); "
                          f"train it with its own values to resume it, pass overwrite=true to discard it, "
                          f"or choose another out")
    return out, partial, state


def _same_loading(saved_workers: int, workers: int, streams: bool) -> bool:
    """Whether a partial run trained with `saved_workers` read its pool as this run does: the
    number of workers changes nothing (batches come in order, `_stream`), but a pool in memory
    drops undecodable images where a streamed one replaces them when drawn. Where this run's
    source fixes the mode (a real world always streams, a world folder never) it is the same."""
    decided_by_workers = streams == (workers > 0)
    return not decided_by_workers or (saved_workers > 0) == (workers > 0)




def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Train a CLIP model as `cfg` says; return the run summary (also written to summary.json).

    Resumes a partial run of the same config (`<out>.partial`) from its last checkpoint, exactly:
    an interrupted and resumed run ends with the same metrics as an uninterrupted one (on CPU).
    Under torchrun, trains data-parallel (clipstudy/distributed.py); rank 0 writes the run."""
    cfg.check()
    if cfg.curve_every and not _curve_suite(cfg).is_dir():  # else the run would end without the curve it asked for
        raise ConfigError(f"curve_every={cfg.curve_every} needs a world with an `id` suite (the curve is zero-shot "
                          f"top-1 on it); {cfg.data} has none ({_curve_suite(cfg)} does not exist): train on a world "
                          f"folder that has one, or use curve_every=0")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, world_size = distributed.setup(cfg.device)
    if cfg.batch_size % world_size:
        raise ConfigError(f"batch_size={cfg.batch_size} does not split over {world_size} processes; "
                          f"use a multiple of {world_size}")
    device = distributed.local_device(resolve_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    use_fast_kernels(device)
    if rank == 0:  # before the pool is read: a run that cannot be written is not started
        check_writable(Path(cfg.out).parent, f"train writes the run there ({cfg.out}.partial, then {cfg.out}); "
                                             f"choose another out")
    pairs = load_pairs(cfg.data, image_size=cfg.image_size or None, limit=cfg.data_limit or None,
                       progress=progress and rank == 0,  # a bar over shards' samples, with the skip count
                       stream=cfg.data_workers > 0)
    if cfg.data_subset:
        pairs = _subset(pairs, cfg.data_subset)
    if cfg.batch_size > len(pairs):
        raise DataError(f"batch_size={cfg.batch_size} is larger than the pool ({len(pairs)} pairs at {cfg.data})")
    image_size = cfg.image_size or pairs.image_size
    if not cfg.image_size:  # the data's own size must fit the model too, before anything is written
        dataclasses.replace(cfg, image_size=image_size).check()

    lock, claimed = run_lock(Path(cfg.out)), None
    if rank == 0:
        try:
            claimed = _claim(cfg, lock, isinstance(pairs.images, LazyImages))
        except (ConfigError, DataError, RunFailed) as e:
            distributed.broadcast(f"{type(e).__name__}: {e}", world_size)  # the other ranks stop too
            raise
    resumed_from = distributed.broadcast(claimed[2]["step"] if claimed and claimed[2] else 0, world_size)
    if isinstance(resumed_from, str):  # rank 0 could not start: the same kind of error here
        kind, _, why = resumed_from.partition(": ")
        raise (RunFailed if kind == "RunFailed" else ConfigError)(f"rank 0 stopped: {why}")
    try:
        out, run, resume = claimed or (Path(cfg.out), None, None)
        if rank and resumed_from:  # every rank resumes from the checkpoint rank 0 found
            resume = torch.load(Path(cfg.out + ".partial") / "checkpoint.pt", map_location="cpu", weights_only=True)
        if cfg.pretrained_image and world_size > 1:  # rank 0 pre-trains (or loads) the tower, the others load it
            if rank == 0:
                pretrain.image_tower(cfg, image_size, device, progress)
            distributed.barrier(world_size)
        return _train(cfg, pairs, image_size, device, precision, out, run, resume, rank, world_size,
                      progress and rank == 0)
    except FloatingPointError as e:  # recorded as failed, never read as a result
        if rank == 0:
            (run / FAILED).write_text(json.dumps({"error": str(e)}, indent=2))
        ckpt = Path(cfg.out + ".partial") / "checkpoint.pt"
        kept = (f"the last good checkpoint (step {torch.load(ckpt, weights_only=True)['step']}) is kept in {ckpt}"
                if ckpt.is_file() else "no checkpoint was written before it")
        raise RunFailed(f"{e}; {kept}") from e
    finally:
        if rank == 0:
            lock.release()


def _train(cfg: TrainConfig, pairs, image_size: int, device: torch.device, precision: str, out: Path,
           run: Path | None, resume: dict | None, rank: int, world_size: int, progress: bool) -> dict:
    tokenizer, overrides = text_side(cfg, pairs.captions)
    overrides.update(logit_init(cfg))
    if cfg.patch_dropout:
        overrides["patch_dropout"] = cfg.patch_dropout
    model = make_model(cfg, image_size, overrides, device, progress)
    ssl_head = make_ssl_head(cfg).to(device) if cfg.ssl_scale else None
    trained = torch.nn.ModuleList([model, ssl_head]) if ssl_head is not None else model  # what the optimizer steps
    flops = train_flops(cfg, model, ssl_head, image_size, tokenizer.context_length)
    loss_fn = make_loss(cfg, rank, world_size)
    optimizer = make_optimizer(cfg, trained)
    channels_last = device.type == "cuda" and not models.is_vit(cfg.model)  # tensor cores read convolutions' NHWC
    if channels_last:
        model.visual.to(memory_format=torch.channels_last)
    # `model` keeps the plain weights. On a GPU the compiled forward and backward replay as CUDA
    # graphs: the steps' shapes are fixed, and one launch per graph in place of hundreds of kernel
    # launches (eager or compiled alone, a vit-b-16 step at 64 px left the GPU idle three quarters
    # of the time: benchmarks/gpu_step.py)
    step_model = (torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else None) if cfg.compile
                  else model)
    augment_clip = augment.make(cfg.augment)
    augment_ssl = augment.make("simclr") if ssl_head is not None else None
    # the augmentations' draws, reproducible per seed (and rank), made on the batch's device (a
    # GPU step then waits on no host draw); patch dropout draws from torch's generator of that
    # device, which make_model seeded: other ranks draw another stream
    generator = augment.generator(cfg.seed + 1_000_003 * rank, device)
    if rank:
        torch.manual_seed(cfg.seed + 1_000_003 * rank)
    writer = rank == 0

    start_step, rows, curve_rows, seconds_before = 0, [], [], 0.0
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
        optimizer.load_state_dict(resume["optimizer"])
        state = resume["resume"]
        if ssl_head is not None:
            ssl_head.load_state_dict(state["ssl_head"])
        # each rank's own streams (a rank the checkpoint has no state for keeps its fresh seed)
        for saved, restore in ((state["generator"], generator.set_state), (state["torch_rng"], torch.set_rng_state),
                               (state.get("cuda_rng") if device.type == "cuda" else None,
                                lambda s: torch.cuda.set_rng_state(s, device))):
            if (mine := _rank_state(saved, rank)) is not None:
                restore(mine)
        start_step, rows, curve_rows, seconds_before = resume["step"], state["metrics"], state["curve"], state["seconds"]
        if isinstance(pairs.images, LazyImages):
            pairs.images.bad.update(state.get("decode_failures", []))

    if writer:
        (run / "config.json").write_text(json.dumps(
            {"train": to_dict(cfg), "image_size": image_size, "pool_pairs": len(pairs),
             "skipped": pairs.skipped, "skipped_examples": pairs.skipped_examples,
             "flops": flops, "code": code_version(), "device": str(device), "precision": precision,
             "threads": torch.get_num_threads(), "world_size": world_size, "resumed_from_step": start_step,
             "model_overrides": overrides}, indent=2))
        if isinstance(tokenizer, word_vocab.WordTokenizer):
            tokenizer.save(run)  # beside the checkpoint: the run folder loads in plain open_clip (local-dir:)
        _write_rows(run / "metrics.jsonl", rows)  # what the checkpoint saw: a killed run logged beyond it
        (run / "curve.jsonl").unlink(missing_ok=True)  # ... and so may its learning curve have
        if curve_rows:
            _write_rows(run / "curve.jsonl", curve_rows)
    steps = cfg.samples // cfg.batch_size
    curve = _curve_probe(cfg, run, model, tokenizer, device, precision) if writer else None
    log = (run / "metrics.jsonl").open("a") if writer else None
    skipped = sum(n for why, n in pairs.skipped.items() if "kept" not in why)  # bad samples the loader dropped
    bar = tqdm(total=steps * cfg.batch_size, initial=start_step * cfg.batch_size, unit="sample", unit_scale=True,
               disable=not progress, desc=f"train {cfg.model}" + (f" ({skipped} bad samples skipped)" if skipped else ""))
    trained.train()
    locked_eval_mode(cfg, model)
    start = last_t = time.perf_counter() - seconds_before
    last_samples, loss_value = start_step * cfg.batch_size, float("nan")
    pool_tokens = tokenize_pool(tokenizer, pairs.captions, progress)  # in the run's time, as a step's was
    local = slice(rank * cfg.batch_size // world_size, (rank + 1) * cfg.batch_size // world_size)
    batches = (idx[local] for idx in batch_indices(len(pairs), cfg.batch_size, cfg.seed, start=start_step * cfg.batch_size))
    if isinstance(pairs.images, LazyImages):  # read and decoded as drawn, in cfg.data_workers processes
        data = _stream(pairs.images, batches, pool_tokens, cfg.data_workers, device, local.stop - local.start)
    else:
        data = ((np.asarray(pairs.images[idx]), pool_tokens[torch.from_numpy(idx)]) for idx in batches)
    if device.type == "cuda" and not cfg.data_workers:  # the host would sit idle while kernels run: prepare the next batch then
        data = _one_ahead((torch.from_numpy(x).pin_memory(), t.pin_memory()) for x, t in data)  # pinned: copies overlap
    interrupt = _Interrupt(world_size == 1)  # Ctrl-C stops the loop at a step's end, not mid-step
    try:
        for step in range(start_step + 1, steps + 1):
            samples_seen = (step - 1) * cfg.batch_size
            lr = lr_at(cfg, samples_seen)
            for group in optimizer.param_groups:
                group["lr"] = lr

            crossed = cfg.checkpoint_every and step * cfg.batch_size // cfg.checkpoint_every > samples_seen // cfg.checkpoint_every
            # reading the loss makes the host wait for the step's kernels: on a GPU only where it is
            # logged or a checkpoint follows (a non-finite loss then stops the run up to log_every
            # steps late; no checkpoint is ever written from non-finite weights); on CPU every step
            read = device.type != "cuda" or step % cfg.log_every == 0 or step == steps or crossed or interrupt.requested
            images, text = next(data)
            # uint8 to the device first: a quarter of the bytes to copy, and on a GPU the float
            # conversion, augmentation and any resize run there
            images = torch.as_tensor(images).to(device, non_blocking=True)  # (B, H, W, 3) uint8
            x = to_model_input(augment_clip(images, generator), image_size)  # (B, 3, S, S)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            t = text.to(device, non_blocking=True)  # (B, context_length)
            with autocast(device, precision):
                out_dict = step_model(x, t)  # image_features, text_features, logit_scale (all normalised)
                losses = loss_fn(**out_dict, output_dict=True)
                if ssl_head is not None:  # SLIP: SimCLR between two more views of the same images
                    views = [to_model_input(augment_ssl(images, generator), image_size) for _ in range(2)]
                    z = [ssl_head(step_model.encode_image(v)) for v in views]  # (B, ssl dim) each
                    losses["ssl_loss"] = cfg.ssl_scale * ssl_loss(*z, world_size > 1)
                loss = sum(losses.values())
            if read:
                loss_value = distributed.mean(loss, world_size)
                if not math.isfinite(loss_value):  # stop before the step: the weights and checkpoint stay good
                    raise FloatingPointError(f"loss became {loss_value} at step {step} (lr {lr:.3g}); lower lr")

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            distributed.average_gradients(trained.parameters(), world_size)
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(trained.parameters(), cfg.grad_clip)
            optimizer.step()
            with torch.no_grad():  # CLIP clamps the temperature at 100 to keep training stable
                model.logit_scale.clamp_(0, math.log(100))

            bar.update(cfg.batch_size)
            if writer and (step % cfg.log_every == 0 or step == steps):
                now = time.perf_counter()
                seen = step * cfg.batch_size
                row = {"step": step, "samples": seen, "loss": round(loss_value, 5), "lr": lr,
                       "logit_scale": round(model.logit_scale.exp().item(), 3),
                       "samples_per_s": round((seen - last_samples) / (now - last_t), 2),
                       "seconds": round(now - start, 2), "gflops": round(seen * flops["train_gflops"], 3)}
                if model.logit_bias is not None:
                    row["logit_bias"] = round(model.logit_bias.item(), 3)
                if "ssl_loss" in losses:
                    row["ssl_loss"] = round(losses["ssl_loss"].item(), 5)
                rows.append(row)
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
                last_t, last_samples = now, seen
            if curve and (step * cfg.batch_size // cfg.curve_every > samples_seen // cfg.curve_every or step == steps):
                curve_rows.append(curve(step * cfg.batch_size))
                locked_eval_mode(cfg, model)  # the probe puts the whole model back in train mode
            stop = interrupt.requested and step < steps
            if (crossed or (stop and cfg.checkpoint_every)) and step < steps:
                _check_finite(model, step, lr)  # on every rank: they hold the same weights and stop together
                resume_state = _resume_state(ssl_head, generator, device, rows, curve_rows, time.perf_counter() - start,
                                             world_size)
                if isinstance(pairs.images, LazyImages):
                    resume_state["decode_failures"] = sorted(pairs.images.bad)
                if writer:
                    _save(run, model, cfg, image_size, optimizer, step, overrides, resume_state)
            if stop:  # Ctrl-C: the step is whole, and checkpointed if the run checkpoints at all
                bar.close()
                data.close()
                if writer:
                    log.close()
                saved = (f"its checkpoint is saved in {run}: training the same config again resumes from there"
                         if cfg.checkpoint_every else
                         "no checkpoint was saved (the run has no checkpoint_every), so training the same config "
                         "again starts from its last checkpoint, if any")
                raise Interrupted(f"interrupted (Ctrl-C) at step {step} of {steps}; {saved}")
    finally:
        interrupt.restore()
    bar.close()
    data.close()  # stops any DataLoader workers
    seconds = time.perf_counter() - start
    summary = {"model": cfg.model, "image_size": image_size, "precision": precision, "samples": steps * cfg.batch_size,
               "steps": steps, "final_loss": loss_value, "seconds": round(seconds, 2),
               "samples_per_s": round(steps * cfg.batch_size / seconds, 2),
               "train_gflops_per_sample": flops["train_gflops"],
               "total_pflops": steps * cfg.batch_size * flops["train_gflops"] / 1e6,
               "pretrain_pflops": flops["pretrain_gflops"] / 1e6,
               "pool_pairs": len(pairs), "out": str(out)}
    if isinstance(pairs.images, LazyImages):  # images that failed to decode when drawn (rank 0's), replaced by the next row
        bad = sorted(pairs.images.bad)
        summary["skipped_at_decode"] = {"count": len(bad), "examples": [pairs.images.name(r) for r in bad[:10]]}
    _check_finite(model, steps, lr)
    if writer:
        log.close()
        _save(run, model, cfg, image_size, optimizer, steps, overrides)
        (run / "summary.json").write_text(json.dumps(summary, indent=2))
        if out.exists():  # overwrite=True was checked before training started
            shutil.rmtree(out)
        os.replace(run, out)
    distributed.barrier(world_size)  # no rank returns before the run folder is complete
    return summary


class _Interrupt:
    """Ctrl-C (SIGINT) while the training loop runs, noted rather than raised mid-step, so that
    the loop stops at the end of a step with whole weights and optimizer state that it can
    checkpoint; a second Ctrl-C raises at once. Only in the main thread of a one-process run
    (under torchrun the ranks would note it at different steps) that does not ignore SIGINT."""

    def __init__(self, active: bool):
        self.requested, self.previous = False, None
        if active and threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self.previous = signal.signal(signal.SIGINT, self._note) or signal.default_int_handler

    def _note(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _ignore_interrupt(worker_id: int) -> None:
    """A DataLoader worker leaves Ctrl-C to the main process, which stops at a step's end and then
    shuts the workers down (a worker that died of it would fail the batch it was reading)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_finite(model, step: int, lr: float) -> None:
    """Never checkpoint a non-finite state: weights that overflowed stop the run, the last good
    checkpoint kept."""
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise FloatingPointError(f"weights became non-finite at step {step} (lr {lr:.3g}); lower lr")


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _resume_state(ssl_head, generator: torch.Generator, device: torch.device, rows: list[dict],
                  curve_rows: list[dict], seconds: float, world_size: int) -> dict:
    """What a checkpoint needs beyond the weights and optimizer to resume exactly: the RNG states
    of every rank (augmentation draws; torch's CPU and CUDA generators, for patch dropout), the
    metrics logged so far, the time spent. The data position is the step: the batch order is a
    function of seed and step."""
    def every_rank(state):  # each rank draws its own streams: a list, one per rank
        if world_size == 1:
            return [state]
        states = [None] * world_size
        torch.distributed.all_gather_object(states, state)
        return states

    return {"generator": every_rank(generator.get_state()), "torch_rng": every_rank(torch.get_rng_state()),
            "cuda_rng": every_rank(torch.cuda.get_rng_state(device) if device.type == "cuda" else None),
            "ssl_head": ssl_head.state_dict() if ssl_head is not None else None,
            "metrics": list(rows), "curve": list(curve_rows), "seconds": round(seconds, 3)}


def _rank_state(saved, rank: int):
    """This rank's entry of a checkpoint's per-rank RNG states, or None where it has none (a
    checkpoint of fewer ranks; before per-rank states a single state was rank 0's)."""
    if not isinstance(saved, list):
        return saved if rank == 0 else None
    return saved[rank] if rank < len(saved) else None


CURVE_IMAGES = 1_000  # evenly spaced images of the `id` suite: standard error ~1.5 points at 50%


def _curve_suite(cfg: TrainConfig) -> Path:
    """The suite a learning curve scores: the `id` suite of the world `cfg.data` names."""
    return Path(cfg.data) / "suites" / "id"


def _curve_probe(cfg: TrainConfig, run: Path, model, tokenizer, device, precision: str):
    """A function of samples seen that appends zero-shot top-1 on a fixed subset of the world's
    `id` suite to curve.jsonl (the run's learning curve); None when off (`train` has refused a
    curve on data without that suite). Costs ~0.5 s per call for a tiny model on 2 cores."""
    if not cfg.curve_every:
        return None
    info = load_world_info(cfg.data)
    suite = load_suite(_curve_suite(cfg))
    pick = np.linspace(0, len(suite.labels) - 1, min(CURVE_IMAGES, len(suite.labels))).round().astype(int)
    images, labels = np.asarray(suite.images[pick]), suite.labels[pick]
    prompts = info.get("prompts") or load_templates()

    def record(samples: int) -> dict:
        top1 = zero_shot(model, tokenizer, images, labels, info["classes"]["phrases"], prompts,
                         device=str(device), precision=precision)["top1"]
        row = {"samples": samples, "id_top1": round(top1, 5), "images": len(pick)}
        with (run / "curve.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        return row

    return record


def _save(run: Path, model, cfg: TrainConfig, image_size: int, optimizer, step: int, overrides: dict,
          resume: dict | None = None) -> None:
    """Write the checkpoint (atomically: a kill leaves the previous one whole)."""
    extra = {"step": step, "samples": step * cfg.batch_size, "train_config": to_dict(cfg)}
    if resume is not None or cfg.keep_optimizer:  # a final checkpoint is weights only unless asked
        extra["optimizer"] = optimizer.state_dict()
    if resume is not None:
        extra["resume"] = resume
    models.save_checkpoint(run / "checkpoint.pt", model, cfg.model, image_size, overrides=overrides, extra=extra)
