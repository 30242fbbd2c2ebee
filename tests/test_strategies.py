"""Training strategies as TrainConfig fields (FLIP, SLIP, augmentation, token merging, pre-trained
and locked towers): each one's defining behaviour, through the one trainer. ~40 s on 2 cores.
(SigLIP's loss: tests/test_end_to_end.py; ToMe's merging: test_tome.py; augmentations:
test_augment.py; the MiniLM tower: test_text_tower.py.)"""

import dataclasses
from pathlib import Path

import pytest
import torch

from clipstudy import models, store, study
from clipstudy.config import ConfigError
from clipstudy.store import load_run, train_or_load
from clipstudy.train import TrainConfig, make_model

TINY = dict(model="vit-ti-8", samples=256, batch_size=64, warmup=0, log_every=1)


@pytest.fixture(scope="module")
def world(tiny_world):
    return tiny_world  # tests/conftest.py: built once per session, read-only


def test_patch_dropout_keeps_the_requested_tokens_in_training_only():
    model = models.create_model("vit-ti-8", image_size=32, patch_dropout=0.5)  # 16 patches + cls
    seen = []
    model.visual.transformer.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[1]))
    x = torch.zeros(2, 3, 32, 32)
    model.train()
    model.encode_image(x)
    model.eval()
    model.encode_image(x)
    assert seen == [1 + 8, 1 + 16]  # half the patches kept in training, every patch at evaluation
    train = models.flops_per_sample(model, 32, training=True)["image_gflops"]
    full = models.flops_per_sample(model, 32)["image_gflops"]
    assert 0.4 < train / full < 0.6


def test_flip_slip_and_tome_runs_count_their_compute(world, tmp_path):
    gflops = {}
    for name, fields in {"clip": {}, "flip": {"patch_dropout": 0.5}, "slip": {"ssl_scale": 1.0, "augment": "crop_flip"},
                         "tome": {"tome_r": 2}}.items():
        run = train_or_load(TrainConfig(data=str(world), **TINY, **fields), runs_dir=tmp_path, progress=False, suites=["id"])
        gflops[name] = run["summary"]["train_gflops_per_sample"]
        if name == "slip":  # the SSL term is in the loss and logged
            assert all(row["ssl_loss"] > 0 and row["loss"] > row["ssl_loss"] for row in run["metrics"])
        if name == "tome":  # merging stays on at evaluation: the reloaded model merges
            model, _, _ = load_run(run["dir"])
            assert model.visual.transformer.tome_r == [2, 2, 2, 2]
    assert gflops["flip"] < gflops["tome"] < gflops["clip"] < gflops["slip"]
    assert 1.8 < gflops["slip"] / gflops["clip"] < 3  # two more image views and the projector


def test_a_locked_tower_gets_no_gradient_and_keeps_its_weights(world, tmp_path):
    cfg = TrainConfig(data=str(world), out=str(tmp_path / "run"), **TINY, pretrained_text="minilm", lock_text=True)
    from clipstudy.train import text_side

    _, overrides = text_side(cfg, [])
    model = make_model(cfg, 32, overrides, torch.device("cpu"))
    body = dict(models.tower_parameters(model, "text", include_projection=False))
    before = {k: v.detach().clone() for k, v in body.items()}
    tokens = torch.randint(1, 100, (4, 16))
    out = model(torch.zeros(4, 3, 32, 32), tokens)
    (out["image_features"] @ out["text_features"].T).sum().backward()
    assert all(not p.requires_grad and p.grad is None for p in body.values())
    assert all(p.grad is not None for k, p in models.tower_parameters(model, "text") if k not in body)
    run = train_or_load(cfg, runs_dir=tmp_path, progress=False, suites=["id"])
    trained, _, _ = load_run(run["dir"])
    after = dict(trained.named_parameters())
    assert all(torch.equal(after[k], v) for k, v in before.items())  # the body as the package ships it
    head = [k for k, _ in models.tower_parameters(trained, "text") if k not in before]
    assert head and any(not torch.equal(after[k], dict(model.named_parameters())[k]) for k in head)  # its projection trained
    flops = run["config"]["flops"]  # a locked tower runs forward only: 1x its forward, not 3x
    assert flops["train_gflops"] == pytest.approx(3 * flops["image_gflops"] + flops["text_gflops"])
    assert study.strategy(run["config"]["train"]) == "CLIP+text:minilm(locked)"


def test_a_simclr_tower_is_pretrained_once_and_loaded(world, tmp_path):
    cfg = TrainConfig(data=str(world), out=str(tmp_path / "run"), **TINY, pretrained_image="simclr", pretrain_samples=128,
                      lock_image=True)
    from clipstudy import pretrain

    path = pretrain.cache_path(cfg, 32)
    run = train_or_load(cfg, runs_dir=tmp_path, progress=False, suites=["id"])
    assert path.is_file() and path.with_suffix(".jsonl").is_file()
    cached = torch.load(path, weights_only=True)
    trained, _, _ = load_run(run["dir"])
    body = dict(models.tower_parameters(trained, "image", include_projection=False))
    assert all(torch.equal(cached[k.removeprefix("visual.")], p) for k, p in body.items())  # locked: still the SimCLR tower
    stamp = path.stat().st_mtime_ns
    tuned = train_or_load(dataclasses.replace(cfg, lock_image=False), runs_dir=tmp_path, progress=False, suites=["id"])
    assert path.stat().st_mtime_ns == stamp  # another run of the same pre-training recipe loads the cached tower
    assert tuned["dir"] != run["dir"]
    assert pretrain.cache_path(dataclasses.replace(cfg, seed=1), 32) != path  # each seed its own tower
    # the compute the run needed counts the pre-training: 2 trained views of each image, tower and head
    s = run["summary"]
    full = models.flops_per_sample(trained, s["image_size"])["image_gflops"]
    assert s["pretrain_pflops"] > 3 * 2 * full * 128 / 1e6  # ... plus the head's matmuls
    assert study.tidy([run])["pretrain_pflops"].item() == s["pretrain_pflops"]
    assert study.tidy([tuned])["uncounted"].item() == ""


@pytest.mark.parametrize("fields, message", [
    ({"model": "rn50", "patch_dropout": 0.5}, "patch_dropout needs a ViT image tower"),
    ({"model": "convnext-t", "tome_r": 2}, "tome_r needs a ViT image tower"),
    ({"patch_dropout": 1.0}, "patch_dropout=1.0 is out of range"),
    ({"augment": "mixup"}, "augment='mixup' is not valid"),
    ({"lock_image": True}, "lock_image=true needs pretrained_image"),
    ({"ssl_scale": -1.0}, "ssl_scale=-1.0 is out of range"),
    ({"tome_r": -1}, "need tome_r >= 0"),
])
def test_bad_strategy_combinations_are_config_errors_that_say_why(fields, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**fields).check()


def test_new_fields_at_their_defaults_keep_every_stored_run_key(monkeypatch):
    cfg = TrainConfig(model="vit-ti-8")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert store.HASHED_ALWAYS <= fields
    key = store.config_hash(cfg)
    plain = store.to_dict
    monkeypatch.setattr(store, "to_dict", lambda c: {k: v for k, v in plain(c).items()
                                                       if k in store.HASHED_ALWAYS or k in ("out", "overwrite", "threads", "compile")})
    assert store.config_hash(cfg) == key  # the key a run stored before the strategies existed
    monkeypatch.setattr(store, "to_dict", plain)
    assert store.config_hash(dataclasses.replace(cfg, patch_dropout=0.5)) != key


def test_any_hugging_face_text_model_is_a_pretrained_text_tower(world, tmp_path):
    folder = str(models.text_tower_folder("minilm"))  # offline here; on a GPU e.g. hf:xlm-roberta-base
    cfg = TrainConfig(data=str(world), **{**TINY, "samples": 128}, pretrained_text="hf:" + folder, lock_text=True)
    run = train_or_load(cfg, runs_dir=tmp_path, progress=False, suites=["id"])
    model, tokenizer, _ = load_run(run["dir"])
    assert model.encode_text(tokenizer(["a red apple"])).shape == (1, 128)
    with pytest.raises(ConfigError, match="pretrained_text='bert' is not valid"):
        TrainConfig(pretrained_text="bert").check()


@pytest.mark.parametrize("fields, key", [
    ({}, "3427d92a6ce3"),
    ({"loss": "siglip", "patch_dropout": 0.5, "augment": "stacked_randaugment"}, "7d1a2876f9f9"),
])
def test_run_keys_are_the_ones_the_store_already_holds(fields, key):
    # literal keys computed before the store moved from runs.py to store.py (issue 19): a
    # reshaping of the code must not retrain or orphan a single stored run
    cfg = TrainConfig(data="shards/{0..3}.tar", model="vit-ti-8", precision="fp32", device="cpu", **fields)
    assert store.config_hash(cfg) == key
    assert store.run_dir(cfg, "data/runs") == Path("data/runs") / f"vit-ti-8-{key}"
