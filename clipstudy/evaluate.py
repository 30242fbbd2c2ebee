"""Evaluation of any CLIP-like model: zero-shot, few-shot, linear probe, retrieval, whole worlds.

Only `model.encode_image` / `model.encode_text` are used, so any open_clip-like model works.
Every metric function returns dict[str, float] (fractions in [0, 1]); features are
L2-normalised; inference is batched under torch.no_grad in eval mode. The protocols are paper
A's evaluations at emoji scale:

- zero-shot: CLIP's prompt ensemble -> class embeddings; top-1 / top-5. Prompts: the world's own
  (`world.json` "prompts", the caption grammar's forms), else templates.json. A suite with
  classes of its own (a real world's ImageNet-R) has its own class names and prompts.
  `coarse_top1` scores the coarse group of the predicted fine class, which is the same as the
  argmax over groups of the best fine logit in each group.
- few-shot: the LiT / big_vision protocol: closed-form L2-regularised least squares on frozen
  image features, whitened with the few-shot set's statistics, targets one-hot in {-1, +1},
  l2 = 2**10, mean over seeds of `shots` sampled images per class.
- linear probe: L2-regularised multinomial logistic regression on standardised frozen features,
  zero-initialised head as paper A, fit by mini-batch Adam (lr 0.1, cosine decay, 800 steps of
  512); its L2 strength is chosen on a held-out fifth of the train features (all candidate heads
  trained side by side in one wide matmul), then the head is refit on all of them. It matches
  scikit-learn's L-BFGS logistic regression within noise (tests/test_evaluate.py) at a fraction
  of the cost of full-batch L-BFGS.
- retrieval: recall@k as COCO / CLIP_benchmark: an image is a hit if ANY of its captions is in
  the top k texts; a caption is a hit if its image is in the top k images.
Ties count against the model: a right answer is in the top k only if fewer than k wrong ones
score at least as high, so a collapsed model (all scores equal) scores 0, not 100 %.

`evaluate_world` scores a world folder's suites, each by its task's function in `SUITE_TASKS`:
"classification" -> `zero_shot_suite` (`id`, the `shift-*` suites), "probe" -> `probe_suite`
(the `probe` classification suite: few-shot and linear probes, tested on `id`), "retrieval" ->
`retrieval_suite`; the suites share image features and zero-shot classifiers (`WorldEval`).

On a GPU, images travel to it as uint8 (a quarter of float32's bytes, from pinned memory,
without waiting for the copy) and are scaled there; features, classifiers, probes and rankings
stay there until each metric's one number is read; batches hold 1,024 images or captions (256
on a CPU, `batch_size=None`). A CPU computes exactly what it did before these GPU paths.

Features are computed in the precision `compute.resolve_precision` picks ("auto": bf16 where
the hardware has it, ~2.3x faster on a 2-core AVX512-BF16 CPU, features within cosine 0.9999 of
fp32); every metric on top of them runs in fp32.

The linear probe is a fixed protocol, not a converged fit: on the default laptop run's features
(1,021 classes x 25 probe images) 800 steps score 24.7 %, 1,600 steps 26.2 % and 3,200 steps
26.0 % (test standard error ~1.4 points), so its numbers compare runs with each other, not with
an exact logistic-regression optimum.

Cost on 2 CPU cores of an AMD EPYC (x86 family 25; bf16 matmul ~430 GFLOP/s), vit-s-8 at
32 px in bf16: image features ~2,200 images/s, text ~4,500 captions/s; few-shot ~1 s, linear
probe ~17 s; every suite of the default world ~41 s (`store.evaluate_run`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .compute import autocast
from .config import ConfigError
from .data import MEAN, STD, DataError, Suite, load_pairs, load_suite, load_world_info, to_model_input
from .world.captions import with_article

TEMPLATES_PATH = Path(__file__).parent / "templates.json"
PROBE_SUITE, PROBE_TEST_SUITE = "probe", "id"  # probes train on `probe` features, test on `id`
SHIFT_PREFIX = "shift-"
EVAL_VERSION = 3  # 3: train-vs-held-out retrieval (`fit/*`); bump when a protocol changes: stored evaluations of older versions are redone
FEWSHOT_L2 = 2.0 ** 10  # big_vision's few-shot l2_reg
BIAS_CONSTANT = 100.0  # constant bias feature: large, so the bias is nearly unregularised
CPU_BATCH = 256  # images or captions per forward pass on a CPU: bigger batches are no faster
GPU_BATCH = 1024  # on a GPU: 256 images of 64 px are little work a launch (benchmarks/gpu_check.py times this)

Tokenizer = Callable[[Sequence[str]], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# prompts
def load_templates(path: str | Path = TEMPLATES_PATH) -> list[str]:
    return list(json.loads(Path(path).read_text())["templates"])




# ---------------------------------------------------------------------------------------------
# features
@contextlib.contextmanager
def _inference(model: torch.nn.Module, device: str, precision: str) -> Iterator[None]:
    """eval mode (no patch dropout, batch-norm running stats), no_grad and the precision's
    autocast; restores the mode."""
    was_training, fastpath = model.training, torch.backends.mha.get_fastpath_enabled()
    model.eval()
    # nn.MultiheadAttention's eval-mode "fast path" runs 2.5x slower than the regular path on
    # CPU for vit-s-8 at 64 px (136 vs 339 images/s, torch 2.14); outputs are the same
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), autocast(device, precision):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        model.train(was_training)


def batch_for(device: str, batch_size: int | None = None) -> int:
    """`batch_size`, or where it is None (or 0) the device's: GPU_BATCH on CUDA, else CPU_BATCH."""
    return batch_size or (GPU_BATCH if torch.device(device).type == "cuda" else CPU_BATCH)


def _host_batch(images, sl: slice, pin: bool) -> torch.Tensor:
    """images[sl] as a uint8 tensor in memory of its own (a memmap's pages are read-only), pinned
    when it is bound for a GPU: one copy either way."""
    batch = np.asarray(images[sl])
    out = torch.empty(batch.shape, dtype=torch.uint8, pin_memory=pin)
    out.numpy()[...] = batch
    return out


def _chunks(n: int, size: int, progress: bool, desc: str) -> Iterator[slice]:
    starts = range(0, n, size)
    if progress:
        starts = tqdm(starts, desc=desc, leave=False)
    for s in starts:
        yield slice(s, min(s + size, n))


def model_image_size(model: torch.nn.Module) -> int:
    size = getattr(getattr(model, "visual", None), "image_size", None)
    if size is None:
        raise ValueError("model has no visual.image_size; pass image_size explicitly")
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def image_features(model: torch.nn.Module, images, batch_size: int | None = None, device: str = "cpu",
                   image_size: int | None = None, progress: bool = False, precision: str = "auto",
                   mean: float | Sequence[float] = MEAN, std: float | Sequence[float] = STD) -> torch.Tensor:
    """uint8 images [N, H, W, 3] (array, memmap or tensor) -> L2-normalised features [N, D] on
    `device`, `batch_size` images at a time (None: `batch_for(device)`). Pixels are scaled as
    `data.to_model_input` with `mean` and `std` (a pre-trained model's own), on `device`: the
    batch travels as uint8 (a quarter of the bytes; to a GPU from pinned memory, without a wait)."""
    size = image_size or model_image_size(model)
    gpu = torch.device(device).type == "cuda"
    out = []
    with _inference(model, device, precision):
        for sl in _chunks(len(images), batch_for(device, batch_size), progress, "image features"):
            x = _host_batch(images, sl, pin=gpu).to(device, non_blocking=gpu)  # uint8 [B, H, W, 3]
            x = to_model_input(x, size, mean, std)  # float [B, 3, size, size], on `device`
            out.append(F.normalize(model.encode_image(x).float(), dim=-1))
    return torch.cat(out)


def _encode_text(model: torch.nn.Module, tokens: torch.Tensor, device: str = "cpu") -> torch.Tensor:
    """`model.encode_text(tokens)` of CPU `tokens` on `device`, computed on the columns up to the
    batch's last end-of-text token when the model is an open_clip CLIP with a causal mask and
    end-of-text (argmax) pooling: each position attends only to earlier ones and the pooled one
    is the end-of-text token, so the padding after it cannot change the feature. Other models get
    every column. The cut is found on the CPU, so a GPU is not waited for."""
    # lazy: open_clip imports transformers (~3 s); records.py and real.py import this module
    # without needing it
    from open_clip.model import CLIP
    from open_clip.transformer import text_global_pool

    if not (isinstance(model, CLIP) and model.text_pool_type == "argmax" and model.attn_mask is not None):
        return model.encode_text(tokens.to(device))
    n = int(tokens.argmax(dim=1).max()) + 1  # argmax pooling: the end-of-text id is the largest
    tokens = tokens[:, :n].to(device)
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:n].to(cast)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
    x = text_global_pool(x, tokens, model.text_pool_type)
    if model.text_projection is None:
        return x
    return model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection


def text_features(model: torch.nn.Module, tokenizer: Tokenizer, texts: Sequence[str],
                  batch_size: int | None = None, device: str = "cpu", precision: str = "auto") -> torch.Tensor:
    """Captions -> L2-normalised features [N, D] on `device`, `batch_size` at a time (None:
    `batch_for(device)`). Captions are batched shortest first, so each batch stops at its own
    longest caption (see `_encode_text`)."""
    tokens = tokenizer(list(texts))
    order = tokens.argmax(dim=1).argsort(stable=True)
    out = []
    with _inference(model, device, precision):
        for sl in _chunks(len(texts), batch_for(device, batch_size), False, "text features"):
            out.append(F.normalize(_encode_text(model, tokens[order[sl]], device).float(), dim=-1))
    return torch.cat(out)[order.argsort().to(device)]


def zero_shot_classifier(model: torch.nn.Module, tokenizer: Tokenizer, classnames: Sequence[str],
                         templates: Sequence[str], batch_size: int | None = None, device: str = "cpu",
                         precision: str = "auto") -> torch.Tensor:
    """[D, C] class embeddings: per class, the mean of its normalised prompt embeddings,
    renormalised (CLIP's ensemble). `templates` hold '{}' for the class phrase."""
    texts = [t.format(c) for c in classnames for t in templates]
    feats = text_features(model, tokenizer, texts, batch_size, device, precision)
    feats = feats.view(len(classnames), len(templates), -1).mean(dim=1)
    return F.normalize(feats, dim=-1).T.contiguous()


# ---------------------------------------------------------------------------------------------
# metrics on tensors
def _rank_of_true(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per row, how many other classes score at least as high as the true one (0 = top-1)."""
    true = logits.gather(1, labels.view(-1, 1))
    return (logits >= true).sum(dim=1) - 1


def classify(image_feats: torch.Tensor, classifier: torch.Tensor, labels, coarse: Sequence[int] | None = None,
             ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy of features [N, D] against class embeddings [D, C]; with `coarse` (fine
    class -> coarse group index), also `coarse_top1` of the predicted fine class's group."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=image_feats.device)
    logits = image_feats.float() @ classifier.float()
    rank = _rank_of_true(logits, labels)
    out = {f"top{k}": (rank < k).float().mean().item() for k in ks}
    if coarse is not None:
        groups = torch.as_tensor(list(coarse), dtype=torch.long, device=image_feats.device)
        pred = logits.argmax(dim=1)
        out["coarse_top1"] = (groups[pred] == groups[labels]).float().mean().item()
    return out


def zero_shot(model: torch.nn.Module, tokenizer: Tokenizer, images, labels, classnames: Sequence[str],
              templates: Sequence[str], coarse: Sequence[int] | None = None, batch_size: int | None = None,
              device: str = "cpu", precision: str = "auto") -> dict[str, float]:
    """{"top1", "top5"[, "coarse_top1"]} of zero-shot classification of uint8 `images`."""
    classifier = zero_shot_classifier(model, tokenizer, classnames, templates, batch_size, device, precision)
    feats = image_features(model, images, batch_size, device, precision=precision)
    return classify(feats, classifier, labels, coarse)


def retrieval_metrics(image_feats: torch.Tensor, text_feats: torch.Tensor, text_image, ks: Sequence[int] = (1, 5),
                      chunk: int = 1024) -> dict[str, float]:
    """Recall@k both ways; `text_image[j]` is the image index of caption j."""
    text_image = torch.as_tensor(np.asarray(text_image), dtype=torch.long, device=image_feats.device)
    n_img = len(image_feats)
    # image -> text: the best-scoring own caption must beat all but < k foreign captions
    i2t_rank, has_caption = [], []
    for sl in _chunks(n_img, chunk, False, ""):
        scores = image_feats[sl].float() @ text_feats.float().T  # [n, T]
        own = text_image.view(1, -1) == torch.arange(sl.start, sl.stop, device=image_feats.device).view(-1, 1)
        best_own = scores.masked_fill(~own, float("-inf")).max(dim=1, keepdim=True).values
        i2t_rank.append(((scores >= best_own) & ~own).sum(dim=1))
        has_caption.append(own.any(dim=1))
    i2t_rank = torch.cat(i2t_rank)[torch.cat(has_caption)]  # images without captions are left out
    # text -> image: the caption's own image must beat all but < k other images
    t2i_rank = []
    for sl in _chunks(len(text_feats), chunk, False, ""):
        scores = text_feats[sl].float() @ image_feats.float().T  # [t, N]
        t2i_rank.append(_rank_of_true(scores, text_image[sl]))
    t2i_rank = torch.cat(t2i_rank)
    out = {f"i2t_r{k}": (i2t_rank < k).float().mean().item() for k in ks}
    out.update({f"t2i_r{k}": (t2i_rank < k).float().mean().item() for k in ks})
    return out


def retrieval(model: torch.nn.Module, tokenizer: Tokenizer, images, captions: Sequence[Sequence[str]],
              batch_size: int | None = None, device: str = "cpu", ks: Sequence[int] = (1, 5),
              precision: str = "auto") -> dict[str, float]:
    """{"i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"} for uint8 `images` and their caption lists."""
    img = image_features(model, images, batch_size, device, precision=precision)
    return retrieval_of_features(model, tokenizer, img, captions, batch_size, device, ks, precision)


def retrieval_of_features(model: torch.nn.Module, tokenizer: Tokenizer, image_feats: torch.Tensor,
                          captions: Sequence[Sequence[str]], batch_size: int | None = None, device: str = "cpu",
                          ks: Sequence[int] = (1, 5), precision: str = "auto") -> dict[str, float]:
    """`retrieval` for images whose features [N, D] are already computed."""
    texts = [c for caps in captions for c in caps]
    text_image = [i for i, caps in enumerate(captions) for _ in caps]
    txt = text_features(model, tokenizer, texts, batch_size, device, precision)
    return retrieval_metrics(image_feats, txt, text_image, ks)


# ---------------------------------------------------------------------------------------------
# probes on frozen features
def _sample_shots(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:shots] for c in np.unique(labels)]
    return np.concatenate(picks)


def _lsr_accuracy(x, y, x_test, y_test, num_classes: int, l2: float) -> float:
    """Closed-form ridge regression onto {-1, +1} one-hot targets; accuracy of its argmax."""
    x, x_test = x.double(), x_test.double()
    mean, std = x.mean(0, keepdim=True), x.std(0, unbiased=False, keepdim=True) + 1e-5
    pad = lambda z: F.pad((z - mean) / std, (0, 1), value=BIAS_CONSTANT)  # noqa: E731
    x, x_test = pad(x), pad(x_test)
    targets = 2.0 * F.one_hot(y.to(x.device), num_classes).double() - 1.0
    eye = functools.partial(torch.eye, dtype=x.dtype, device=x.device)
    if len(x) >= x.shape[1]:  # primal (D x D) or dual (N x N) system, whichever is smaller
        w = torch.linalg.solve(x.T @ x + l2 * eye(x.shape[1]), x.T @ targets)
    else:
        w = x.T @ torch.linalg.solve(x @ x.T + l2 * eye(len(x)), targets)
    return ((x_test @ w).argmax(1) == y_test.to(x.device)).double().mean().item()


def few_shot(train_feats: torch.Tensor, train_labels, test_feats: torch.Tensor, test_labels,
             shots: Sequence[int] = (5, 10), seeds: int = 3, l2: float = FEWSHOT_L2) -> dict[str, float]:
    """{"5shot_top1", "10shot_top1"}: mean over `seeds` draws of `shots` train images per class."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    y_test = torch.as_tensor(test_labels, dtype=torch.long)
    out = {}
    for k in shots:
        accs = []
        for seed in range(seeds):
            idx = _sample_shots(train_labels, k, seed)
            accs.append(_lsr_accuracy(train_feats[torch.as_tensor(idx, device=train_feats.device)],
                                      torch.as_tensor(train_labels[idx], dtype=torch.long),
                                      test_feats, y_test, num_classes, l2))
        out[f"{k}shot_top1"] = float(np.mean(accs))
    return out


def _fit_heads(x: torch.Tensor, y: torch.Tensor, num_classes: int, wds: Sequence[float], lr: float,
               steps: int, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One zero-initialised linear head per L2 strength in `wds`, trained side by side: weights
    [K, C, D], biases [K, C]. Adam is elementwise and each head's loss touches only its own
    parameters, so this equals K separate fits on the same mini-batches, in one wide matmul."""
    k, dim = len(wds), x.shape[1]
    weight = torch.zeros(k, num_classes, dim, device=x.device, requires_grad=True)  # zero-initialised, as paper A
    bias = torch.zeros(k, num_classes, device=x.device, requires_grad=True)
    l2 = 0.5 * torch.tensor(wds, dtype=torch.float32, device=x.device).view(k, 1, 1)
    opt = torch.optim.Adam([weight, bias], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(x))
    per_epoch = len(x) // batch_size
    with torch.enable_grad():
        for step in range(steps):
            if step % per_epoch == 0:
                order = torch.randperm(len(x), generator=gen).to(x.device)  # the same order on any device
            idx = order[(step % per_epoch) * batch_size:(step % per_epoch + 1) * batch_size]
            logits = torch.addmm(bias.view(-1), x[idx], weight.view(-1, dim).T)  # [B, K * C]
            # rows of C logits, one per (sample, head): log-softmax over contiguous memory (the
            # strided [B, C, K] layout ran ~8x slower and took half the probe's time)
            ce = F.cross_entropy(logits.view(-1, num_classes), y[idx].repeat_interleave(k), reduction="none")
            loss = ce.view(-1, k).mean(0).sum() + (l2 * weight.square()).sum()  # the sum of the K heads' losses
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return weight.detach(), bias.detach()


def linear_probe(train_feats: torch.Tensor, train_labels, test_feats: torch.Tensor, test_labels,
                 wds: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2), lr: float = 0.1, steps: int = 800,
                 batch_size: int = 512, holdout: float = 0.2, seed: int = 0) -> dict[str, float]:
    """{"top1", "wd"}: L2-regularised logistic regression on standardised frozen features,
    zero-initialised and fit by mini-batch Adam; the L2 strength is picked on a held-out split of
    the train features (fraction `holdout`), then the head is refit on all of them."""
    x, x_test = train_feats.float(), test_feats.float()
    mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True) + 1e-6
    x, x_test = (x - mean) / std, (x_test - mean) / std
    y = torch.as_tensor(np.asarray(train_labels), dtype=torch.long, device=x.device)
    y_test = torch.as_tensor(np.asarray(test_labels), dtype=torch.long, device=x.device)
    num_classes = int(max(y.max(), y_test.max())) + 1
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).to(x.device)
    n_val = max(1, int(len(x) * holdout))
    val, fit = order[:n_val], order[n_val:]

    def accuracy(weight, bias, xs, ys):  # -> one accuracy per head
        return (torch.einsum("nd,kcd->knc", xs, weight) + bias[:, None]).argmax(-1).eq(ys).float().mean(-1)

    scores = accuracy(*_fit_heads(x[fit], y[fit], num_classes, wds, lr, steps, batch_size, seed), x[val], y[val])
    best = wds[int(scores.argmax())]  # first of the best: ties go to the weakest regulariser
    head = _fit_heads(x, y, num_classes, [best], lr, steps, batch_size, seed)
    return {"top1": accuracy(*head, x_test, y_test).item(), "wd": float(best)}


# ---------------------------------------------------------------------------------------------
# a whole world: one function per suite task, registered in SUITE_TASKS
@dataclass
class WorldEval:
    """What the suites of one `evaluate_world` call share: the model and settings, and caches.
    Each suite is loaded once, each suite's image features computed once (the probes reuse the
    `id` suite's), and one zero-shot classifier is built per class list and prompts (the suites
    on the world's classes share one)."""

    model: torch.nn.Module
    tokenizer: Tokenizer
    world_dir: Path
    info: dict
    batch_size: int | None = None  # None: batch_for(device)
    device: str = "cpu"
    templates: Sequence[str] | None = None
    progress: bool = False
    precision: str = "auto"
    loaded: dict = field(default_factory=dict)  # suite name -> Suite
    feats: dict = field(default_factory=dict)  # suite name -> image features
    classifiers: dict = field(default_factory=dict)  # (class names, prompts) -> [D, C]

    def __post_init__(self) -> None:
        classes = self.info["classes"]
        # caption-ready phrases if the world lists them, else the names with an article
        self.phrases = classes.get("phrases") or [with_article(n) for n in classes["names"]]
        self.coarse = classes.get("coarse")

    def spec(self, name: str) -> dict:
        return self.info["suites"][name]

    def suite(self, name: str) -> Suite:
        if name not in self.loaded:
            self.loaded[name] = load_suite(self.world_dir / "suites" / name)
        return self.loaded[name]

    def features(self, name: str) -> torch.Tensor:
        if name not in self.feats:
            self.feats[name] = image_features(self.model, self.suite(name).images, self.batch_size, self.device,
                                              progress=self.progress, precision=self.precision)
        return self.feats[name]

    def classifier(self, name: str) -> torch.Tensor:
        classnames = self.spec(name).get("classnames") or self.phrases
        # the world's own prompts are its caption grammar's forms (an EmojiWorld's) or its `id` set's
        forms = list(self.templates if self.templates is not None else
                     self.spec(name).get("templates") or self.info.get("prompts") or load_templates())
        key = (tuple(classnames), tuple(forms))
        if key not in self.classifiers:
            self.classifiers[key] = zero_shot_classifier(self.model, self.tokenizer, classnames, forms,
                                                         self.batch_size, self.device, self.precision)
        return self.classifiers[key]


def zero_shot_suite(ev: WorldEval, name: str) -> dict[str, float]:
    """{"top1", "top5"[, "coarse_top1"]}: zero-shot classification (`id`, the `shift-*` suites, a
    real world's other sets). A suite with class names of its own has no coarse accuracy: the
    coarse groups are the world's classes'."""
    own = ev.spec(name).get("classnames")
    return classify(ev.features(name), ev.classifier(name), ev.suite(name).labels, None if own else ev.coarse)


def probe_suite(ev: WorldEval, name: str) -> dict[str, float]:
    """{"5shot_top1", "10shot_top1", "linear_top1"}: few-shot and linear probes trained on this
    suite's features and tested on the `id` suite's."""
    train, test = ev.features(name), ev.features(PROBE_TEST_SUITE)
    y_train, y_test = ev.suite(name).labels, ev.suite(PROBE_TEST_SUITE).labels
    metrics = few_shot(train, y_train, test, y_test)
    metrics["linear_top1"] = linear_probe(train, y_train, test, y_test)["top1"]
    return metrics


def retrieval_suite(ev: WorldEval, name: str) -> dict[str, float]:
    """{"i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"}: image-text retrieval over the suite's captions."""
    return retrieval_of_features(ev.model, ev.tokenizer, ev.features(name), ev.suite(name).captions,
                                 ev.batch_size, ev.device, precision=ev.precision)


PROBE_TASK = "probe"  # the task of the classification suite named PROBE_SUITE
# suite task -> its function (WorldEval, suite name) -> metrics. A suite's task is its world.json
# `kind`, except PROBE_SUITE's; a new kind of suite is a function and an entry here.
SUITE_TASKS: dict[str, Callable[[WorldEval, str], dict[str, float]]] = {
    "classification": zero_shot_suite,
    PROBE_TASK: probe_suite,
    "retrieval": retrieval_suite,
}


def suite_task(name: str, kind: str) -> str:
    """The SUITE_TASKS key of the suite `name` of world.json kind `kind`."""
    kinds = [k for k in SUITE_TASKS if k != PROBE_TASK]
    if kind not in kinds:
        raise ConfigError(f"suite {name!r} has kind {kind!r}; expected {' or '.join(map(repr, kinds))}")
    return PROBE_TASK if kind == "classification" and name == PROBE_SUITE else kind


def evaluate_world(model: torch.nn.Module, tokenizer: Tokenizer, world_dir: str | Path,
                   suites: Sequence[str] | None = None, batch_size: int | None = None, device: str = "cpu",
                   templates: Sequence[str] | None = None, progress: bool = False,
                   precision: str = "auto") -> dict[str, float]:
    """Every (or the named) evaluation suite of a world folder, as one flat dict:
    `id/top1`, `id/top5`, `id/coarse_top1`, `shift-<style>/top1`, ..., `shift_mean/top1`,
    `probe/5shot_top1`, `probe/10shot_top1`, `probe/linear_top1`, `<retrieval suite>/i2t_r1`, ...,
    and `eval_seconds`. Probes train on the `probe` suite's features and test on `id`. Each
    suite is scored by its task's function in SUITE_TASKS, in the order of `suites`;
    `batch_size` images or captions a forward pass (None: 256 on a CPU, 1,024 on a GPU).

    Classification suites share one zero-shot classifier over the world's classes; a suite whose
    spec lists `classnames` of its own (a real world's ImageNet-R: 200 of the 1,000) gets one
    over those, used as written, with its own `templates` (no coarse accuracy). Prompts: the
    `templates` argument if given, else the suite's, else the world's, else templates.json."""
    start = time.perf_counter()
    world_dir = Path(world_dir)
    info = load_world_info(world_dir)
    spec = info["suites"]
    names = list(spec) if suites is None else list(suites)
    unknown = [n for n in names if n not in spec]
    if unknown:
        raise ConfigError(f"unknown suite(s) {unknown} in {world_dir}; valid suites: {list(spec)}")
    tasks = [suite_task(n, spec[n]["kind"]) for n in names]
    read = dict.fromkeys(names + ([PROBE_TEST_SUITE] if PROBE_TASK in tasks else []))  # probes test on `id`
    missing = [n for n in read if not (world_dir / "suites" / n / "images.npy").is_file()]
    if missing:  # checked before any is scored, so no metric is computed and then thrown away
        rest = [n for n in names if n not in missing and not (n == PROBE_SUITE and PROBE_TEST_SUITE in missing)]
        raise DataError(f"{world_dir} lists suite(s) {missing} in world.json but has no "
                        f"{world_dir / 'suites' / missing[0] / 'images.npy'}; nothing was scored: rebuild the world, "
                        f"or score the others (suites={','.join(rest)})")
    ev = WorldEval(model, tokenizer, world_dir, info, batch_size, device, templates, progress, precision)
    out: dict[str, float] = {}
    for name in names:
        metrics = SUITE_TASKS[suite_task(name, spec[name]["kind"])](ev, name)
        out.update({f"{name}/{k}": v for k, v in metrics.items()})
    shifts = [n for n in names if n.startswith(SHIFT_PREFIX)]
    if shifts:
        for key in [k.split("/", 1)[1] for k in out if k.startswith(shifts[0] + "/")]:
            out[f"shift_mean/{key}"] = float(np.mean([out[f"{n}/{key}"] for n in shifts]))
    out["eval_seconds"] = time.perf_counter() - start
    return out


def fit_gap(model: torch.nn.Module, tokenizer: Tokenizer, world_dir: str | Path, trained_on: int, n: int = 1_000,
            batch_size: int | None = None, device: str = "cpu", precision: str = "auto") -> dict[str, float]:
    """How far a run fits its own pairs beyond what generalises: image->text R@1 among `n` pairs
    it trained on (the pool's first min(n, trained_on), one caption each) and among as many
    held-out scenes of the world's `retrieval` suite (their first caption, the same grammar).
    -> {"fit/train_i2t_r1", "fit/heldout_i2t_r1", "fit/gap"} (gap = train - held-out)."""
    pool = load_pairs(world_dir, limit=min(n, trained_on))
    held = load_suite(Path(world_dir) / "suites" / "retrieval")
    k = min(len(pool), len(held.images))
    train = retrieval(model, tokenizer, pool.images[:k], [[c] for c in pool.captions[:k]], batch_size, device,
                      ks=(1,), precision=precision)["i2t_r1"]
    heldout = retrieval(model, tokenizer, held.images[:k], [caps[:1] for caps in held.captions[:k]], batch_size,
                        device, ks=(1,), precision=precision)["i2t_r1"]
    return {"fit/train_i2t_r1": train, "fit/heldout_i2t_r1": heldout, "fit/gap": train - heldout}
