"""Optimiser and learning-rate schedule, shared by CLIP training and SimCLR pre-training.

    optimizer = make_optimizer(cfg, model)        # AdamW (fused) or Adafactor, decay groups as open_clip
    group["lr"] = lr_at(cfg, samples_seen)        # linear warm-up, then cosine decay to min_lr

`cfg` is a TrainConfig (clipstudy/train.py), or anything with its optimiser fields.
"""

from __future__ import annotations

import math

import torch


def lr_at(cfg, samples_seen: int) -> float:
    """Linear warm-up, then cosine decay to min_lr over the remaining samples."""
    if samples_seen < cfg.warmup:
        return cfg.lr * samples_seen / cfg.warmup
    progress = (samples_seen - cfg.warmup) / max(1, cfg.samples - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's two groups, as open_clip: no decay on 1-d params (norm gains, biases), embeddings
    or the temperature."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or "embedding" in name or "logit_scale" in name or "bn" in name
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The run's optimiser (`cfg.optimizer`) over `model`'s trainable parameters."""
    groups = param_groups(model, cfg.weight_decay)
    # one fused / multi-tensor kernel per step instead of ~10 small ops per parameter tensor
    if cfg.optimizer == "adafactor":
        return torch.optim.Adafactor(groups, lr=cfg.lr, foreach=True)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)
