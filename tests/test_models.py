"""Model registry: every model builds and runs at 32 and 64 px, FLOPs are ordered, errors name
the valid choices, and checkpoints load identically in clipstudy and in plain open_clip.
Cost: ~15 s on 2 CPU cores."""

import json

import open_clip
import pytest
import torch

from clipstudy import models
from clipstudy.config import ConfigError

EMBED = 128


@pytest.fixture(scope="module")
def tokens():
    return models.get_tokenizer()(["a dog face on a white background.", "an apple and a red heart."])


def test_registry_holds_the_study_family():
    vits = {"vit-ti-8", "vit-s-8", "vit-b-16", "vit-b-8", "vit-l-8"}
    a4 = {"rn50", "convnext-t", "swin-t", "mixer-b-16"}
    assert vits | a4 <= set(models.MODELS)
    assert models.DEFAULT_MODEL in models.MODELS


def test_one_text_tower_shared_by_all_image_towers():
    cfgs = [json.loads(p.read_text()) for p in models.MODELS.values()]
    assert all(c["text_cfg"] == cfgs[0]["text_cfg"] for c in cfgs)
    assert all(c["embed_dim"] == EMBED for c in cfgs)
    assert all(c["vision_cfg"]["image_size"] == 64 for c in cfgs)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_builds_and_encodes(name, size, tokens):
    torch.manual_seed(0)
    model = models.create_model(name, size).eval()
    with torch.no_grad():
        image = model.encode_image(torch.randn(2, 3, size, size))
        text = model.encode_text(tokens)
    assert image.shape == (2, EMBED) and text.shape == (2, EMBED)
    assert torch.isfinite(image).all() and torch.isfinite(text).all()


def test_forward_returns_named_features(tokens):
    out = models.create_model("vit-ti-8", 32, init_logit_bias=-10.0)(torch.randn(2, 3, 32, 32), tokens)
    assert set(out) == {"image_features", "text_features", "logit_scale", "logit_bias"}
    assert out["image_features"].shape == (2, EMBED)


def test_tokenizer_uses_the_short_context(tokens):
    assert tokens.shape == (2, 32) and tokens.dtype == torch.long


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        models.create_model("vit-h-14")
    assert all(name in str(err.value) for name in models.MODELS)
    with pytest.raises(ConfigError, match="vit-s-8"):
        models.get_tokenizer("nope")


def test_overrides_pass_into_the_config_and_unknown_ones_fail():
    model = models.create_model("vit-ti-8", 32, patch_dropout=0.5, init_logit_bias=-10.0)
    assert model.visual.patch_dropout.prob == 0.5
    assert model.logit_bias is not None and model.logit_bias.item() == -10.0
    with pytest.raises(ConfigError, match="patch_dropout"):
        models.create_model("vit-ti-8", 32, patch_dropuot=0.5)
    with pytest.raises(ConfigError, match="ViT towers only"):
        models.create_model("rn50", 32, patch_dropout=0.5)


def test_image_size_must_fit_the_tower():
    with pytest.raises(ConfigError, match="multiple of 16"):
        models.create_model("vit-b-16", 40)
    assert models.model_config("swin-t", 32)["vision_cfg"]["timm_model_name"] == "clipstudy_swin_t_32"


def test_flops_positive_and_ordered_within_the_vit_family():
    for size in (32, 64):
        f = {n: models.flops_per_sample(models.create_model(n, size), size)
             for n in ("vit-ti-8", "vit-s-8", "vit-b-16", "vit-b-8", "vit-l-8")}
        assert all(v > 0 for d in f.values() for v in d.values())
        assert all(d["train_gflops"] == pytest.approx(3 * d["forward_gflops"]) for d in f.values())
        assert len({d["text_gflops"] for d in f.values()}) == 1  # one text tower
        img = {n: d["image_gflops"] for n, d in f.items()}
        assert img["vit-ti-8"] < img["vit-s-8"] < img["vit-b-8"] < img["vit-l-8"]
        assert img["vit-b-16"] < img["vit-b-8"]


def test_flops_match_a_hand_count():
    # vit-ti-8 at 32 px: 16 patches + cls = 17 tokens; per layer qkv+proj+mlp = 12 w^2 MACs per token
    # plus attention 2 * 17 * w MACs per token; patch embedding 16 * (3*8*8) * w; projection w * 128.
    w, t, layers = 128, 17, 4
    macs = layers * (t * 12 * w * w + 2 * t * t * w) + 16 * 3 * 64 * w + w * EMBED
    model = models.create_model("vit-ti-8", 32)
    f = models.flops_per_sample(model, 32)
    assert f["image_gflops"] == pytest.approx(2 * macs / 1e9, rel=1e-6)
    # a locked tower (no parameter needs a gradient) counts the same FLOPs, under no_grad too, and stays locked
    model.requires_grad_(False)
    with torch.no_grad():
        assert models.flops_per_sample(model, 32) == f
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", ["vit-ti-8", "swin-t"])
def test_checkpoint_round_trip_through_plain_open_clip(name, tmp_path, tokens):
    torch.manual_seed(0)
    model = models.create_model(name, 32).eval()
    ckpt = tmp_path / "run" / "model.pth"
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 3, 32, 32), tokens)["image_features"].sum().backward()
    opt.step()
    extra = {"step": 7, "loss": 1.5, "optimizer": opt.state_dict()}
    json_path = models.save_checkpoint(ckpt, model, name, 32, extra=extra)
    assert json_path.name == f"clipstudy-{name}-32px.json"

    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        want = model.encode_image(images), model.encode_text(tokens)

    loaded, info = models.load_checkpoint(ckpt)
    assert info["name"] == name and info["image_size"] == 32
    assert info["extra"]["step"] == 7 and info["extra"]["loss"] == 1.5
    opt.load_state_dict(info["extra"]["optimizer"])  # optimizer state survives the round trip

    open_clip.add_model_config(json_path)
    plain = open_clip.create_model(info["open_clip_name"], pretrained=str(ckpt)).eval()
    local, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{ckpt.parent}")
    normalize = [t for t in preprocess.transforms if type(t).__name__ == "Normalize"][0]
    assert list(normalize.mean) == [0.5] * 3 and list(normalize.std) == [0.5] * 3  # [-1, 1] pixels
    for other in (loaded, plain, local.eval()):
        with torch.no_grad():
            assert torch.equal(other.encode_image(images), want[0])
            assert torch.equal(other.encode_text(tokens), want[1])


def test_checkpoint_name_carries_overrides_and_save_checks_the_model(tmp_path):
    model = models.create_model("vit-ti-8", 32, patch_dropout=0.5)
    path = models.save_checkpoint(tmp_path / "m.pt", model, "vit-ti-8", 32, overrides={"patch_dropout": 0.5})
    assert path.stem.startswith("clipstudy-vit-ti-8-32px-") and json.loads(path.read_text())["vision_cfg"][
        "patch_dropout"] == 0.5
    with pytest.raises(ConfigError, match="does not match"):
        models.save_checkpoint(tmp_path / "x.pt", model, "vit-s-8", 32)
    with pytest.raises(ConfigError, match="state_dict"):
        models.save_checkpoint(tmp_path / "x.pt", model, "vit-ti-8", 32, extra={"state_dict": {}})
    with pytest.raises(ConfigError, match="plain data"):
        models.save_checkpoint(tmp_path / "x.pt", model, "vit-ti-8", 32, extra={"when": object()})


def test_flip_draws_its_patches_on_the_tokens_device_and_keeps_open_clips_choice(monkeypatch):
    """open_clip's PatchDropout draws on the CPU and indexes a GPU tensor with CPU indices (a copy
    and a wait every step); ours draws and indexes where the tokens are, and on CPU makes the same
    draw from the global generator (the same patches, stored runs and resumes unchanged)."""
    model = models.create_model("vit-ti-8", image_size=32, patch_dropout=0.5).train()
    assert isinstance(model.visual.patch_dropout, models.PatchDropout)
    x = torch.randn(4, 17, 8)
    torch.manual_seed(0)
    theirs, their_rng = open_clip.transformer.PatchDropout(0.5)(x), torch.get_rng_state()
    torch.manual_seed(0)
    assert torch.equal(model.visual.patch_dropout(x), theirs)
    assert torch.equal(torch.get_rng_state(), their_rng)
    devices = []
    for fn in ("randn", "arange"):
        def spy(*args, _real=getattr(torch, fn), **kwargs):
            devices.append(kwargs.get("device"))
            return _real(*args, **kwargs)
        monkeypatch.setattr(torch, fn, spy)
    tokens = torch.empty(4, 17, 8, device="meta")  # a device that is not the CPU
    assert model.visual.patch_dropout(tokens).shape == (4, 9, 8)
    assert devices == [tokens.device] * 2
