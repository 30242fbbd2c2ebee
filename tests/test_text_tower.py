"""Pre-trained text towers (models.TEXT_TOWERS): the MiniLM override builds a CLIP whose text tower
holds the package's pre-trained weights, tokenizes with its own WordPiece, counts its FLOPs,
round-trips through checkpoints without a local path in them, and `tower_parameters` splits
every model's parameters between the towers. Cost: ~10 s on 2 CPU cores."""

import json

import open_clip
import pytest
import torch
import transformers
from open_clip.hf_model import HFTextEncoder
from open_clip.tokenizer import HFTokenizer

from clipstudy import models
from clipstudy.config import ConfigError

EMBED, CONTEXT = 128, 16
CAPTIONS = ["a dog face on a white background.", "an apple and a red heart.", "two cats",
            "a very long caption that goes on and on about a small yellow smiling face with big eyes"]


def minilm(**overrides):
    return models.create_model("vit-ti-8", 32, **models.text_tower_overrides("minilm", CONTEXT), **overrides)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return minilm().eval()


@pytest.fixture(scope="module")
def tokens():
    return models.text_tower_tokenizer("minilm", CONTEXT)(CAPTIONS)


def test_minilm_override_builds_a_clip_with_the_hf_tower(model, tokens):
    assert isinstance(model, open_clip.CustomTextCLIP) and isinstance(model.text, HFTextEncoder)
    assert model.context_length == CONTEXT  # not the HF model's 512 positions
    with torch.no_grad():
        text = model.encode_text(tokens)
        out = model(torch.randn(4, 3, 32, 32), tokens)
    assert text.shape == (4, EMBED) and torch.isfinite(text).all()
    assert set(out) == {"image_features", "text_features", "logit_scale"}
    assert out["text_features"].shape == (4, EMBED)


def test_tower_holds_the_packages_pretrained_weights(model, tokens):
    reference = transformers.AutoModel.from_pretrained(str(models.text_tower_folder("minilm"))).eval()
    ours = model.text.transformer
    for name in ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight"):
        assert torch.equal(ours.get_parameter(name), reference.get_parameter(name))
    # the tower pools as sentence-transformers does: the mean over non-padding tokens
    mask = (tokens != 0).long()
    with torch.no_grad():
        hidden = reference(input_ids=tokens, attention_mask=mask).last_hidden_state
        want = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        got = model.text.pooler(ours(input_ids=tokens, attention_mask=mask), mask)
    torch.testing.assert_close(got, want)


def test_tokenizer_is_the_towers_own(tokens):
    tok = models.text_tower_tokenizer("minilm", CONTEXT)
    assert isinstance(tok, HFTokenizer) and tok.context_length == CONTEXT
    assert tokens.shape == (4, CONTEXT) and tokens.dtype == torch.long
    assert (tokens[:, 0] == 101).all() and ((tokens == 102).sum(1) == 1).all()  # [CLS] ... [SEP]
    assert tokens[2, 4:].eq(0).all()  # padded with [PAD] = 0, the tower's attention mask
    decoded = [tok.tokenizer.decode(t, skip_special_tokens=True) for t in tokens[:3]]
    assert decoded == [c.lower() for c in CAPTIONS[:3]]
    assert tokens[3, -1] == 102  # a long caption is cut, its [SEP] kept


def test_config_names_the_hub_id_never_a_local_path():
    cfg = models.model_config("vit-ti-8", 32, text_tower="minilm", context_length=CONTEXT)
    text = cfg["text_cfg"]
    assert text["hf_model_name"] == text["hf_tokenizer_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert text["hf_pooler_type"] == "mean_pooler" and text["hf_proj_type"] == "mlp"
    assert text["context_length"] == CONTEXT
    assert str(models.text_tower_folder("minilm")) not in json.dumps(cfg)
    assert models.model_config("vit-ti-8", 32, text_tower=None) == models.model_config("vit-ti-8", 32)


def test_bad_text_tower_settings_fail():
    with pytest.raises(ConfigError, match="minilm"):
        models.create_model("vit-ti-8", 32, text_tower="xlm-r")
    with pytest.raises(ConfigError, match="minilm"):
        models.text_tower_tokenizer("xlm-r", CONTEXT)
    with pytest.raises(ConfigError, match="minilm"):
        models.text_tower_overrides("xlm-r", CONTEXT)
    with pytest.raises(ConfigError, match="vocab_size"):
        models.model_config("vit-ti-8", 32, text_tower="minilm", vocab_size=100)
    with pytest.raises(ConfigError, match="512"):
        models.text_tower_overrides("minilm", 1000)


def test_flops_count_the_minilm_tower():
    f = models.flops_per_sample(minilm(), 32)  # default context: the model's 16 tokens
    native = models.flops_per_sample(models.create_model("vit-ti-8", 32, context_length=CONTEXT), 32)
    # 6 BERT layers x 384 wide, FFN 1536, 16 tokens; attention 2 * 16 * 16 * 384; MLP head 384-256-128
    macs = 6 * (CONTEXT * (4 * 384 ** 2 + 2 * 384 * 1536) + 2 * CONTEXT ** 2 * 384) + 384 * 256 + 256 * EMBED
    assert f["text_gflops"] == pytest.approx(2 * macs / 1e9, rel=1e-6)
    assert f["image_gflops"] == native["image_gflops"]
    assert f["train_gflops"] == pytest.approx(3 * f["forward_gflops"])


def test_checkpoint_round_trip_with_the_towers_tokenizer(tmp_path, tokens, monkeypatch):
    torch.manual_seed(0)
    model = minilm().eval()
    with torch.no_grad():  # weights that differ from the package's: the state dict must carry them
        model.text.transformer.embeddings.word_embeddings.weight.add_(0.01)
        want = model.encode_text(tokens)
    overrides = models.text_tower_overrides("minilm", CONTEXT)
    ckpt = tmp_path / "run" / "model.pth"
    json_path = models.save_checkpoint(ckpt, model, "vit-ti-8", 32, extra={"step": 3}, overrides=overrides)
    folder = str(models.text_tower_folder("minilm"))
    for path in ckpt.parent.glob("*.json"):
        assert folder not in path.read_text()

    def no_download(*args, **kwargs):
        raise AssertionError("reloading a checkpoint must not read the pre-trained weights")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_download)
    loaded, info = models.load_checkpoint(ckpt)
    assert info["overrides"] == {"text_tower": "minilm", "context_length": CONTEXT}
    assert folder not in json.dumps(info["model_cfg"])
    tok = models.checkpoint_tokenizer(ckpt.parent, info)
    assert isinstance(tok, HFTokenizer) and torch.equal(tok(CAPTIONS), tokens)
    with torch.no_grad():
        assert torch.equal(loaded.encode_text(tok(CAPTIONS)), want)

    # plain open_clip loads it too once the Hub id points at the package folder (offline)
    cfg = json.loads(json_path.read_text())
    cfg["text_cfg"]["hf_model_name"] = cfg["text_cfg"]["hf_tokenizer_name"] = folder
    local = tmp_path / "clipstudy-test-minilm.json"
    local.write_text(json.dumps(cfg))
    open_clip.add_model_config(local)
    plain = open_clip.create_model(local.stem, pretrained=str(ckpt)).eval()
    with torch.no_grad():
        assert torch.equal(plain.encode_text(tokens), want)


def _names(pairs):
    return {name for name, _ in pairs}


@pytest.mark.parametrize("name,tower", [("vit-ti-8", None), ("vit-ti-8", "minilm"), ("rn50", None),
                                        ("convnext-t", None)])
def test_tower_parameters_partition_the_model(name, tower):
    model = models.create_model(name, 32, init_logit_bias=-10.0, **({"text_tower": tower} if tower else {}))
    everything = {n for n, _ in model.named_parameters()}
    image, text = _names(models.tower_parameters(model, "image")), _names(models.tower_parameters(model, "text"))
    assert image and text and not image & text
    assert image | text | {"logit_scale", "logit_bias"} == everything
    assert all(n.startswith("visual.") for n in image)
    assert all(n.startswith("text.") for n in text) if tower else not any(n.startswith("text.") for n in text)
    # without the projection heads: exactly the heads leave
    heads = (image - _names(models.tower_parameters(model, "image", include_projection=False)),
             text - _names(models.tower_parameters(model, "text", include_projection=False)))
    want_image = {"vit-ti-8": {"visual.proj"}, "rn50": {"visual.attnpool.c_proj.weight", "visual.attnpool.c_proj.bias"},
                  "convnext-t": {"visual.head.proj.weight"}}[name]
    want_text = {"text.proj.0.weight", "text.proj.2.weight"} if tower else {"text_projection"}
    assert heads == (want_image, want_text)
    with pytest.raises(ConfigError, match="image"):
        models.tower_parameters(model, "audio")


def test_locked_minilm_body_gets_no_gradient(tokens):
    model = minilm()
    for _, p in models.tower_parameters(model, "text", include_projection=False):
        p.requires_grad_(False)
    out = model(torch.randn(4, 3, 32, 32), tokens)
    open_clip.ClipLoss()(**out, output_dict=True)["contrastive_loss"].backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == _names(models.tower_parameters(model, "image")) | {"logit_scale", "text.proj.0.weight",
                                                                          "text.proj.2.weight"}
