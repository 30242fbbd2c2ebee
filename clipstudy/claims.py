"""Every claim of the two papers, as the seeds state it, with the test that checks it at our scale.

    claims.CLAIMS                                      # the registry: one Claim per claim
    claims.verdicts_of("data_quantity", table, chance) # the verdict dicts of one chapter's claims
    claims.show("data_quantity", table, world)         # what a chapter page prints (one call)

Each Claim carries the paper's words (a short quote), its source (paper, section / figure), the
regime the paper saw it in, the kind of test, and whether the test is faithful to the seed (or
why not); its `check` turns the chapter's tidy table into one verdict dict (clipstudy/verdicts.py:
a difference, "best among" every named rival, an equivalence with a stated margin, a trend,
effective robustness, a crossover, a compute frontier). A claim about a regime our grid does not
reach gets *beyond our scale*, with the nearest test inside our range shown for what it is.
Claims marked `ours` are our own checks (why a claim holds, paper B's future work, paper B's
tricks from scratch): chapters show them, the findings page does not count them.

Sources: paper A = "Scaling (Down) CLIP" (Li, Xie, Cubuk 2024; `../shared/seeds/000_*` its summary,
`001_*` its abstract), paper B = "The truth they do not want you to know about CLIP on small(er)
image-text datasets" (`002_*`). Strategies are clipstudy/chapters.py's config dicts: cells are
picked by config fields (study.arm), never by display names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from IPython.display import Markdown

from clipstudy import chapters, scaling
from clipstudy.study import arm, strategy
from clipstudy.verdicts import (HOLDS, all_of, any_of, best_among, beyond, effective_robustness, equivalence, frontier,
                                linearity, select, test, throughput, trend)
from clipstudy.verdicts import show as show_verdicts
from clipstudy.worlds import chance as world_chance


@dataclass(frozen=True)
class Claim:
    key: str          # stable id, e.g. "A1.epochs"
    chapter: str      # the table it is tested on: a key of chapters.PAGES, or "throughput"
    theme: str        # the findings page's grouping
    title: str        # the claim in a line
    quote: str        # the seed's words
    source: str       # paper, section / figure
    kind: str         # the kind of test
    paper: str        # the regime the paper saw it in
    faithful: str     # "yes", or why the test differs from the seed's claim
    check: Callable[[pd.DataFrame, float], dict | None]
    paper_effect: float | None = None  # a magnitude the paper states, in the test's unit
    ours: bool = False                 # our check, not a claim of the papers

    @property
    def page(self) -> str:
        return chapters.PAGES["tricks" if self.chapter == "throughput" else self.chapter]


CLAIMS: list[Claim] = []
THEMES = {"data": "Data: quantity and quality", "architecture": "Architecture: ViT size, CNN vs ViT",
          "strategies": "Training strategies: SLIP, FLIP, augmentation",
          "tricks": "Medium-scale tricks: pre-trained towers, SigLIP, FLIP, token merging",
          "throughput": "Throughput"}
A, B = "A (Scaling (Down) CLIP)", "B (CLIP on small(er) datasets)"
SAMPLES_100M = 100_000_000  # paper A's "under 100M samples" boundary (ViT size)


def claim(key: str, chapter: str, theme: str, title: str, quote: str, source: str, kind: str, paper: str,
          faithful: str = "yes", paper_effect: float | None = None, ours: bool = False):
    """Register the decorated function as the check of a claim."""
    def register(check):
        if any(c.key == key for c in CLAIMS):
            raise ValueError(f"claim {key!r} registered twice")
        CLAIMS.append(Claim(key, chapter, theme, title, quote, source, kind, paper, faithful, check, paper_effect, ours))
        return check
    return register


def verdicts_of(chapter: str, table: pd.DataFrame, chance: float, keys: list[str] | None = None,
                ours: bool = True) -> list[dict]:
    """The verdict dict of each claim of `chapter` (or of `keys`), with the claim's registry
    fields (key, claim = its title, quote, source, kind, faithful, page, ours) merged in."""
    known = {c.key for c in CLAIMS}
    if keys and set(keys) - known:
        raise KeyError(f"no claim {sorted(set(keys) - known)}; claims: {sorted(known)}")
    out = []
    for c in CLAIMS:
        if (c.key in keys if keys else c.chapter == chapter) and (ours or not c.ours):
            v = c.check(table, chance)
            if v is not None:
                out.append({**v, "key": c.key, "claim": c.title, "quote": c.quote, "source": c.source, "kind": c.kind,
                            "paper": c.paper, "faithful": c.faithful, "theme": c.theme, "page": c.page, "ours": c.ours,
                            "paper_effect": c.paper_effect})
    return out


def show(chapter: str, table: pd.DataFrame, world: Path, note: str = "", keys: list[str] | None = None) -> Markdown:
    """A chapter's claims as its page prints them: the table of verdicts, one sentence each."""
    return show_verdicts(verdicts_of(chapter, table, world_chance(world), keys), note)


# ---- shared pieces of the checks ----

def _crossover(reached: dict, proxy: dict, where: str, predicted=None) -> dict:
    """A claim that one arm overtakes another with more samples: holds when our largest budget
    already shows it; otherwise the crossover lies beyond our grid (`where`), with `proxy` (does
    the gap move towards it?) and `predicted()` (where fitted scaling laws put it: only fitted then) shown."""
    if reached["verdict"] == HOLDS:
        return reached
    return beyond(f"{reached['test']}; not seen by {where}: the crossover lies beyond our grid"
                  + (f"; {predicted()}" if predicted else ""), proxy)


def _law_crossover(runs: pd.DataFrame, leader: tuple[str, dict], chaser: tuple[str, dict], metric: str,
                   chance: float, chapter: str | None = None) -> str:
    """'samples from which the fitted scaling laws put CHASER above LEADER at `metric`: 1,234,567
    [..., ...] (extrapolated)', or why no law could be fitted. Each arm is (name, cell picked by
    config); its error against samples seen is fitted on seed means and checked on its largest
    budget (clipstudy/scaling.py). Retrieval's chance is taken as 0. Where `runs` cannot be fitted
    and `chapter` has a deeper laptop grid recorded (scaling.recorded, benchmarks/laws.py), its
    crossover follows, so named."""
    def crossing(table: pd.DataFrame, chance: float) -> dict:
        named = pd.concat([select(table, where).assign(arm=name) for name, where in (leader, chaser)])
        fits = scaling.fit_all(named, by="arm", boot=scaling.BOOT, x="samples", metric=metric,
                               chance=chance if metric == "zero-shot" else 0.0)
        return scaling.crossover(fits[leader[0]], fits[chaser[0]], names=(leader[0], chaser[0]))

    cross = crossing(runs, chance)
    text = (f"samples from which the fitted scaling laws put {chaser[0]} above {leader[0]} at {metric}: "
            + scaling.crossover_text(cross, later=chaser[0]))
    deep = scaling.recorded(chapter=chapter) if chapter and cross["status"] != "fitted" else pd.DataFrame()
    if len(deep):
        text += (f"; on the deeper laptop grid recorded by benchmarks/laws.py ({deep['seed'].nunique()} seeds, "
                 f"{int(deep['samples'].min()):,}-{int(deep['samples'].max()):,} samples at "
                 f"{'/'.join(map(str, sorted(deep['image_size'].unique())))} px; the page's recorded section): "
                 + scaling.crossover_text(crossing(deep, float(deep["chance"].iloc[0])), later=chaser[0]))
    return text


def _gain(cell_hi: dict, cell_lo: dict) -> list:
    return [(+1, cell_hi), (-1, cell_lo)]


def _gap_change(a: dict, b: dict, lo: dict, hi: dict) -> list:
    """(a - b) at `hi` minus (a - b) at `lo`: does a gain on b as the cell changes from lo to hi?"""
    return [(+1, {**a, **hi}), (-1, {**b, **hi}), (-1, {**a, **lo}), (+1, {**b, **lo})]


def _with_robustness(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(**{"eff. robustness": effective_robustness(table)})


def _mean_over(cells: list[dict], a: dict, b: dict) -> list:
    """a - b averaged over `cells` (e.g. every budget), as contrast terms."""
    w = 1 / len(cells)
    return [t for cell in cells for t in ((w, {**a, **cell}), (-w, {**b, **cell}))]


RETRIEVAL = ("i2t R@1", "t2i R@1")


# ---- A1: data quantity x epochs (table: pool, epochs) ----

def _quantity(t: pd.DataFrame):
    small, large = t["pool"].min(), t["pool"].max()
    few, many = t["epochs"].min(), t["epochs"].max()
    return small, large, few, many


def _epochs_help_large_more(t: pd.DataFrame, chance: float, metric: str) -> dict:
    small, large, few, many = _quantity(t)
    return test(t, f"{few:g} -> {many:g} epochs gains more on {large:,} pairs than on {small:,} ({metric})", metric,
                _gap_change({"pool": large}, {"pool": small}, {"epochs": few}, {"epochs": many}), chance)


@claim("A1.epochs", "data_quantity", "data", "More epochs help a large dataset, barely a small one",
       "for smaller datasets (e.g., 25M), increasing epochs did not significantly improve ImageNet performance. "
       "In contrast, larger datasets (e.g., 400M) benefited from more epochs.", f"{A}, Data quantity, Fig. 1",
       "interaction (difference of differences)", "WebLI subsets 10M-400M, 2-32 epochs, ViT-B/32, ImageNet zero-shot")
def _(t, chance):
    return _epochs_help_large_more(t, chance, "zero-shot")


@claim("A1.shifts", "data_quantity", "data", "Distribution shifts follow the same pattern",
       "zero-shot performance on ImageNet variants followed a similar pattern: larger datasets and longer training "
       "improved performance", f"{A}, Data quantity, Fig. 1", "interaction (difference of differences)",
       "the six ImageNet shifts, 10M-400M, 2-32 epochs",
       "yes: the same contrast on the mean of our held-out styles (no ImageNet-A analogue)")
def _(t, chance):
    return _epochs_help_large_more(t, chance, "shifts")


@claim("A1.few-shot", "data_quantity", "data", "Few-shot follows the same pattern",
       "the few-shot performance also showed a similar trend to the zero-shot performance",
       f"{A}, Data quantity, Fig. 2", "interaction (difference of differences)", "ImageNet 5/10-shot, 10M-400M",
       "yes: 10-shot (closed-form least squares on frozen features)")
def _(t, chance):
    return _epochs_help_large_more(t, chance, "10-shot")


@claim("A1.retrieval-flat", "data_quantity", "data", "Retrieval stops improving after 8 epochs",
       "there was little to no improvement in both image retrieval and text retrieval performance when the number "
       "of epochs exceeded eight", f"{A}, Data quantity, Fig. 3", "equivalence (8 epochs vs the most), margin 1 point",
       "MSCOCO R@1, 8-32 epochs")
def _(t, chance):
    small, large, few, many = _quantity(t)
    if many <= 8 or 8 not in set(t["epochs"]):
        return beyond(f"retrieval after 8 epochs vs more; our grid's most epochs: {many:g}")
    parts = [equivalence(t, f"{metric} after {many:g} vs 8 epochs of {large:,} pairs", metric,
                         _gain({"pool": large, "epochs": many}, {"pool": large, "epochs": 8.0}), chance, margin=1.0)
             for metric in RETRIEVAL]
    return all_of("retrieval flat after 8 epochs, both directions", parts)


@claim("A1.why-overfit", "data_quantity", "data", "(why) a repeated small pool overfits more",
       "our check of why: at equal samples seen, repeating a small pool fits its own pairs beyond held-out scenes "
       "more than one pass over a pool that large", "our check", "difference (train-vs-held-out retrieval gap)",
       "–", ours=True)
def _(t, chance):
    small, large, few, many = _quantity(t)
    seen = int(round(small * many))
    if "fit gap" not in t or few != 1 or seen not in set(t.loc[t["epochs"] == few, "pool"]):
        return None
    return test(t, f"after {seen:,} samples, {small:,} pairs x {many:g} epochs overfit more than {seen:,} pairs x 1",
                "fit gap", _gain({"pool": small, "epochs": many}, {"pool": seen, "epochs": few}), chance)


# ---- A2: data quality (table: the main noise rate's runs; top, regime) ----

def _cut(top: float, regime: str = "equal samples") -> dict:
    return {"top": top, "regime": regime}


def _tops(t: pd.DataFrame) -> list[float]:
    return sorted(t["top"].unique())


@claim("A2.top40-one-epoch", "data_quality", "data", "A smaller, cleaner dataset beats a larger, noisier one",
       "the Top40% subset outperformed the entire dataset despite fewer iterations (abstract: a smaller dataset of "
       "high-quality data can outperform a larger dataset with lower quality)", f"{A}, abstract; Data quality, Fig. 4a",
       "difference", "WebLI top 20-80% by image-text similarity, one epoch of each, ViT-B/32",
       "yes: our pool's noise is planted (a share of mismatched, boilerplate and misnamed captions) and the "
       "scores are a reference CLIP's")
def _(t, chance):
    return test(t, "Top40% above the full pool, one epoch of each", "zero-shot",
                _gain(_cut(0.4, "one epoch"), _cut(1.0, "one epoch")), chance)


@claim("A2.quality-one-epoch", "data_quality", "data", "Higher-quality cuts give better zero-shot (one epoch)",
       "Models trained on these subsets for a single epoch demonstrated that higher quality data subsets yielded "
       "superior zero-shot performance on ImageNet.", f"{A}, Data quality, Fig. 4a", "trend (slope over the cuts)",
       "top 20-100%, one epoch of each")
def _(t, chance):
    t = t.assign(**{"top %": 100 * t["top"]})
    return trend(t, "zero-shot falls as more of the pool is kept (slope over top %, sign flipped)", "zero-shot", "top %",
                 [_cut(top, "one epoch") for top in _tops(t)], chance, sign=-1)


@claim("A2.top40-best", "data_quality", "data", "Top40% is the best cut at equal samples",
       "When comparing datasets with an equal number of samples, the Top40% dataset achieved the best performance",
       f"{A}, Data quality, Fig. 4b", "best among every cut", "top 20-100%, the same samples seen")
def _(t, chance):
    return best_among(t, "Top40% above every other cut, equal samples", "zero-shot", _cut(0.4),
                      [_cut(top) for top in _tops(t) if top != 0.4], chance)


@claim("A2.few-shot", "data_quality", "data", "Higher quality gives better 5- and 10-shot at equal samples",
       "when the number of sample data points is the same, higher quality datasets have superior 5-shot and 10-shot "
       "performance", f"{A}, Data quality, Fig. 5b", "trend (slope over the cuts), 5- and 10-shot",
       "top 20-100%, the same samples seen")
def _(t, chance):
    t = t.assign(**{"top %": 100 * t["top"]})
    return all_of("5- and 10-shot fall as more of the pool is kept, equal samples",
                  [trend(t, f"{metric} falls as more is kept", metric, "top %", [_cut(top) for top in _tops(t)], chance,
                         sign=-1) for metric in ("5-shot", "10-shot")])


@claim("A2.top80-retrieval", "data_quality", "data", "Top80% is the best cut at retrieval",
       "the top 80% datasets in particular show the most impressive retrieval performance",
       f"{A}, Data quality, Fig. 6", "best among every cut, both retrieval directions, both regimes",
       "MSCOCO R@1, top 20-100%, one epoch and equal samples")
def _(t, chance):
    return all_of("Top80% above every other cut at image->text and text->image R@1, one epoch and equal samples",
                  [best_among(t, f"Top80% best at {metric}, {regime}", metric, _cut(0.8, regime),
                              [_cut(top, regime) for top in _tops(t) if top != 0.8], chance)
                   for regime in ("one epoch", "equal samples") for metric in RETRIEVAL])


# ---- A3: ViT size (table: model, samples; one epoch per pool) ----

def _towers(t: pd.DataFrame):
    one = t[t["epochs"] == 1]
    order = list(one.groupby("model")["gflops_per_sample"].first().sort_values().index)
    return one, order, sorted(one["samples"].unique())


@claim("A3.not-consistent", "vit_size", "architecture", "Below 100M samples the largest ViT does not consistently win",
       "larger vision encoders (e.g., ViT-L/16) did not consistently outperform smaller ones when the sample size was "
       "under 100M", f"{A}, ViT variants, Fig. 7", "some smaller tower above the largest at some budget",
       "ViT-Ti/16 to L/16, one epoch of 10M-3.4B samples", "yes: every budget of ours is under 100M samples")
def _(t, chance):
    one, order, budgets = _towers(t)
    largest = order[-1]
    return any_of(f"some smaller tower above `{largest}` at some budget (under 100M samples)",
                   [test(one, f"`{small}` above `{largest}` after {n:,} samples", "zero-shot",
                         _gain({"model": small, "samples": n}, {"model": largest, "samples": n}), chance)
                    for n in budgets for small in order[:-1]])


@claim("A3.gap-grows", "vit_size", "architecture", "Larger ViTs gain on smaller ones as data grows",
       "As the dataset size grows, the performance difference between larger ViTs and their smaller counterparts "
       "becomes more pronounced.", f"{A}, ViT variants, Figs. 7-8", "interaction (gap at the most samples minus the fewest)",
       "10M-3.4B samples, one epoch")
def _(t, chance):
    one, order, budgets = _towers(t)
    return test(one, f"(`{order[-1]}` - `{order[0]}`) grows from {budgets[0]:,} to {budgets[-1]:,} samples", "zero-shot",
                _gap_change({"model": order[-1]}, {"model": order[0]}, {"samples": budgets[0]}, {"samples": budgets[-1]}),
                chance)


@claim("A3.larger-wins", "vit_size", "architecture", "With enough data, larger ViTs win",
       "As data size increased, larger encoders showed better performance.", f"{A}, ViT variants, Fig. 7",
       "difference at >= 100M samples", "above 100M samples, one epoch", "yes where the grid reaches 100M samples")
def _(t, chance):
    one, order, budgets = _towers(t)
    v = test(one, f"`{order[-1]}` above `{order[0]}` after {budgets[-1]:,} samples", "zero-shot",
             _gain({"model": order[-1], "samples": budgets[-1]}, {"model": order[0], "samples": budgets[-1]}), chance)
    if budgets[-1] >= SAMPLES_100M:
        return v
    cross = _law_crossover(one, (f"`{order[0]}`", {"model": order[0]}), (f"`{order[-1]}`", {"model": order[-1]}),
                           "zero-shot", chance)  # the ViT-size page's fits
    return beyond(f"larger above smaller at >= 100M samples; our most: {budgets[-1]:,}; {cross}", v)


@claim("A3.linear", "vit_size", "architecture", "Shift accuracy is about linear in in-distribution accuracy",
       "accuracy trends across various datasets (ImageNet-R, ImageNet-Sketch, ImageNet-V2, ObjectNet) were nearly "
       "linear, except for ImageNet-A", f"{A}, ViT variants, appendix", "linearity (Pearson r over runs, per seed)",
       "every ViT run, four shifts", "partly: the mean of our held-out styles; no ImageNet-A analogue, so the "
       "exception is not tested; 'nearly linear' read as r above 0.9")
def _(t, chance):
    return linearity(t, "held-out styles linear in training-style accuracy", "zero-shot", "shifts")


@claim("A3.probe-small", "vit_size", "architecture", "With little data the largest ViT has the worst linear probe",
       "Linear probing results indicated that for smaller datasets, ViT-L/16 underperformed compared to smaller models",
       f"{A}, ViT variants, Fig. 9", "worst among the towers, at the fewest samples", "10M-100M samples")
def _(t, chance):
    one, order, budgets = _towers(t)
    return best_among(one, f"`{order[-1]}` below every smaller tower after {budgets[0]:,} samples", "linear probe",
                      {"model": order[-1]}, [{"model": m} for m in order[:-1]], chance, at={"samples": budgets[0]},
                      worst=True)


@claim("A3.probe-large", "vit_size", "architecture", "With more data the largest ViT has the best linear probe",
       "but excelled with more data", f"{A}, ViT variants, Fig. 9", "crossover", "up to 3.4B samples")
def _(t, chance):
    one, order, budgets = _towers(t)
    hi = best_among(one, f"`{order[-1]}` above every smaller tower after {budgets[-1]:,} samples", "linear probe",
                    {"model": order[-1]}, [{"model": m} for m in order[:-1]], chance, at={"samples": budgets[-1]})
    proxy = test(one, f"(`{order[-1]}` - `{order[0]}`) linear probe grows with samples", "linear probe",
                 _gap_change({"model": order[-1]}, {"model": order[0]}, {"samples": budgets[0]},
                             {"samples": budgets[-1]}), chance)
    return _crossover(hi, proxy, f"{budgets[-1]:,} samples")


@claim("A3.robust", "vit_size", "architecture", "Larger ViTs are more robust",
       "Larger ViTs demonstrated better robustness on out-of-distribution datasets.", f"{A}, ViT variants",
       "effective robustness (shift accuracy above the line through every run)", "ImageNet shifts, 3.4B samples",
       "yes: effective robustness over our held-out styles, averaged over the budgets")
def _(t, chance):
    one, order, budgets = _towers(t)
    return test(_with_robustness(one), f"`{order[-1]}` above `{order[0]}` in effective robustness", "eff. robustness",
                _mean_over([{"samples": n} for n in budgets], {"model": order[-1]}, {"model": order[0]}), chance)


@claim("A3.retrieval-small", "vit_size", "architecture", "With little data the largest ViT retrieves worst",
       "Retrieval tasks showed ViT-L/16 performed poorly with less than 100M samples",
       f"{A}, ViT variants, Fig. 10", "worst among the towers, every budget, both directions", "under 100M samples")
def _(t, chance):
    one, order, budgets = _towers(t)
    return all_of(f"`{order[-1]}` below every smaller tower at R@1, every budget, both directions",
                  [best_among(one, f"`{order[-1]}` worst at {metric} after {n:,}", metric, {"model": order[-1]},
                              [{"model": m} for m in order[:-1]], chance, at={"samples": n}, worst=True)
                   for n in budgets for metric in RETRIEVAL])


@claim("A3.retrieval-benefit", "vit_size", "architecture", "The largest ViT gains more retrieval from more data",
       "but improved with more data, aligning with zero-shot trends and benefiting more from larger datasets "
       "compared to smaller models", f"{A}, ViT variants, Fig. 10", "interaction, both directions", "10M-3.4B samples")
def _(t, chance):
    one, order, budgets = _towers(t)
    return all_of(f"(`{order[-1]}` - `{order[0]}`) R@1 grows from {budgets[0]:,} to {budgets[-1]:,} samples",
                  [test(one, f"{metric} gap grows", metric,
                        _gap_change({"model": order[-1]}, {"model": order[0]}, {"samples": budgets[0]},
                                    {"samples": budgets[-1]}), chance) for metric in RETRIEVAL])


@claim("A.frontier", "vit_size", "architecture", "The compute-optimal ViT grows with the budget",
       "smaller ViT models are better suited for smaller datasets, while larger models perform better on larger "
       "datasets with fixed compute", f"{A}, abstract; conclusion", "compute frontier (per seed)",
       "every ViT size on a compute axis (GFLOPs per sample x samples)",
       "yes: on the ViT-size runs only (same recipe, input and strategy; no pre-training compute to count)")
def _(t, chance):
    return frontier(t, "the tower on the error-vs-compute frontier at the most compute is larger than at the least",
                    chance)


# ---- A4: CNN vs ViT at similar FLOPs (table: model, samples) ----

VIT, CNN, MIXER = "vit-b-16", "rn50", "mixer-b-16"
MIXER_FAITHFUL = ("partly: Mixer-B/16 fed 64 px, at laptop trained at lr 3e-4 (chapters.MIXER_LR) where ViT and "
                  "ResNet train at 1e-3: at 1e-3 it stays at chance (the calibration page)")


def _budgets(t: pd.DataFrame):
    return {"samples": t["samples"].min()}, {"samples": t["samples"].max()}


def _vit_overtakes_resnet(t: pd.DataFrame, chance: float, metrics: list[str]) -> dict:
    """ViT above ResNet on every one of `metrics` at the most samples (a crossover: beyond our grid
    unless it shows there), with ViT's gain on ResNet from the fewest samples on the first metric shown."""
    lo, hi = _budgets(t)
    parts = [test(t, f"`{VIT}` above `{CNN}` at {metric} after {hi['samples']:,} samples", metric,
                  _gain({"model": VIT, **hi}, {"model": CNN, **hi}), chance) for metric in metrics]
    reached = parts[0] if len(parts) == 1 else all_of(f"`{VIT}` above `{CNN}` after {hi['samples']:,} samples at "
                                                      + " and ".join(metrics), parts)
    proxy = test(t, f"`{VIT}` gains on `{CNN}` at {metrics[0]} from {lo['samples']:,} to {hi['samples']:,} samples",
                 metrics[0], _gap_change({"model": VIT}, {"model": CNN}, lo, hi), chance)
    return _crossover(reached, proxy, f"{hi['samples']:,} samples", lambda: "; ".join(
        _law_crossover(t, (f"`{CNN}`", {"model": CNN}), (f"`{VIT}`", {"model": VIT}), metric, chance, "cnn_vs_vit")
        for metric in metrics))


@claim("A4.resnet-first", "cnn_vs_vit", "architecture", "With few samples ResNet beats ViT (zero-shot)",
       "when considering limited data samples, ResNet-50 performs better initially", f"{A}, Architectures, Fig. 11a",
       "difference at the fewest samples", "ViT-B/32, ResNet-50, ConvNeXt-T, Swin-T, Mixer-B/32 at similar FLOPs",
       "partly: ResNet-50 vs ViT-B/16 and Mixer-B/16 at 64 px; no ConvNeXt or Swin in the laptop grid")
def _(t, chance):
    lo, hi = _budgets(t)
    return test(t, f"`{CNN}` above `{VIT}` after {lo['samples']:,} samples", "zero-shot",
                _gain({"model": CNN, **lo}, {"model": VIT, **lo}), chance)


@claim("A4.vit-later", "cnn_vs_vit", "architecture", "With more samples ViT overtakes ResNet (zero-shot)",
       "but ViT-B/32 achieves superior performance with more samples", f"{A}, Architectures, Fig. 11a", "crossover",
       "up to 3.4B samples")
def _(t, chance):
    return _vit_overtakes_resnet(t, chance, ["zero-shot"])


@claim("A4.mixer-probe", "cnn_vs_vit", "architecture", "With few samples Mixer has the best linear probe",
       "In linear probing, MLP-Mixer outperforms others with fewer samples", f"{A}, Architectures, Fig. 11",
       "best among the towers, at the fewest samples", "the five towers, few samples", MIXER_FAITHFUL)
def _(t, chance):
    lo, hi = _budgets(t)
    return best_among(t, f"`{MIXER}` above every other tower after {lo['samples']:,} samples", "linear probe",
                      {"model": MIXER}, [{"model": VIT}, {"model": CNN}], chance, at=lo)


@claim("A4.vit-probe-later", "cnn_vs_vit", "architecture", "With more samples ViT has the best linear probe",
       "but ViT-B/32 excels with larger datasets", f"{A}, Architectures, Fig. 11", "crossover", "up to 3.4B samples")
def _(t, chance):
    lo, hi = _budgets(t)
    reached = best_among(t, f"`{VIT}` above every other tower after {hi['samples']:,} samples", "linear probe",
                         {"model": VIT}, [{"model": CNN}, {"model": MIXER}], chance, at=hi)
    proxy = test(t, f"`{VIT}` gains on `{MIXER}` in linear probe with samples", "linear probe",
                 _gap_change({"model": VIT}, {"model": MIXER}, lo, hi), chance)
    return _crossover(reached, proxy, f"{hi['samples']:,} samples")


@claim("A4.robust", "cnn_vs_vit", "architecture", "ViT and Mixer are more robust than ResNet",
       "ViT and MLP-Mixer show better robustness, likely due to their lower inductive bias",
       f"{A}, Architectures, Fig. 11b", "effective robustness, each vs ResNet", "ImageNet shifts", MIXER_FAITHFUL)
def _(t, chance):
    lo, hi = _budgets(t)
    r = _with_robustness(t)
    return all_of("ViT and Mixer above ResNet in effective robustness (averaged over both budgets)",
                  [test(r, f"`{m}` above `{CNN}` in effective robustness", "eff. robustness",
                        _mean_over([lo, hi], {"model": m}, {"model": CNN}), chance) for m in (VIT, MIXER)])


@claim("A4.resnet-retrieval-first", "cnn_vs_vit", "architecture", "With few samples ResNet retrieves better than ViT",
       "For retrieval tasks, ResNet-50 is better with smaller sample sizes", f"{A}, Architectures",
       "difference at the fewest samples, both directions", "MSCOCO R@1, few samples")
def _(t, chance):
    lo, hi = _budgets(t)
    return all_of(f"`{CNN}` above `{VIT}` at R@1 after {lo['samples']:,} samples, both directions",
                  [test(t, f"{metric}", metric, _gain({"model": CNN, **lo}, {"model": VIT, **lo}), chance)
                   for metric in RETRIEVAL])


@claim("A4.vit-retrieval-later", "cnn_vs_vit", "architecture", "With more samples ViT overtakes ResNet at retrieval",
       "but ViT-B/32 surpasses it as sample sizes increase", f"{A}, Architectures", "crossover, both directions",
       "MSCOCO R@1, up to 3.4B samples")
def _(t, chance):
    return _vit_overtakes_resnet(t, chance, list(RETRIEVAL))


@claim("A4.mixer-retrieval", "cnn_vs_vit", "architecture", "Mixer retrieves worst",
       "Mixer-B/32 performs poorly in retrieval tasks", f"{A}, Architectures",
       "worst among the towers, every budget, both directions", "MSCOCO R@1", MIXER_FAITHFUL)
def _(t, chance):
    lo, hi = _budgets(t)
    return all_of(f"`{MIXER}` below every other tower at R@1, both budgets and directions",
                  [best_among(t, f"`{MIXER}` worst at {metric} after {at['samples']:,}", metric, {"model": MIXER},
                              [{"model": VIT}, {"model": CNN}], chance, at=at, worst=True)
                   for at in (lo, hi) for metric in RETRIEVAL])


# ---- A5: training strategies (table: strategy fields, pool, samples) ----

CLIP, SLIP, FLIP, AUG = (arm(s) for s in (chapters.CLIP, chapters.SLIP, chapters.FLIP, chapters.CLIP_AUG))
SIGLIP, TOME = arm(chapters.SIGLIP), arm(chapters.TOME)


def _strategy_cells(t: pd.DataFrame):
    """The one-epoch cell (the largest pool, one epoch), the several-epoch cell (the next pool, at
    CLIP's most samples there) and SLIP's equal-compute cell (half those samples on that pool)."""
    one = {"pool": t["pool"].max(), "epochs": 1.0}
    multi = t.loc[(t["pool"] < one["pool"]) & (t["epochs"] > 1), "pool"].max()  # not the smaller one-epoch pools
    samples = int(t.loc[(t["pool"] == multi) & (t["ssl_scale"] == 0), "samples"].max())
    return one, {"pool": multi, "samples": samples}, {"pool": multi, "samples": samples // 2}


def _slip_one_epoch(t, chance):
    one, several, half = _strategy_cells(t)
    return best_among(t, f"SLIP above CLIP and FLIP, one epoch of {one['pool']:,} pairs", "zero-shot", SLIP,
                      [CLIP, FLIP], chance, at=one)


def _slip_equal_compute(t, chance):
    one, several, half = _strategy_cells(t)
    parts = [test(t, f"SLIP ({half['samples']:,} samples) below {strategy(other)} ({several['samples']:,})", "zero-shot",
                  [(+1, {**other, **several}), (-1, {**SLIP, **half})], chance) for other in (CLIP, FLIP, AUG)]
    return all_of("SLIP at half the samples below every other strategy", parts)


@claim("A5.slip-one-epoch", "strategies", "strategies", "Below ~1B samples SLIP beats CLIP and FLIP",
       "SLIP outperforms CLIP and FLIP when training samples are under one billion", f"{A}, Strategies, zero-shot, Fig. 13",
       "best among CLIP and FLIP, one epoch", "one epoch of up to 1B samples")
def _(t, chance):
    return _slip_one_epoch(t, chance)


@claim("A5.slip-overtaken", "strategies", "strategies", "Beyond ~1B samples CLIP and FLIP overtake SLIP",
       "as sample size increases, CLIP and FLIP surpass SLIP", f"{A}, Strategies, zero-shot, Fig. 13", "crossover",
       "above 1B samples")
def _(t, chance):
    one = t[t["epochs"] == 1.0]  # one epoch of pools of growing size: samples seen = pool
    predicted = "; ".join(_law_crossover(one, ("SLIP", SLIP), (name, other), "zero-shot", chance, "strategies")
                          for name, other in (("CLIP", CLIP), ("FLIP", FLIP)))
    return beyond(f"CLIP and FLIP above SLIP beyond ~1B samples; our most: {int(t['samples'].max()):,}; {predicted}")


@claim("A5.slip-equal-compute", "strategies", "strategies", "At equal compute SLIP is the worst",
       "SLIP is twice as computationally expensive as CLIP and performs worst in zero-shot tasks when costs are equal",
       f"{A}, Strategies, zero-shot", "worst among every strategy, at about equal compute", "equal training FLOPs",
       "approximately: SLIP at half the samples (its two extra views about double its cost; the page shows the "
       "measured ratio); FLIP's runs cost less than CLIP's, which favours SLIP")
def _(t, chance):
    return _slip_equal_compute(t, chance)


@claim("A.strategy-compute", "strategies", "strategies", "The best strategy depends on the compute budget",
       "the choice of training strategy depends on the available compute resource", f"{A}, abstract",
       "both: SLIP best at equal samples, worst at equal compute", "one epoch vs equal compute",
       "as paper A argues it: SLIP best when samples are scarce but compute is not, worst when compute is the limit")
def _(t, chance):
    return all_of("SLIP best at one epoch, worst at equal compute", [_slip_one_epoch(t, chance),
                                                                      _slip_equal_compute(t, chance)])


@claim("A5.aug-several", "strategies", "strategies", "CLIP + augmentation improves CLIP with several epochs",
       "Data augmentation, particularly CLIP + Data Aug, improves performance and generalization on ImageNet and its "
       "variants without extra computational costs, especially for larger datasets and multiple epochs",
       f"{A}, Strategies, zero-shot, Fig. 13", "difference, zero-shot and shifts", "several epochs")
def _(t, chance):
    one, several, half = _strategy_cells(t)
    return all_of("CLIP + Aug above CLIP after several epochs, zero-shot and shifts",
                  [test(t, f"{metric}", metric, _gain({**AUG, **several}, {**CLIP, **several}), chance)
                   for metric in ("zero-shot", "shifts")])


@claim("A5.aug-probe", "strategies", "strategies", "CLIP + augmentation has the best linear probe",
       "vision encoders trained with CLIP + Data Aug consistently outperformed the other strategies, particularly on "
       "OOD datasets", f"{A}, Strategies, linear probing, Fig. 14", "best among every strategy, both cells",
       "linear probes on ImageNet and its shifts",
       "partly: our linear probe is on the training style; no linear probes on the held-out styles")
def _(t, chance):
    one, several, half = _strategy_cells(t)
    return all_of("CLIP + Aug above every other strategy in linear probe, one epoch and several",
                  [best_among(t, f"CLIP + Aug best, {'one epoch' if at is one else 'several epochs'}", "linear probe",
                              AUG, [CLIP, SLIP, FLIP], chance, at=at) for at in (one, several)])


@claim("A5.robust", "strategies", "strategies", "CLIP and CLIP + augmentation are more robust than SLIP",
       "CLIP and CLIP + Data Aug also showed better robustness than SLIP with similar ImageNet accuracy",
       f"{A}, Strategies, linear probing", "effective robustness, each vs SLIP", "ImageNet shifts")
def _(t, chance):
    one, several, half = _strategy_cells(t)
    r = _with_robustness(t)
    return all_of("CLIP and CLIP + Aug above SLIP in effective robustness (averaged over both cells)",
                  [test(r, f"{strategy(s)} above SLIP", "eff. robustness", _mean_over([one, several], s, SLIP), chance)
                   for s in (CLIP, AUG)])


@claim("A5.slip-retrieval", "strategies", "strategies", "SLIP is the best at retrieval, everywhere",
       "SLIP consistently outperformed CLIP, CLIP + Data Aug, and FLIP on both image and text retrieval across all "
       "dataset sizes", f"{A}, Strategies, retrieval, Fig. 15", "best among every strategy, both directions, both cells",
       "MSCOCO R@1, every dataset size")
def _(t, chance):
    one, several, half = _strategy_cells(t)
    return all_of("SLIP above every other strategy at both R@1, one epoch and several",
                  [best_among(t, f"SLIP best at {metric}, {'one epoch' if at is one else 'several epochs'}", metric,
                              SLIP, [CLIP, AUG, FLIP], chance, at=at) for at in (one, several) for metric in RETRIEVAL])


# ---- A6: augmentation (table: augment, pool) ----

@claim("A6.each-aug", "augmentation", "strategies", "Every augmentation beats none",
       "consistent performance improvements of all three methods over raw CLIP", f"{A}, Strategies, Fig. 12",
       "difference, every augmentation and pool", "30 epochs on four subsets")
def _(t, chance):
    return all_of("crop & flip, RandAugment and Stacked RandAugment each above none, on every pool",
                  [test(t, f"{aug} above none on {pool:,} pairs", "zero-shot",
                        _gain({"augment": aug, "pool": pool}, {"augment": "none", "pool": pool}), chance)
                   for aug in ("crop_flip", "randaugment", "stacked_randaugment") for pool in sorted(t["pool"].unique())])


HALF_DATA_MARGIN = 2.0  # points of zero-shot: "comparable" (paper A gives no margin)


@claim("A6.half-data", "augmentation", "strategies", "Stacked RandAugment on half the data matches none on all of it",
       "the Stacked RA model trained on a dataset half the size achieving similar results (abstract: CLIP+Data "
       "Augmentation can achieve comparable performance to CLIP using only half of the training data)",
       f"{A}, abstract; Strategies, Fig. 12", f"equivalence (TOST), margin ±{HALF_DATA_MARGIN:g} points",
       "30 epochs, half vs full subset")
def _(t, chance):
    pools = sorted(t["pool"].unique())
    parts = [equivalence(t, f"Stacked RA on {half:,} pairs vs none on {2 * half:,}", "zero-shot",
                         _gain({"augment": "stacked_randaugment", "pool": half}, {"augment": "none", "pool": 2 * half}),
                         chance, margin=HALF_DATA_MARGIN) for half in pools if 2 * half in pools]
    return parts[0] if len(parts) == 1 else all_of("Stacked RA on half the data matches none on the full", parts)


@claim("A6.crop-cause", "augmentation", "strategies", "(crops) Stacked RandAugment hurts less without its crop and flip",
       "is 'augmentation hurts' here about augmentation, or about crops that cut out emoji the caption names?",
       "our check", "difference, every pool", "–", ours=True)
def _(t, chance):
    if not (t["augment"] == "stacked_randaugment_nocrop").any():  # profiles without the check's runs (gpu, real)
        return None
    return all_of("Stacked RA without its crop and flip above Stacked RA, on every pool",
                  [test(t, f"without crop above with, on {pool:,} pairs", "zero-shot",
                        _gain({"augment": "stacked_randaugment_nocrop", "pool": pool},
                              {"augment": "stacked_randaugment", "pool": pool}), chance)
                   for pool in sorted(t["pool"].unique())])


# ---- B: pre-trained towers and tricks (table: B2 cells on the largest pool, B1 on the smallest) ----

TEXT, IMAGE = arm(chapters.MINILM), arm(chapters.SIMCLR)
BOTH = arm({**chapters.MINILM, **chapters.SIMCLR})
ON_IMAGE = {name: arm({**chapters.SIMCLR, **s}) for name, s in
            (("FLIP", chapters.FLIP), ("SigLIP", chapters.SIGLIP), ("ToMe", chapters.TOME))}
SIGLIP_BOTH = arm({**chapters.SIGLIP, **chapters.MINILM, **chapters.SIMCLR})
B_SETTING = "CC3M, 24 epochs, batch 2048, a pre-trained DINO ViT tuned"
B1_FAITHFUL = ("partly: one epoch of a quarter of our pool (paper B: 24 epochs of CC3M); MiniLM for XLM-RoBERTa, "
               "SimCLR on our world's images for DINO; towers tuned as in B")
B2_FAITHFUL = ("partly: on our SimCLR-pre-trained image tower, tuned (B's setting), but one epoch of a quarter of "
               "our pool, not 24 epochs")


def _b1(t: pd.DataFrame) -> pd.DataFrame:
    return t[t["pool"] == t["pool"].min()]


def _b2(t: pd.DataFrame) -> pd.DataFrame:
    """The B2 cells at the world's own image size (the FLIP check's larger input left out)."""
    return t[(t["pool"] == t["pool"].max()) & (t["image_size"] == t["image_size"].min())]


def _fed_larger(t: pd.DataFrame) -> pd.DataFrame:
    """The FLIP check's cells: the B2 pool fed to the tower larger than the world's images."""
    return t[(t["pool"] == t["pool"].max()) & (t["image_size"] > t["image_size"].min())]


@claim("B1.scratch-weakest", "tricks", "tricks", "Towers from scratch are the weakest",
       "training from scratch (i.e., CLIP) the vision and text encoders on the image-text data yields the weakest "
       "performance", f"{B}, Fig. 2", "worst among scratch, text, image and both pre-trained", B_SETTING, B1_FAITHFUL)
def _(t, chance):
    return best_among(_b1(t), "scratch below every pre-trained arm", "zero-shot", CLIP, [TEXT, IMAGE, BOTH], chance,
                      worst=True)


@claim("B1.text-moderate", "tricks", "tricks", "A pre-trained text tower helps, but less than an image tower",
       "Using a pre-trained RoBERTa encoder improves the performance only moderately", f"{B}, Fig. 2",
       "difference (text - scratch) and (image - text)", B_SETTING, B1_FAITHFUL)
def _(t, chance):
    b1 = _b1(t)
    return all_of("pre-trained text above scratch, and below pre-trained image",
                  [test(b1, "text above scratch", "zero-shot", _gain(TEXT, CLIP), chance),
                   test(b1, "image above text", "zero-shot", _gain(IMAGE, TEXT), chance)])


@claim("B1.image-boost", "tricks", "tricks", "A pre-trained image tower helps a lot",
       "using a pre-trained image-encoder (DINO) yields a significant performance boost", f"{B}, Fig. 2",
       "difference (image - scratch)", B_SETTING, B1_FAITHFUL)
def _(t, chance):
    return test(_b1(t), "pre-trained image above scratch", "zero-shot", _gain(IMAGE, CLIP), chance)


@claim("B1.both-best", "tricks", "tricks", "Both pre-trained towers give the highest accuracy",
       "employing both a pre-trained image and text encoder yields the highest performance", f"{B}, Fig. 2",
       "best among scratch, text, image and both", B_SETTING, B1_FAITHFUL)
def _(t, chance):
    return best_among(_b1(t), "both above every other arm", "zero-shot", BOTH, [CLIP, TEXT, IMAGE], chance)


@claim("B.lit-tuned", "tricks", "tricks", "Language-image training still improves a pre-trained image tower",
       "Unimodal self-supervised pretraining of a vision model directly shows a strong ImageNet zero-shot accuracy, "
       "yet language-image pretraining still improves it", f"{B}, abstract", "difference (tuned - locked image tower)",
       "DINO ViT, CC3M", "our reading: 'directly' = the pre-trained image tower locked (LiT), 'still improves' = "
       "tuning it with the image-text loss")
def _(t, chance):
    return test(_b1(t), "pre-trained image tower tuned above locked", "zero-shot",
                _gain(IMAGE, arm({**chapters.SIMCLR, "lock_image": True})), chance)


@claim("B.siglip-pretrained", "tricks", "tricks", "SigLIP on both pre-trained towers is the most sample-efficient",
       "training on image-text paired data using a sigmoid loss, while starting from self-supervised pre-trained image "
       "and text encoders is the most sample efficient", f"{B}, conclusion; introduction",
       "best among every arm of B's at equal samples", B_SETTING, B1_FAITHFUL + "; SigLIP with both towers tuned")
def _(t, chance):
    rivals = [CLIP, TEXT, IMAGE, BOTH, *ON_IMAGE.values()]
    return best_among(_b1(t), "SigLIP with both pre-trained towers above every other arm", "zero-shot", SIGLIP_BOTH,
                      rivals, chance)


@claim("B2.flip-worse", "tricks", "tricks", "FLIP is worse than CLIP at this scale",
       "FLIP training performs even worse than regular the CLIP, when trained on CC3M", f"{B}, Fig. 3",
       "difference (CLIP - FLIP) on a pre-trained image tower", B_SETTING, B2_FAITHFUL)
def _(t, chance):
    return test(_b1(t), "CLIP above FLIP, pre-trained image tower", "zero-shot", _gain(IMAGE, ON_IMAGE["FLIP"]), chance)


@claim("B2.siglip-best", "tricks", "tricks", "SigLIP beats every other method (+9 points over CLIP)",
       "employing SigLip outperforms all methods we experiment with (yields 9% higher top-1 ImageNet accuracy over "
       "CLIP)", f"{B}, Fig. 3", "best among CLIP, FLIP and ToMe on a pre-trained image tower", B_SETTING, B2_FAITHFUL,
       paper_effect=9.0)
def _(t, chance):
    v = best_among(_b1(t), "SigLIP above CLIP, FLIP and ToMe, pre-trained image tower", "zero-shot", ON_IMAGE["SigLIP"],
                   [IMAGE, ON_IMAGE["FLIP"], ON_IMAGE["ToMe"]], chance)
    return {**v, "magnitude": v["parts"][0]}  # the paper's +9 is over CLIP


@claim("B2.tome-lower", "tricks", "tricks", "Token merging lowers accuracy",
       "TokenMerge [...] negatively affects the performance of CLIP", f"{B}, Fig. 3; conclusion",
       "difference (CLIP - ToMe) on a pre-trained image tower", B_SETTING, B2_FAITHFUL)
def _(t, chance):
    return test(_b1(t), "CLIP above ToMe, pre-trained image tower", "zero-shot", _gain(IMAGE, ON_IMAGE["ToMe"]), chance)


# our checks: paper B's tricks from scratch, and locked towers (LiT, paper B's future work)

@claim("B2.scratch-flip", "tricks", "tricks", "(from scratch) FLIP below CLIP", "paper B's FLIP claim, from scratch",
       "our check", "difference", "–", ours=True)
def _(t, chance):
    return test(_b2(t), "CLIP above FLIP, from scratch", "zero-shot", _gain(CLIP, FLIP), chance)


@claim("B2.scratch-flip-64px", "tricks", "tricks", "(from scratch, 64 px) FLIP below CLIP with 64 patches",
       "does the from-scratch FLIP verdict change when FLIP drops half of 64 patches, not of 16?", "our check",
       "difference (CLIP - FLIP), the 32 px pool fed at 64 px", "–", ours=True)
def _(t, chance):
    larger = _fed_larger(t)
    if larger.empty:  # profiles without the check's runs (gpu, real: their runs are at 64 px already)
        return None
    return test(larger, f"CLIP above FLIP, from scratch, fed {larger['image_size'].max()} px", "zero-shot",
                _gain(CLIP, FLIP), chance)


@claim("B2.scratch-tome", "tricks", "tricks", "(from scratch) ToMe below CLIP", "paper B's ToMe claim, from scratch",
       "our check", "difference", "–", ours=True)
def _(t, chance):
    return test(_b2(t), "CLIP above ToMe, from scratch", "zero-shot", _gain(CLIP, TOME), chance)


@claim("B2.scratch-siglip", "tricks", "tricks", "(from scratch) SigLIP above CLIP, FLIP and ToMe",
       "paper B's SigLIP claim, from scratch", "our check", "best among CLIP, FLIP and ToMe (B2.siglip-best's rivals)",
       "–", ours=True)
def _(t, chance):
    return best_among(_b2(t), "SigLIP above CLIP, FLIP and ToMe, from scratch", "zero-shot", SIGLIP,
                      [CLIP, FLIP, TOME], chance)


@claim("B2.scratch-siglip-bias", "tricks", "tricks", "(from scratch) SigLIP above CLIP, FLIP and ToMe with its bias started for our batch",
       "does the from-scratch SigLIP verdict survive a bias started at -log(63) instead of -10?", "our check",
       "best among CLIP, FLIP and ToMe (B2.scratch-siglip's rivals)", "–", ours=True)
def _(t, chance):
    if not (t["logit_bias"] != -10.0).any():  # profiles without the check's runs (gpu, real)
        return None
    return best_among(_b2(t), "SigLIP (bias from -4.14) above CLIP, FLIP and ToMe, from scratch", "zero-shot",
                      arm(chapters.SIGLIP_PRIOR), [CLIP, FLIP, TOME], chance)


@claim("B4.lit", "tricks", "tricks", "(LiT) locked pre-trained towers above tuned ones",
       "the pre-trained backbones may be locked (i.e., LiT way of pre-training)", f"{B}, future work", "difference",
       "–", ours=True)
def _(t, chance):
    b1 = _b1(t)
    locked_text, locked_image = arm({**chapters.MINILM, "lock_text": True}), arm({**chapters.SIMCLR, "lock_image": True})
    locked = arm({**chapters.MINILM, **chapters.SIMCLR, "lock_text": True, "lock_image": True})
    return all_of("text, image and both locked, each above tuned",
                  [test(b1, f"{name} locked above tuned", "zero-shot", _gain(lock, tuned), chance)
                   for name, lock, tuned in (("text", locked_text, TEXT), ("image", locked_image, IMAGE),
                                             ("both", locked, BOTH))])


@claim("B4.lit-siglip", "tricks", "tricks", "(LiT) SigLIP adds to both locked towers",
       "paper B's SigLIP-on-both claim, towers locked", "our check", "difference", "–", ours=True)
def _(t, chance):
    locked = {**chapters.MINILM, **chapters.SIMCLR, "lock_text": True, "lock_image": True}
    return test(_b1(t), "SigLIP above CLIP, both towers locked", "zero-shot",
                _gain(arm({**locked, **chapters.SIGLIP}), arm(locked)), chance)


# ---- B3: throughput (rows of benchmarks/strategies.py: strategy, round, samples_per_s) ----

SIGLIP_FLIP, SIGLIP_TOME = arm({**chapters.SIGLIP, **chapters.FLIP}), arm({**chapters.SIGLIP, **chapters.TOME})
B3_FAITHFUL = "yes: samples/s on one CPU process, everything but the strategy held equal (B: per GPU)"


@claim("B3.tome", "throughput", "throughput", "Token merging raises throughput (+16%)",
       "Our token merging implementation has 16% higher throughput than standard CLIP", f"{B}, Fig. 4",
       "% gain per benchmark round", "per-GPU samples/s", B3_FAITHFUL, paper_effect=16.0)
def _(rows, chance):
    return throughput(rows, "ToMe above CLIP in samples/s", strategy(TOME), strategy(CLIP))


@claim("B3.flip", "throughput", "throughput", "FLIP raises throughput (+23%)",
       "our FLIP implementation has 23% higher throughput than standard CLIP", f"{B}, Fig. 4",
       "% gain per benchmark round", "per-GPU samples/s", B3_FAITHFUL, paper_effect=23.0)
def _(rows, chance):
    return throughput(rows, "FLIP above CLIP in samples/s", strategy(FLIP), strategy(CLIP))


@claim("B3.siglip", "throughput", "throughput", "SigLIP adds about 1% to CLIP's and FLIP's throughput",
       "Using SigLip increases both CLIP and FLIP throughput by another 1%", f"{B}, Fig. 4",
       "% gain per benchmark round, on CLIP and on FLIP", "per-GPU samples/s", B3_FAITHFUL, paper_effect=1.0)
def _(rows, chance):
    return all_of("SigLIP above CLIP, and SigLIP+FLIP above FLIP, in samples/s",
                  [throughput(rows, "SigLIP above CLIP", strategy(SIGLIP), strategy(CLIP)),
                   throughput(rows, "SigLIP+FLIP above FLIP", strategy(SIGLIP_FLIP), strategy(FLIP))])


@claim("B3.sigflip-fastest", "throughput", "throughput", "SigLIP + FLIP is the fastest",
       "Training speed [...] is highest for SigFLIP", f"{B}, Fig. 4", "best among B's six methods",
       "per-GPU samples/s", B3_FAITHFUL)
def _(rows, chance):
    return all_of("SigLIP+FLIP above each of CLIP, FLIP, SigLIP, ToMe and SigLIP+ToMe in samples/s",
                  [throughput(rows, f"SigLIP+FLIP above {strategy(other)}", strategy(SIGLIP_FLIP), strategy(other))
                   for other in (CLIP, FLIP, SIGLIP, TOME, SIGLIP_TOME)])
