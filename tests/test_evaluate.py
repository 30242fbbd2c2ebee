"""Evaluation: metrics on tiny tensors with hand-checked answers, agreement with CLIP_benchmark
on a random-init model, and a whole fake world folder. Cost: ~10 s on 2 CPU cores."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clipstudy import evaluate as ev
from clipstudy import models
from clipstudy.config import ConfigError
from clipstudy.data import to_model_input


# --- prompts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,phrase", [
    ("orange heart", "an orange heart"), ("dog face", "a dog face"), ("unicorn", "a unicorn"),
    ("hourglass done", "an hourglass done"), ("grapes", "grapes"), ("bus", "a bus"),
    ("dress", "a dress"), ("a cat", "a cat"), ("umbrella", "an umbrella"),
    ("smiling face with hearts", "a smiling face with hearts"), ("two hearts", "two hearts"),
])
def test_with_article(name, phrase):
    assert ev.with_article(name) == phrase


def test_templates_take_one_phrase_each():
    templates = ev.load_templates()
    assert len(templates) >= 4 and all(t.count("{}") == 1 for t in templates)


# --- zero-shot metrics -------------------------------------------------------------------------
def test_classify_topk_and_coarse_by_hand():
    classifier = torch.eye(3)  # class c's embedding is axis c
    feats = torch.tensor([[0.9, 0.1, 0.0],   # label 0: rank 0
                          [0.6, 0.5, 0.1],   # label 1: rank 1
                          [0.5, 0.3, 0.2]])  # label 2: rank 2
    m = ev.classify(feats, classifier, [0, 1, 2], coarse=[0, 0, 1], ks=(1, 2, 3))
    assert m["top1"] == pytest.approx(1 / 3) and m["top2"] == pytest.approx(2 / 3) and m["top3"] == 1.0
    # predictions 0, 0, 0 -> coarse groups 0, 0, 0 against truth 0, 0, 1
    assert m["coarse_top1"] == pytest.approx(2 / 3)


def test_ties_count_against_the_model():
    collapsed = torch.ones(4, 3)  # every class scores the same
    m = ev.classify(collapsed, torch.eye(3), [0, 1, 2, 0], ks=(1, 2, 3))
    assert m["top1"] == 0.0 and m["top2"] == 0.0 and m["top3"] == 1.0


# --- retrieval ---------------------------------------------------------------------------------
def test_retrieval_recall_with_several_captions_per_image():
    images = torch.eye(3)  # image i is axis i
    # captions 0, 1 belong to image 0; 2 to image 1; 3, 4 to image 2
    texts = torch.tensor([[0.1, 0.9, 0.0],   # image 0's, but points at image 1
                          [0.8, 0.0, 0.2],   # image 0's, right
                          [0.0, 0.2, 0.8],   # image 1's, points at image 2
                          [0.0, 0.0, 1.0],   # image 2's, right
                          [0.0, 0.0, 1.0]])  # image 2's, a tie with its sibling: both are own
    text_image = [0, 0, 1, 2, 2]
    m = ev.retrieval_metrics(images, texts, text_image, ks=(1, 2))
    # image->text: image 0 best own caption 1 (0.8) beats every foreign one -> hit@1;
    # image 1: own caption 2 scores 0.2 < caption 0's 0.9 -> rank 1: miss@1, hit@2;
    # image 2: own captions tie at 1.0 -> hit@1
    assert m["i2t_r1"] == pytest.approx(2 / 3) and m["i2t_r2"] == 1.0
    # text->image: captions 1, 3, 4 at rank 0; caption 0 rank 1 (image 1 higher); caption 2 rank 1
    assert m["t2i_r1"] == pytest.approx(3 / 5) and m["t2i_r2"] == 1.0


def test_retrieval_tie_with_a_foreign_caption_is_a_miss():
    images = torch.eye(2)
    texts = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # image 1's caption looks exactly like image 0's
    m = ev.retrieval_metrics(images, texts, [0, 1], ks=(1,))
    assert m["i2t_r1"] == 0.0  # image 0's own caption ties with a foreign one
    assert m["t2i_r1"] == 0.5  # caption 0 hits image 0; caption 1 points at image 0


# --- probes ------------------------------------------------------------------------------------
def _clusters(n_per_class, n_classes=4, dim=16, seed=0, noise=0.05):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, dim, generator=g)
    labels = torch.arange(n_classes).repeat_interleave(n_per_class)
    feats = centres[labels] + noise * torch.randn(len(labels), dim, generator=g)
    return F.normalize(feats, dim=-1), labels.numpy()


def test_few_shot_on_separable_features_is_perfect():
    x, y = _clusters(12)
    xt, yt = _clusters(10, seed=0)  # same seed: same class centres, fresh (smaller) sample
    m = ev.few_shot(x, y, xt, yt, shots=(5, 10), seeds=3)
    assert m == {"5shot_top1": 1.0, "10shot_top1": 1.0}


def test_few_shot_uses_only_the_sampled_shots():
    idx = ev._sample_shots(np.array([0, 0, 0, 1, 1, 2]), shots=2, seed=0)
    assert sorted(np.array([0, 0, 0, 1, 1, 2])[idx].tolist()) == [0, 0, 1, 1, 2]


def test_linear_probe_on_separable_features_is_perfect():
    x, y = _clusters(20)
    m = ev.linear_probe(x, y, x, y)
    assert m["top1"] == 1.0 and m["wd"] > 0


def test_linear_probe_beats_chance_on_noisy_features():
    x, y = _clusters(30, noise=0.6, seed=1)
    m = ev.linear_probe(x[::2], y[::2], x[1::2], y[1::2])
    assert 0.5 < m["top1"] <= 1.0


def test_linear_probe_matches_scikit_learn_logistic_regression():
    # the probe's speed-up (mini-batch AdamW instead of full-batch L-BFGS) must not change its
    # answer: on a hard many-class problem, it is as accurate as scikit-learn's L-BFGS logistic
    # regression with its regularisation chosen on the same held-out split
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(0)
    n_classes, dim = 50, 32
    centres = torch.randn(n_classes, dim, generator=g)
    def sample(n):
        labels = torch.arange(n_classes).repeat(n)
        return centres[labels] + 1.8 * torch.randn(len(labels), dim, generator=g), labels.numpy()
    x, y = sample(20)
    xt, yt = sample(20)
    ours = ev.linear_probe(x, y, xt, yt)["top1"]

    mean, std = x.mean(0), x.std(0)
    xs, xts = ((x - mean) / std).numpy(), ((xt - mean) / std).numpy()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).numpy()
    val, fit = order[:len(x) // 5], order[len(x) // 5:]
    cs = [0.01, 0.1, 1.0, 10.0, 100.0]
    val_acc = [LogisticRegression(C=c, max_iter=1000).fit(xs[fit], y[fit]).score(xs[val], y[val]) for c in cs]
    theirs = LogisticRegression(C=cs[int(np.argmax(val_acc))], max_iter=1000).fit(xs, y).score(xts, yt)
    assert 0.3 < theirs < 0.9  # neither trivial nor hopeless
    print(ours, theirs)
    assert abs(ours - theirs) < 0.03  # binomial standard error at 1,000 test images: ~0.015


# --- agreement with CLIP_benchmark on a random-init model ---------------------------------------
@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = models.create_model("vit-ti-8", 32).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(24, 32, 32, 3), dtype=np.uint8)
    return model, models.get_tokenizer("vit-ti-8"), images


# CLIP_benchmark's accuracy() calls float() on a 1-element array: deprecated in numpy 2.3, an
# error from numpy 2.4 (hence the numpy<2.4 pin); its other pieces are numpy-free.
@pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
def test_zero_shot_matches_clip_benchmark(tiny):
    from clip_benchmark.metrics import zeroshot_classification as cb

    model, tokenizer, images = tiny
    classnames = [ev.with_article(n) for n in ("dog face", "apple", "orange heart", "grapes", "rocket",
                                               "sun", "house", "octopus")]
    templates = ev.load_templates()
    labels = np.arange(len(images)) % len(classnames)

    ours = ev.zero_shot(model, tokenizer, images, labels, classnames, templates, batch_size=5, precision="fp32")
    ours_w = ev.zero_shot_classifier(model, tokenizer, classnames, templates, precision="fp32")

    cb_templates = [t.replace("{}", "{c}") for t in templates]
    cb_w = cb.zero_shot_classifier(model, tokenizer, classnames, cb_templates, "cpu", amp=False)
    data = torch.utils.data.TensorDataset(to_model_input(images, 32), torch.as_tensor(labels))
    logits, target = cb.run_classification(model, cb_w, torch.utils.data.DataLoader(data, batch_size=7),
                                           "cpu", amp=False)
    top1, top5 = cb.accuracy(logits, target, topk=(1, 5))

    torch.testing.assert_close(ours_w, cb_w)
    assert ours["top1"] == pytest.approx(top1) and ours["top5"] == pytest.approx(top5)
    assert 0.0 < ours["top5"] < 1.0  # not a trivial case


def test_retrieval_matches_clip_benchmark(tiny):
    from clip_benchmark.metrics import zeroshot_retrieval as cb

    model, tokenizer, images = tiny
    words = ["dog", "apple", "heart", "sun", "house", "rocket", "tree", "cake"]
    # distinct strings: identical captions of two images would tie, and ties are where we differ
    # on purpose (CLIP_benchmark's topk breaks them arbitrarily, we count them against the model)
    captions = [[f"{i} {words[i % 8]} and {j} {words[(i * 3 + j) % 8]}" for j in range(1 + i % 3)]
                for i in range(len(images))]
    ours = ev.retrieval(model, tokenizer, images, captions, batch_size=5, precision="fp32")

    x = to_model_input(images, 32)
    pairs = [(x[i], captions[i]) for i in range(len(images))]
    loader = torch.utils.data.DataLoader(pairs, batch_size=7, collate_fn=lambda b: (
        torch.stack([p[0] for p in b]), [p[1] for p in b]))
    theirs = cb.evaluate(model, loader, tokenizer, "cpu", amp=False, recall_k_list=[1, 5])

    for k in (1, 5):
        assert ours[f"i2t_r{k}"] == pytest.approx(theirs[f"text_retrieval_recall@{k}"])
        assert ours[f"t2i_r{k}"] == pytest.approx(theirs[f"image_retrieval_recall@{k}"])
    assert 0.0 < ours["t2i_r5"] < 1.0


def test_bf16_features_agree_with_fp32(tiny):
    model, tokenizer, images = tiny
    for a, b in [(ev.image_features(model, images, precision=p) for p in ("fp32", "bf16")),
                 (ev.text_features(model, tokenizer, ["a dog face", "two red apples on stripes"], precision=p)
                  for p in ("fp32", "bf16"))]:
        assert (a * b).sum(-1).min() > 0.999  # cosine between the two precisions' features


def test_features_are_normalised_and_batch_independent(tiny):
    model, _, images = tiny
    a = ev.image_features(model, images, batch_size=4)
    b = ev.image_features(model, images, batch_size=24)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(len(images)))


def test_images_travel_to_the_device_as_uint8_and_are_scaled_there(tiny, monkeypatch):
    """Each batch goes to the device as uint8, a quarter of float32's bytes, and is scaled where it
    lands (it went as float32, converted on the CPU: on a GPU, four times the copy). Recorded on a
    CPU, where `.to("cpu")` is the same call."""
    model, _, images = tiny
    moved, to = [], torch.Tensor.to

    def recording_to(self, *args, **kwargs):
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, (str, torch.device)) and torch.device(target).type == "cpu" and self.dim() == 4:
            moved.append((self.dtype, tuple(self.shape)))
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", recording_to)
    feats = ev.image_features(model, images, batch_size=10, device="cpu")
    assert moved == [(torch.uint8, (n, 32, 32, 3)) for n in (10, 10, 4)] and feats.shape[0] == len(images)


def test_batches_are_larger_on_a_gpu_unless_given():
    assert ev.batch_for("cpu") == 256 and ev.batch_for("cuda") == ev.batch_for("cuda:1") == 1024
    assert ev.batch_for("cuda", 64) == 64 and ev.batch_for("cpu", 7) == 7



def test_text_features_skip_padding_exactly(tiny):
    """Batches sorted by length and cut after their last end-of-text token give the features of
    the model's own encode_text on all 32 columns, in the callers' order ('!' is token 0, the
    padding id, so it must not be mistaken for padding)."""
    model, tokenizer, _ = tiny
    texts = ["a dog face!!", "two red apples on stripes next to a rocket under the sun", "sun", "!", "a rocket"] * 3
    with torch.no_grad():
        full = torch.nn.functional.normalize(model.encode_text(tokenizer(texts)), dim=-1)
    torch.testing.assert_close(ev.text_features(model, tokenizer, texts, batch_size=4, precision="fp32"), full,
                               atol=1e-6, rtol=1e-5)

# --- a whole world -----------------------------------------------------------------------------
def _fake_world(root, n_classes=6, size=32):
    rng = np.random.default_rng(0)
    names = ["dog face", "apple", "orange heart", "grapes", "rocket", "sun"][:n_classes]
    suites = {"id": "classification", "shift-openmoji": "classification", "shift-noto-mono": "classification",
              "probe": "classification", "retrieval": "retrieval"}
    for name, kind in suites.items():
        folder = root / "suites" / name
        folder.mkdir(parents=True)
        n = 30 if name == "probe" else 12
        np.save(folder / "images.npy", rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8))
        if kind == "classification":
            np.save(folder / "labels.npy", (np.arange(n) % n_classes).astype(np.int64))
        else:
            caps = [[f"{ev.with_article(names[i % n_classes])} on a blue background"] * (1 + i % 2) for i in range(n)]
            (folder / "captions.json").write_text(json.dumps(caps))
    info = {"suites": {k: {"kind": v} for k, v in suites.items()},
            "classes": {"names": names, "coarse_names": ["animals", "food", "other"], "coarse": [0, 1, 2, 1, 2, 2]}}
    (root / "world.json").write_text(json.dumps(info))
    return root


def test_evaluate_world_reports_every_suite(tiny, tmp_path):
    model, tokenizer, _ = tiny
    world = _fake_world(tmp_path / "world")
    out = ev.evaluate_world(model, tokenizer, world, batch_size=8)
    expected = {"id/top1", "id/top5", "id/coarse_top1", "shift-openmoji/top1", "shift-noto-mono/top5",
                "shift_mean/top1", "shift_mean/top5", "shift_mean/coarse_top1", "probe/5shot_top1",
                "probe/10shot_top1", "probe/linear_top1", "retrieval/i2t_r1", "retrieval/i2t_r5",
                "retrieval/t2i_r1", "retrieval/t2i_r5", "eval_seconds"}
    assert expected <= set(out)
    assert all(isinstance(v, float) for v in out.values())
    assert all(0.0 <= v <= 1.0 for k, v in out.items() if k != "eval_seconds")
    assert out["shift_mean/top1"] == pytest.approx((out["shift-openmoji/top1"] + out["shift-noto-mono/top1"]) / 2)
    assert "probe/top1" not in out  # the probe suite trains probes; it is no zero-shot set

    only = ev.evaluate_world(model, tokenizer, world, suites=["id"], batch_size=8)
    assert only["id/top1"] == out["id/top1"] and set(only) == {"id/top1", "id/top5", "id/coarse_top1", "eval_seconds"}
    with pytest.raises(ConfigError, match="shift-openmoji"):
        ev.evaluate_world(model, tokenizer, world, suites=["imagenet"])


def test_fit_gap_compares_trained_pairs_with_as_many_held_out_scenes(tiny, tmp_path):
    model, tokenizer, _ = tiny
    world = _fake_world(tmp_path / "world")
    held = world / "suites" / "retrieval"
    # a pool whose pairs are the held-out scenes with their first captions: nothing to tell apart
    (world / "train").mkdir()
    shutil.copy(held / "images.npy", world / "train" / "images.npy")
    captions = [caps[0] for caps in json.loads((held / "captions.json").read_text())]
    (world / "train" / "meta.jsonl").write_text("".join(json.dumps({"caption": c}) + "\n" for c in captions))
    same = ev.fit_gap(model, tokenizer, world, trained_on=12, batch_size=8)
    assert set(same) == {"fit/train_i2t_r1", "fit/heldout_i2t_r1", "fit/gap"}
    assert same["fit/gap"] == 0.0 and same["fit/train_i2t_r1"] == same["fit/heldout_i2t_r1"]
    # a run that saw 4 pairs is scored on those 4 and on 4 held-out scenes: R@1 in quarters
    small = ev.fit_gap(model, tokenizer, world, trained_on=4, batch_size=8)
    assert all((4 * v).is_integer() for v in small.values())
    # the pool's captions shuffled: the trained pairs are now other pairs than the held-out ones
    (world / "train" / "meta.jsonl").write_text("".join(json.dumps({"caption": c}) + "\n" for c in captions[::-1]))
    moved = ev.fit_gap(model, tokenizer, world, trained_on=12, batch_size=8)
    assert moved["fit/heldout_i2t_r1"] == same["fit/heldout_i2t_r1"]
    assert moved["fit/gap"] == pytest.approx(moved["fit/train_i2t_r1"] - moved["fit/heldout_i2t_r1"])
