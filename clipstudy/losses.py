"""The training losses: CLIP's and SigLIP's (open_clip's), with their logit initialisation, and
SLIP's SimCLR term (lightly's projection head and NT-Xent).

    loss_fn = make_loss(cfg)                      # ClipLoss or SigLipLoss, gathering over ranks
    head = make_ssl_head(cfg); ssl_loss(head(a), head(b))   # SLIP, and SimCLR pre-training

`cfg` is a TrainConfig (clipstudy/train.py).
"""

from __future__ import annotations

import math

import torch
from open_clip.loss import ClipLoss, SigLipLoss  # SigLipLoss is not re-exported by open_clip 3.3

from clipstudy import models
from clipstudy.config import ConfigError


def make_loss(cfg, rank: int = 0, world_size: int = 1):
    """open_clip's loss; over several processes it gathers every rank's features with their
    gradients, so each rank's loss is the loss of the global batch."""
    if cfg.loss == "siglip":
        return SigLipLoss(rank=rank, world_size=world_size)
    if cfg.loss == "clip":
        return ClipLoss(gather_with_grad=True, cache_labels=True, rank=rank, world_size=world_size)
    raise ConfigError(f"loss={cfg.loss!r} is not implemented; valid: ['clip', 'siglip']")


SIGLIP_INIT = {"temperature": 0.1, "bias": -10.0}  # SigLIP: t' = log 10, b = -10, both learned


def logit_init(cfg) -> dict:
    """The model overrides that start the loss's logit scale (and SigLIP's bias) where the run asks."""
    temperature = SIGLIP_INIT["temperature"] if cfg.loss == "siglip" and cfg.temperature == 0.07 else cfg.temperature
    out = {"init_logit_scale": math.log(1 / temperature)} if temperature != 0.07 else {}
    if cfg.loss == "siglip":
        out["init_logit_bias"] = cfg.logit_bias  # SIGLIP_INIT["bias"] unless the run starts it elsewhere
    return out


SSL_TEMPERATURE = 0.1  # SLIP's NT-Xent tau


def make_ssl_head(cfg) -> torch.nn.Module:
    """SLIP's projector, scaled to our towers: an MLP with batch norm, embed -> 4 x embed ->
    4 x embed -> embed (SLIP: 768 -> 4096 -> 4096 -> 256), on the image embedding (SLIP puts it on
    the trunk before the CLIP projection; open_clip's towers end in that projection)."""
    from lightly.models.modules import SimCLRProjectionHead  # lazy: lightly takes seconds to import, SLIP-only

    dim = models.model_config(cfg.model)["embed_dim"]
    return SimCLRProjectionHead(input_dim=dim, hidden_dim=4 * dim, output_dim=dim, num_layers=3)


def ssl_loss(z1: torch.Tensor, z2: torch.Tensor, gather: bool = False) -> torch.Tensor:
    """SimCLR's NT-Xent between the two views' projections (lightly's NTXentLoss, tau 0.1);
    `gather`: negatives from every rank (under torchrun)."""
    from lightly.loss import NTXentLoss  # lazy: as above

    return NTXentLoss(temperature=SSL_TEMPERATURE, gather_distributed=gather)(z1.float(), z2.float())
