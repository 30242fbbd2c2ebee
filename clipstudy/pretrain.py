"""Image towers pre-trained without text, the analogue of paper B's DINO tower (B1).

    state = pretrain.image_tower(cfg, image_size, device)  # TrainConfig with pretrained_image="simclr"
    model.visual.load_state_dict(state)                      # what train.make_model does

SimCLR on every image of the run's data (the captions unused; the whole pool even where the run
trains on a `data_limit` subset, as DINO was pre-trained on other images than paper B's pairs): two views of each image from
the "simclr" augmentation (SLIP's SSL views), lightly's projection head and NT-Xent loss (tau
0.1, as SLIP), AdamW at the run's lr, batch size, warm-up and weight decay with a cosine decay
over `pretrain_samples` images. The tower is trained once per (model, image size, data, budget,
recipe, seed) and cached in the store beside the runs, `<runs_dir>/pretrained/`, with the loss
curve it left (`.jsonl`), so every run of a grid that asks for it loads the same weights.

Cost: two image-tower passes per image, about one CLIP step's worth: ~50 s for vit-ti-8 at
32 px and 65,536 images on 2 CPU cores (bf16).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import filelock
import torch
from tqdm.auto import tqdm

from clipstudy import augment, models
from clipstudy.compute import autocast, resolve_precision
from clipstudy.data import batch_indices, data_identity, load_pairs, to_model_input
from clipstudy.losses import make_ssl_head, ssl_loss
from clipstudy.optim import lr_at, param_groups

PRETRAIN_VERSION = 1  # bump when the recipe below changes what a cached tower holds
RECIPE = ("model", "pretrain_samples", "batch_size", "lr", "warmup", "weight_decay", "beta1",
          "beta2", "eps", "grad_clip", "precision", "seed")


def cache_path(cfg, image_size: int) -> Path:
    """Where the tower for `cfg` is cached: keyed by the pool's content and every recipe field."""
    fields = {k: getattr(cfg, k) for k in RECIPE}
    fields.update(image_size=image_size, data=data_identity(cfg.data), version=PRETRAIN_VERSION)
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cfg.out).parent / "pretrained" / f"{cfg.model}-{cfg.pretrained_image}-{key}.pt"


def image_tower(cfg, image_size: int, device: torch.device, progress: bool = False) -> dict[str, torch.Tensor]:
    """The state dict of `cfg.model`'s image tower after SimCLR on `cfg.data` (trained now, or
    loaded from the cache)."""
    path = cache_path(cfg, image_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(f"{path}.lock"):  # two runs needing one tower: one trains it, the other waits
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
        return _simclr(cfg, image_size, device, path, progress)


def _simclr(cfg, image_size: int, device: torch.device, path: Path, progress: bool) -> dict[str, torch.Tensor]:
    pairs = load_pairs(cfg.data, image_size=cfg.image_size or None)  # every image of the pool, whatever the run's data_limit
    precision = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    model = models.create_model(cfg.model, image_size=image_size)
    visual, head = model.visual.to(device), make_ssl_head(cfg).to(device)
    trained = torch.nn.ModuleList([visual, head]).train()
    optimizer = torch.optim.AdamW(param_groups(trained, cfg.weight_decay), lr=cfg.lr,
                                  betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    schedule = dataclasses.replace(cfg, samples=cfg.pretrain_samples)  # the cosine runs over the pre-training
    views, generator = augment.make("simclr"), augment.generator(cfg.seed, device)  # draws on the batch's device
    steps = cfg.pretrain_samples // cfg.batch_size
    batches = batch_indices(len(pairs), cfg.batch_size, cfg.seed)
    curve = []
    for step in tqdm(range(1, steps + 1), desc=f"SimCLR {cfg.model}", disable=not progress):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(schedule, (step - 1) * cfg.batch_size)
        images = torch.as_tensor(pairs.images[next(batches)]).to(device)  # (B, H, W, 3) uint8
        with autocast(device, precision):
            z = [head(visual(to_model_input(views(images, generator), image_size))) for _ in range(2)]
            loss = ssl_loss(*z)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(trained.parameters(), cfg.grad_clip)
        optimizer.step()
        logged = step % cfg.log_every == 0 or step == steps
        if (device.type != "cuda" or logged) and not torch.isfinite(loss):  # a GPU waits only on logged steps
            raise FloatingPointError(f"SimCLR pre-training loss became {loss.item()} at step {step}; lower lr")
        if logged:
            curve.append({"step": step, "samples": step * cfg.batch_size, "loss": round(loss.item(), 5)})
    state = {k: v.detach().cpu() for k, v in visual.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    path.with_suffix(".jsonl").write_text("".join(json.dumps(row) + "\n" for row in curve))
    os.replace(tmp, path)  # a cached tower is always whole
    return state
