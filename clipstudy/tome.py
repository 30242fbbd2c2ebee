"""Token merging (ToMe; Bolya et al. 2023, "Token Merging: Your ViT but Faster") for open_clip ViTs.

In every block, between attention and MLP, the tokens are split alternately into A (even
positions) and B (odd positions); each A token picks the B token whose attention key (averaged
over heads) is most cosine-similar, and the r best-scoring pairs are merged into their B token
by a size-weighted average. The cls token (position 0) is never merged. Each token's size (how
many patches it stands for, 1 at the start) is tracked, and proportional attention adds
log(size) to the attention logits on the key side, so a size-s token counts as s copies of
itself. After a merge the tokens are [unmerged A in order (cls first), B], so 'tok' pooling
still reads the cls token at position 0.

Usage:
    model = tome.apply(models.create_model("vit-s-8"), r=4)        # or r=[8, 6, 4, 2, 1, 0]
    rs, tokens = tome.schedule(4, layers=6, tokens=17)              # what each layer merges
    tome.apply(model, tome.decreasing(4, 6))                        # ToMe's "r decreasing"

`apply` patches in place (train and eval forwards both merge; gradients flow through the merged
values, the matching itself is discrete) and returns the model; `apply(model, 0)` computes what
the plain model does. An r larger than a layer can merge is clamped to half its non-cls tokens,
(tokens - 1) // 2. State dict keys do not change, so checkpoints load in plain open_clip. Only
'tok' pooling is supported; `forward_intermediates` runs unmerged.

Cost: per block, attention and MLP scale with the tokens kept; the matching is one (N/2 x N/2)
similarity, negligible. vit-s-8 at 32 px (17 tokens): image-tower GFLOPs 0.093 / 0.059 / 0.036
and encode_image of 64 images on one CPU thread ~62 / 46 / 29 ms for r = 0 / 2 / 4.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, Transformer, VisionTransformer
from torch.utils.checkpoint import checkpoint

from clipstudy import models
from clipstudy.config import ConfigError

__all__ = ["apply", "schedule", "decreasing", "bipartite_soft_matching", "add_at", "attention", "merge_block"]


def bipartite_soft_matching(metric: torch.Tensor, r: int, protect_cls: bool = True):
    """The merge function for one layer: `merge(x, size) -> (x, size)` with x (B, N, C) and
    size (B, N), returning N - r tokens. `metric` (B, N, C') scores A -> B by cosine similarity."""
    r = min(r, (metric.shape[1] - protect_cls) // 2)
    if r <= 0:
        return lambda x, size: (x, size)
    with torch.no_grad():
        metric = metric / metric.norm(dim=-1, keepdim=True)
        scores = metric[:, ::2] @ metric[:, 1::2].transpose(1, 2)  # (B, Na, Nb)
        if protect_cls:
            scores[:, 0, :] = -float("inf")
        best, partner = scores.max(dim=-1)  # each A token's most similar B token
        order = best.argsort(dim=-1, descending=True, stable=True)
        src, kept = order[:, :r], order[:, r:].sort(dim=-1).values  # merged A / unmerged A, in order
        dst = partner.gather(1, src)

    def merge(x: torch.Tensor, size: torch.Tensor):
        def pick(t, idx):
            return t.gather(1, idx[..., None].expand(-1, -1, t.shape[-1]))

        dtype = x.dtype
        xs = torch.cat([x * size[..., None], size[..., None]], dim=-1).to(torch.promote_types(dtype, size.dtype))
        a, b = xs[:, ::2], xs[:, 1::2]
        out = torch.cat([pick(a, kept), add_at(b, dst, pick(a, src))], dim=1)
        # sizes count patches: constants for autograd (a size carrying a gradient made the
        # attention mask need one, which sends SDPA to its slow paths)
        size = out[..., -1].detach()
        return (out[..., :-1] / size[..., None]).to(dtype), size

    return merge


def add_at(b: torch.Tensor, dst: torch.Tensor, values: torch.Tensor, one_hot: bool | None = None) -> torch.Tensor:
    """b (B, Nb, C) with values (B, r, C) added at rows dst (B, r). scatter_add on CPU; on CUDA
    (`one_hot` None: as the tensors' device) a one-hot product, as scatter_add adds there with
    atomics in a varying order, so two runs of one seed would differ in rounding (it has a
    deterministic kernel only under the global torch.use_deterministic_algorithms). The product
    is in float64: in float32 the trainer's TF32 setting would round the values to 10 mantissa
    bits (~5e-4 relative); float64 adds them at more than float32's precision and rounds once
    (~2.5 GFLOP a layer at batch 1024, r=16, width 768: tens of microseconds on an H200)."""
    if not (b.is_cuda if one_hot is None else one_hot):
        return b.scatter_add(1, dst[..., None].expand(-1, -1, b.shape[-1]), values)
    with torch.autocast(b.device.type, enabled=False):
        where = F.one_hot(dst, b.shape[1]).to(torch.float64).transpose(1, 2)  # (B, Nb, r)
        return (b.double() + where @ values.double()).to(b.dtype)


def attention(attn: torch.nn.MultiheadAttention, x: torch.Tensor, size: torch.Tensor):
    """Self-attention of `attn`'s weights over x (B, N, C) with proportional attention (log(size)
    added to the logits of each key); returns (output, keys averaged over heads)."""
    B, N, C = x.shape
    heads = attn.num_heads
    q, k, v = (t.view(B, N, heads, C // heads).transpose(1, 2)
               for t in F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1))
    bias = size.log().to(q.dtype)[:, None, None, :]  # (B, 1, 1, N): broadcast over heads, queries
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=attn.dropout if attn.training else 0.0)
    return attn.out_proj(out.transpose(1, 2).reshape(B, N, C)), k.mean(dim=1)


def merge_block(block: ResidualAttentionBlock, x: torch.Tensor, size: torch.Tensor, r: int):
    """One open_clip block with merging between attention and MLP; returns (x, size)."""
    out, keys = attention(block.attn, block.ln_1(x), size)
    x = x + block.ls_1(out)
    x, size = bipartite_soft_matching(keys, r)(x, size)
    return x + block.ls_2(block.mlp(block.ln_2(x))), size


class ToMeTransformer(Transformer):
    """open_clip's Transformer whose forward carries token sizes and merges `tome_r[i]` in block i."""

    tome_r: list[int]

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None):
        if attn_mask is not None:
            raise ConfigError("token merging takes no attention mask (image towers use none)")
        size = x.new_ones(x.shape[:2], dtype=torch.float32)
        for block, r in zip(self.resblocks, self.tome_r):
            if self.grad_checkpointing and torch.is_grad_enabled():
                x, size = checkpoint(merge_block, block, x, size, r, use_reentrant=False)
            else:
                x, size = merge_block(block, x, size, r)
        return x


def _check_r(r, layers: int) -> list[int]:
    def valid(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0

    if isinstance(r, (list, tuple)):
        if len(r) != layers or not all(valid(v) for v in r):
            raise ConfigError(f"r={list(r)!r} is not valid: give {layers} integers >= 0, one per layer")
        return [int(v) for v in r]
    if not valid(r):
        raise ConfigError(f"r={r!r} is not valid: give an integer >= 0 or a list of {layers} of them")
    return [int(r)] * layers


def schedule(r, layers: int, tokens: int) -> tuple[list[int], list[int]]:
    """(r merged in each layer after clamping, token count after each layer) for `tokens` input
    tokens, the cls token included (17 for a /8 ViT at 32 px)."""
    applied, counts = [], []
    for v in _check_r(r, layers):
        applied.append(min(v, (tokens - 1) // 2))
        tokens -= applied[-1]
        counts.append(tokens)
    return applied, counts


def decreasing(r: int, layers: int) -> list[int]:
    """ToMe's "r decreasing" schedule: from 2r in the first layer linearly down to 0 in the last,
    merging about r * layers tokens in all, as a constant r would."""
    _check_r(r, layers)
    return [int(2 * r * (1 - i / max(layers - 1, 1)) + 0.5) for i in range(layers)]


def run_schedule(cfg) -> list[int]:
    """Tokens merged in each block of a run's ViT (a TrainConfig's `model`, `tome_r` and
    `tome_schedule`), before clamping to what a block can merge."""
    layers = models.model_config(cfg.model)["vision_cfg"]["layers"]
    return decreasing(cfg.tome_r, layers) if cfg.tome_schedule == "decreasing" else [cfg.tome_r] * layers


def apply(model: torch.nn.Module, r) -> torch.nn.Module:
    """Make `model` (an open_clip CLIP or its `.visual`) merge tokens with `r` per layer (an int or
    one int per block; clamped per layer to (tokens - 1) // 2). In place; returns `model`."""
    visual = getattr(model, "visual", model)
    if not isinstance(visual, VisionTransformer):
        raise ConfigError(f"token merging needs a ViT image tower; this model's is a {type(visual).__name__}")
    transformer = visual.transformer
    blocks = transformer.resblocks
    if (visual.attn_pool is not None or visual.pool_type != "tok" or not transformer.batch_first
            or any(type(b) is not ResidualAttentionBlock or not b.attn._qkv_same_embed_dim
                   or b.attn.bias_k is not None or b.attn.add_zero_attn for b in blocks)):
        raise ConfigError("token merging supports open_clip ViTs with 'tok' pooling and default blocks only "
                          f"(this one: pool_type={visual.pool_type!r}, attentional pool "
                          f"{visual.attn_pool is not None}, block {type(blocks[0]).__name__})")
    rs = _check_r(r, len(blocks))
    transformer.__class__ = ToMeTransformer
    transformer.tome_r = rs
    return model
