"""Token merging (clipstudy.tome): r = 0 is the plain model, each layer drops r tokens and keeps
the sizes summing to the input count, the matching agrees with a plain-Python reference,
proportional attention counts a size-s token as s copies, gradients flow, bad r and non-ViT
towers are refused, state dicts are unchanged, sizes carry no gradient, the CUDA merge sum is
deterministic and rounds once. Cost: ~5 s on 2 CPU cores."""

import copy
import io
import math

import pytest
import torch

from clipstudy import models, tome
from clipstudy.config import ConfigError

TOKENS = 17  # vit-ti-8 at 32 px: 4x4 patches + cls


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return models.create_model("vit-ti-8", 32).eval()


@pytest.fixture()
def images():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_r0_is_the_plain_model(model, images):
    plain = copy.deepcopy(model)
    with torch.no_grad():
        x = model.visual._embeds(images)
        size = torch.ones(x.shape[:2])
        for block in model.visual.transformer.resblocks:
            merged, size = tome.merge_block(block, x, size, 0)
            x = block(x)
            torch.testing.assert_close(merged, x, atol=1e-5, rtol=1e-5)
        assert (size == 1).all()
        torch.testing.assert_close(tome.apply(model, 0).encode_image(images), plain.encode_image(images),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("r", [2, 4, 8])
def test_each_layer_drops_r_tokens_and_sizes_sum_to_the_input(model, images, r):
    expected_r, expected_counts = tome.schedule(r, 4, TOKENS)
    with torch.no_grad():
        x = model.visual._embeds(images)
        size = torch.ones(x.shape[:2])
        for i, block in enumerate(model.visual.transformer.resblocks):
            before = x.shape[1]
            x, size = tome.merge_block(block, x, size, r)
            assert x.shape[1] == before - min(r, (before - 1) // 2) == expected_counts[i]
            assert before - x.shape[1] == expected_r[i]
            assert (size.sum(dim=1) == TOKENS).all() and (size[:, 0] == 1).all()  # cls never merged
    assert tome.schedule(4, 4, TOKENS) == ([4, 4, 4, 2], [13, 9, 5, 3])  # 4th layer clamped: (5 - 1) // 2
    assert tome.schedule(8, 4, TOKENS) == ([8, 4, 2, 1], [9, 5, 3, 2])


def reference_matching(x, size, metric, r):
    """ToMe's bipartite soft matching for one sample, in plain Python (lists of floats)."""
    n = len(x)
    a, b = list(range(0, n, 2)), list(range(1, n, 2))
    r = min(r, (n - 1) // 2)

    def cos(u, v):
        return sum(p * q for p, q in zip(u, v)) / math.sqrt(sum(p * p for p in u) * sum(q * q for q in v))

    best = {}  # A token -> (score, its most similar B token); the cls token (0) is not a candidate
    for i in a[1:]:
        best[i] = max((cos(metric[i], metric[j]), j) for j in b)
    merged = sorted(best, key=lambda i: best[i][0], reverse=True)[:r]
    groups = {j: [j] for j in b}
    for i in merged:
        groups[best[i][1]].append(i)
    out_x, out_size = [], []
    for i in [i for i in a if i not in merged]:
        out_x.append(list(x[i]))
        out_size.append(size[i])
    for j in b:
        total = sum(size[k] for k in groups[j])
        out_x.append([sum(size[k] * x[k][c] for k in groups[j]) / total for c in range(len(x[0]))])
        out_size.append(total)
    return out_x, out_size


@pytest.mark.parametrize("r", [1, 2, 3, 5])
def test_matching_agrees_with_a_plain_python_reference(r):
    g = torch.Generator().manual_seed(r)
    x, metric = torch.randn(2, 7, 4, generator=g), torch.randn(2, 7, 4, generator=g)
    size = torch.randint(1, 4, (2, 7), generator=g).float()
    metric[:, 0] = metric[:, 1]  # the cls token would be the best match of all: still never merged
    got_x, got_size = tome.bipartite_soft_matching(metric, r)(x, size)
    for s in range(2):
        want_x, want_size = reference_matching(x[s].tolist(), size[s].tolist(), metric[s].tolist(), r)
        torch.testing.assert_close(got_x[s], torch.tensor(want_x))
        assert got_size[s].tolist() == want_size
        torch.testing.assert_close(got_x[s, 0], x[s, 0])  # cls first and untouched
    assert got_x.shape == (2, 7 - min(r, 3), 4)


def test_proportional_attention_counts_a_size_s_token_as_s_copies(model):
    attn = model.visual.transformer.resblocks[0].attn
    a, b = torch.randn(2, 1, 1, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        three, _ = tome.attention(attn, torch.cat([a, b, b], 1), torch.ones(1, 3))
        two, _ = tome.attention(attn, torch.cat([a, b], 1), torch.tensor([[1.0, 2.0]]))
        torch.testing.assert_close(two, three[:, :2], atol=1e-6, rtol=1e-5)
        x = torch.randn(2, 5, 128)
        plain = attn(x, x, x, need_weights=False)[0]
        torch.testing.assert_close(tome.attention(attn, x, torch.ones(2, 5))[0], plain, atol=1e-6, rtol=1e-5)


def test_training_gradients_flow_with_a_list_schedule(model, images):
    tome.apply(model, tome.decreasing(3, 4)).train()
    assert tome.decreasing(3, 4) == [6, 4, 2, 0] and tome.decreasing(2, 1) == [4]
    tokens = models.get_tokenizer()(["a dog face.", "an apple.", "a red heart."])
    out = model(images, tokens)
    (out["image_features"] @ out["text_features"].T).sum().backward()
    for name, p in model.visual.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.visual.conv1.weight.grad.abs().sum() > 0


def test_bad_r_and_non_vit_towers_are_refused(model):
    for bad in (-1, 1.5, True, [1, 2, 3], [1, 2, 3, -1]):
        with pytest.raises(ConfigError, match="r=.*(integer|integers) >= 0"):
            tome.apply(model, bad)
    with pytest.raises(ConfigError, match="needs a ViT image tower"):
        tome.apply(models.create_model("rn50", 32), 2)
    with pytest.raises(ConfigError, match="needs a ViT image tower"):
        tome.apply(models.create_model("convnext-t", 32), 2)
    with pytest.raises(ConfigError, match="'tok' pooling"):
        tome.apply(models.create_model("vit-ti-8", 32, pool_type="avg"), 2)


def test_state_dict_is_unchanged_and_round_trips(model, images):
    keys = list(model.state_dict())
    tome.apply(model, 2)
    assert list(model.state_dict()) == keys
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = tome.apply(models.create_model("vit-ti-8", 32).eval(), 2)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(fresh.encode_image(images), model.encode_image(images))


def test_token_sizes_carry_no_gradient_so_the_attention_mask_is_a_constant(monkeypatch):
    """A mask that needs a gradient sends SDPA to its slow paths (and a rarely used mask-gradient
    kernel on GPUs); sizes count patches and need none."""
    model = tome.apply(models.create_model("vit-ti-8", image_size=32), 2).train()
    masks = []
    real = tome.F.scaled_dot_product_attention
    monkeypatch.setattr(tome.F, "scaled_dot_product_attention", lambda *a, **kw: masks.append(kw["attn_mask"]) or real(*a, **kw))
    model.encode_image(torch.randn(2, 3, 32, 32)).sum().backward()
    assert masks and not any(m.requires_grad for m in masks)


def test_the_deterministic_merge_sum_equals_scatter_add():
    """On CUDA merged tokens are summed by a one-hot product (scatter_add's atomics add in a
    varying order); it is the same sum."""
    g = torch.Generator().manual_seed(0)
    b, values = torch.randn(3, 8, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    dst = torch.randint(8, (3, 4), generator=g)
    assert torch.allclose(tome.add_at(b, dst, values, one_hot=True), tome.add_at(b, dst, values, one_hot=False), atol=1e-6)


def test_the_one_hot_merge_sum_rounds_once():
    """The one-hot product runs in float64: in float32 a GPU under the trainer's TF32 setting rounds
    its inputs to 10 mantissa bits. Here float32 rounds twice (1 + 2^-24 -> 1, then + 2^-24 -> 1)."""
    b = torch.full((1, 2, 1), 2.0 ** -24)
    values = torch.tensor([[[1.0], [2.0 ** -24]]])
    out = tome.add_at(b, torch.zeros(1, 2, dtype=torch.long), values, one_hot=True)
    assert out.dtype == torch.float32 and out[0, :, 0].tolist() == [1 + 2.0 ** -23, 2.0 ** -24]
