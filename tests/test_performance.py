"""Every speed-up keeps the results: each is compared with the plain way on the same model, data
and seed (bf16 vs fp32, math vs fused attention kernel, fused vs per-tensor AdamW, compiled vs
eager), plus the precision rules and the open_clip_train CSV export. ~1.5 minutes on 2 cores,
most of it torch.compile."""

import copy
import json
import math
import threading

import pytest
import torch

from clipstudy import compute, models
from clipstudy.records import read_metrics
from clipstudy.store import config_hash
from clipstudy.train import TrainConfig, _one_ahead, train
from clipstudy.world import WorldConfig, build_world, export_csv


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf") / "world"
    # backgrounds named in most captions: a batch can then be matched by background alone, so the
    # loss falls within the 60 steps these comparisons run (the shortcut the default world removes)
    build_world(WorldConfig(pairs=1024, classes=40, retrieval_images=64, probe_per_class=4, p_background=0.9),
                out, progress=False)
    return out


def _losses(world, out, **fields):
    cfg = TrainConfig(data=str(world), out=str(out), model="vit-ti-8", samples=32 * 60, batch_size=32,
                      warmup=128, lr=1e-3, log_every=1, **fields)
    train(cfg, progress=False)
    return [r["loss"] for r in read_metrics(out)]


def _same_run(a, b, early_tol, late_tol):
    chance = math.log(32)  # contrastive loss of a batch of 32 at chance
    assert sum(a[-10:]) / 10 < chance - 0.8, a  # it learns, so agreeing is not trivially true
    assert max(abs(x - y) for x, y in zip(a[:10], b[:10])) < early_tol, (a[:10], b[:10])
    assert abs(sum(a[-10:]) - sum(b[-10:])) / 10 < late_tol, (a[-10:], b[-10:])


def test_bf16_training_follows_fp32(world, tmp_path):
    fp32 = _losses(world, tmp_path / "fp32", precision="fp32")
    bf16 = _losses(world, tmp_path / "bf16", precision="bf16")
    _same_run(fp32, bf16, early_tol=0.02, late_tol=0.1)


def test_compiled_training_follows_eager(world, tmp_path):
    eager = _losses(world, tmp_path / "eager", precision="fp32")
    compiled = _losses(world, tmp_path / "compiled", precision="fp32", compile=True)
    _same_run(eager, compiled, early_tol=1e-3, late_tol=0.05)


def test_fused_adamw_matches_per_tensor_adamw():
    # the same gradients through both update rules (real gradients would let Adam amplify float
    # noise on parameters whose true gradient is zero, such as attention key biases)
    torch.manual_seed(0)
    a = models.create_model("vit-ti-8", 32)
    b = copy.deepcopy(a)
    opt_a = torch.optim.AdamW(a.parameters(), lr=1e-3, weight_decay=0.1, fused=True)
    opt_b = torch.optim.AdamW(b.parameters(), lr=1e-3, weight_decay=0.1, foreach=False)
    for _ in range(3):
        for pa, pb in zip(a.parameters(), b.parameters()):
            pa.grad = torch.randn_like(pa)
            pb.grad = pa.grad.clone()
        opt_a.step()
        opt_b.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-6, rtol=1e-5, msg=name)
    assert not torch.equal(a.logit_scale, models.create_model("vit-ti-8", 32).logit_scale)  # it stepped


def test_math_attention_kernel_matches_the_default_one():
    torch.manual_seed(0)
    model = models.create_model("vit-ti-8", 32)
    images, tokens = torch.randn(8, 3, 32, 32), torch.randint(1, 1000, (8, 32))
    plain = model(images, tokens)
    with compute.autocast("cpu", "fp32"):  # fp32: only the attention kernel differs
        math = model(images, tokens)
    for key in ("image_features", "text_features"):
        torch.testing.assert_close(plain[key], math[key], atol=1e-5, rtol=1e-4)


def test_precision_rules():
    assert compute.resolve_precision("fp32", "cpu") == "fp32"
    assert compute.resolve_precision("auto", "cpu") == ("bf16" if compute.cpu_has_bf16() else "fp32")
    with pytest.raises(ValueError, match=r"precision='fp16'; valid: \['auto', 'fp32', 'bf16'\]"):
        compute.resolve_precision("fp16", "cpu")
    # a run is keyed by the precision it really used, and not by speed-only settings
    resolved = compute.resolve_precision("auto", "cpu")
    assert config_hash(TrainConfig(precision="auto")) == config_hash(TrainConfig(precision=resolved))
    assert config_hash(TrainConfig(precision="fp32")) != config_hash(TrainConfig(precision="bf16"))
    assert config_hash(TrainConfig(compile=True, threads=1)) == config_hash(TrainConfig())


def test_matmul_peak_is_a_measured_rate():
    fp32 = compute.matmul_peak(torch.float32, sizes=(256,), seconds=0.05)
    assert 1e8 < fp32 < 1e15  # FLOP/s, from a real timing


def test_csv_export_reads_in_open_clip_train(world, tmp_path):
    from open_clip_train.data import CsvDataset

    csv = export_csv(world, tmp_path / "csv")
    rows = csv.read_text().splitlines()
    assert rows[0] == "filepath\ttitle" and len(rows) == 1 + 1024
    tokenizer = models.get_tokenizer("vit-ti-8")
    dataset = CsvDataset(str(csv), transforms=lambda im: torch.as_tensor(list(im.getdata())), img_key="filepath",
                         caption_key="title", sep="\t", tokenizer=tokenizer)
    pixels, tokens = dataset[5]
    meta = json.loads((world / "train" / "meta.jsonl").read_text().splitlines()[5])
    assert torch.equal(tokens, tokenizer([meta["caption"]])[0])
    import numpy as np
    image = np.load(world / "train" / "images.npy", mmap_mode="r")[5]
    assert torch.equal(pixels, torch.as_tensor(image.reshape(-1, 3)))  # PNG: every pixel exact


def test_one_ahead_prepares_the_next_item_in_order():
    """The GPU data path: the same items in the same order, the next one made while the caller
    still holds the current one."""
    made = []
    second_made = threading.Event()

    def items():
        for i in range(4):
            made.append(i)
            if i == 1:
                second_made.set()
            yield i

    it = _one_ahead(items())
    assert next(it) == 0
    assert second_made.wait(5)  # made before the caller asked for it
    assert list(it) == [1, 2, 3] and made == [0, 1, 2, 3]
