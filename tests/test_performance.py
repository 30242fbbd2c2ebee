"""Every speed-up keeps the results: each is compared with the plain way on the same model, data
and seed (bf16 vs fp32, math vs fused attention kernel, compiled vs eager), the trainer's fused
AdamW against the update written out (and its decay groups), the matmul peak behind MFU, the
precision rules and the open_clip_train CSV export. ~1.5 minutes on 2 cores,
most of it torch.compile."""

import json
import math
import threading
import time

import pytest
import torch

from clipstudy import compute, models
from clipstudy.optim import make_optimizer
from clipstudy.records import read_metrics
from clipstudy.store import config_hash
from clipstudy.train import TrainConfig, _one_ahead, train
from clipstudy.world import export_csv


@pytest.fixture(scope="module")
def world(make_world):
    # the shared tiny world (tests/conftest.py) with backgrounds named in most captions: a batch can
    # then be matched by background alone, so the loss falls within the 60 steps these comparisons
    # run (the shortcut the default world removes)
    return make_world(p_background=0.9)


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


def test_weight_decay_falls_on_weight_matrices_only():
    """make_optimizer's groups, as open_clip's recipe: decay on weight matrices and projections,
    none on 1-d params (norm gains, biases, the class token), embeddings or the temperature; a
    frozen parameter is in no group. The same groups for both optimisers."""
    model = models.create_model("vit-ti-8", 32)
    model.visual.ln_post.requires_grad_(False)  # as the body of a locked tower
    names = {id(p): n for n, p in model.named_parameters()}
    embeddings = {"token_embedding.weight", "positional_embedding", "visual.positional_embedding"}  # 2-d, not decayed
    expected = {n for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2 and n not in embeddings}
    for name, kind in (("adamw", torch.optim.AdamW), ("adafactor", torch.optim.Adafactor)):
        optimizer = make_optimizer(TrainConfig(optimizer=name, weight_decay=0.3), model)
        assert isinstance(optimizer, kind)
        grouped = [(names[id(p)], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]]
        assert sorted(n for n, _ in grouped) == sorted(n for n, p in model.named_parameters() if p.requires_grad)
        decayed = {n for n, wd in grouped if wd == 0.3}
        assert decayed == expected and all(wd == 0.0 for n, wd in grouped if n not in decayed)
        assert {"visual.conv1.weight", "visual.proj", "text_projection", "transformer.resblocks.0.mlp.c_fc.weight",
                "visual.transformer.resblocks.0.attn.in_proj_weight"} <= decayed
        assert not decayed & {*embeddings, "logit_scale", "visual.class_embedding", "ln_final.weight",
                              "transformer.resblocks.0.attn.in_proj_bias", "visual.ln_post.weight"}


def test_the_trainers_fused_adamw_is_the_textbook_update():
    """make_optimizer's fused AdamW (the trainer's one-kernel step) takes the steps of AdamW written
    out (Loshchilov & Hutter 2019: decoupled decay) with the config's lr, betas, eps and decay, on
    the decay groups above. Half the parameters get tiny gradients, so that eps shows."""
    torch.manual_seed(0)
    model = models.create_model("vit-ti-8", 32)
    cfg = TrainConfig(lr=1e-2, weight_decay=0.5, beta1=0.8, beta2=0.95, eps=1e-6)
    optimizer = make_optimizer(cfg, model)
    assert optimizer.defaults["fused"]
    params = dict(model.named_parameters())
    decay = {n: 0.0 if p.ndim < 2 or "embedding" in n else cfg.weight_decay for n, p in params.items()}
    expected = {n: p.detach().clone() for n, p in params.items()}
    m = {n: torch.zeros_like(p) for n, p in expected.items()}
    v = {n: torch.zeros_like(p) for n, p in expected.items()}
    for t in (1, 2, 3):
        for i, (n, p) in enumerate(params.items()):
            g = torch.randn_like(p) * (1e-6 if i % 2 else 1.0)
            p.grad = g.clone()
            m[n] = cfg.beta1 * m[n] + (1 - cfg.beta1) * g
            v[n] = cfg.beta2 * v[n] + (1 - cfg.beta2) * g * g
            m_hat, v_hat = m[n] / (1 - cfg.beta1 ** t), v[n] / (1 - cfg.beta2 ** t)
            expected[n] = expected[n] * (1 - cfg.lr * decay[n]) - cfg.lr * m_hat / (v_hat.sqrt() + cfg.eps)
        optimizer.step()
    for n, p in params.items():
        torch.testing.assert_close(p.detach(), expected[n], atol=1e-6, rtol=1e-5, msg=n)


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
    # a run is keyed by the precision it really used, and not by speed-only settings (compile is not one:
    # its random draws differ from eager ones, tests/test_device_paths.py)
    resolved = compute.resolve_precision("auto", "cpu")
    assert config_hash(TrainConfig(precision="auto")) == config_hash(TrainConfig(precision=resolved))
    assert config_hash(TrainConfig(precision="fp32")) != config_hash(TrainConfig(precision="bf16"))
    assert config_hash(TrainConfig(threads=1, keep_optimizer=True)) == config_hash(TrainConfig())


def test_matmul_peak_is_the_best_rate_over_sizes_and_repeats(monkeypatch):
    """The MFU denominator's arithmetic, on a simulated clock: for each size the repetitions double
    until one timing lasts `seconds`, the rate is 2 n^3 FLOPs per matmul over the fastest of
    `repeats` timings (a drifting CPU's slow ones do not count), and the best size wins."""
    rates = {64: 1e9, 128: 4e9}  # FLOP/s of the simulated device at each size
    calls = []

    def timed(a, b, reps, device):
        n = a.shape[0]
        assert a.shape == b.shape == (n, n) and a.dtype == b.dtype == torch.bfloat16 and device.type == "cpu"
        repeat = sum(1 for c in calls if c[:2] == (n, reps))  # 0 while doubling; 1, 2 for the repeats
        calls.append((n, reps))
        return reps * 2 * n ** 3 / rates[n] * (2.0, 1.0, 1.5)[repeat]

    monkeypatch.setattr(compute, "_time_matmuls", timed)
    peak = compute.matmul_peak(torch.bfloat16, sizes=(128, 64), seconds=0.5, repeats=3)
    assert peak == pytest.approx(4e9, rel=1e-9)  # 128's rate, from its fastest timing
    for n in rates:
        reps = [r for m, r in calls if m == n]
        final = reps[-1]
        assert reps == [2 ** k for k in range(1, len(reps) - 1)] + [final, final]  # doubled, then 2 repeats
        assert final * 2 * n ** 3 / rates[n] * 2.0 >= 0.5 > final / 2 * 2 * n ** 3 / rates[n] * 2.0  # the first to last 0.5 s


def test_matmul_peak_agrees_with_a_matmul_timed_here():
    """A real timing: the rate matmul_peak reports for 256 x 256 fp32 matmuls is the rate this test
    measures for them (within the drift of a shared CPU), not a miscounted or mistimed one."""
    n, reps = 256, 8
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - start)
    here = 2 * n ** 3 * reps / best
    peak = compute.matmul_peak(torch.float32, sizes=(n,), seconds=0.05, repeats=5)
    assert here / 3 < peak < here * 3, (peak, here)


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
