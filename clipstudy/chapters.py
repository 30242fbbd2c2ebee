"""Each chapter's experiment as literal data, one entry per chapter and profile.

    CHAPTERS["data_quantity"]["laptop"]
    -> {"train": fields every run shares, "seeds": [...], "grid": [one dict of fields per point],
        optionally "suites": the world's suites its runs are evaluated on (default: all)}

A grid point's fields are TrainConfig fields; `epochs` stands for `samples` = epochs x the point's
pool (`data_limit`). What a chapter trains is read here whole: no pools shared between chapters,
no helper assembling grids. Costs are for 2 CPU cores (bf16), runs with their evaluation.

The laptop recipe is the calibrated one (the book's calibration page): the study world (100
classes, background named in a quarter of captions, word vocabulary, 16-token captions), batch
64, AdamW lr 1e-3 with 1,024 samples of warm-up and a cosine decay.
"""

from __future__ import annotations

import itertools

LAPTOP_TRAIN = {"batch_size": 64, "warmup": 1_024}
SMOKE_TRAIN = {"batch_size": 64, "warmup": 64}
GPU_TRAIN = {"batch_size": 1024, "warmup": 50_000, "precision": "auto", "checkpoint_every": 1_048_576,  # hours a run: resumable
             "compile": True}  # on a GPU: CUDA graphs, 2.4-4.5x faster steps (H200: benchmarks/results/mfu-towers-gpu.json)
# the laptop Mixer's lr: at 1e-3 (the calibrated recipe's, sized for the ViTs) it stays at chance
# for 24,576 samples at 64 px; the calibration page screens both (issue 22)
MIXER_LR = 3e-4
LAPTOP_SEEDS = [0, 1, 2, 3, 4]  # 5: a 95% t-interval half as wide as 3 seeds' for the same spread
# Real web data (a real world: `python -m clipstudy world real`, e.g. CC3M's ~2.8M pairs as shards,
# ImageNet and its shifts, COCO): the gpu profile's towers and recipe at 64 px, open_clip's BPE
# (web captions have no closed vocabulary), the pool streamed from disk and decoded by 12
# DataLoader processes. Grids sized for one modern GPU, a few hours a chapter (the "Re-run on real
# data" page computes each one's samples and FLOPs). `data_limit` 0 is the whole pool.
REAL_TRAIN = {**GPU_TRAIN, "image_size": 64, "vocab": "bpe", "context_length": 32, "data_workers": 12}
REAL_QUARTER = 700_000  # a quarter of CC3M: the "several epochs of less data" cells

# Training strategies as TrainConfig fields (clipstudy/train.py), named as the papers name them.
CLIP: dict = {}
SLIP = {"ssl_scale": 1.0, "augment": "crop_flip"}  # SLIP's CLIP view is a 0.5-1 crop with a flip
FLIP = {"patch_dropout": 0.5}  # both papers' rate; paper A also doubles the batch, paper B keeps it
CLIP_AUG = {"augment": "stacked_randaugment"}  # paper A's CLIP + data augmentation
SIGLIP = {"loss": "siglip"}
# our check of SigLIP in short runs: its bias started at -log(63), a batch of 64's share of positive
# pairs, where SigLIP's -10 (sized for batches of thousands) barely moves in 512 steps
SIGLIP_PRIOR = {**SIGLIP, "logit_bias": -4.14}
TOME = {"tome_r": 2}  # 2 of 17 tokens merged per block at 32 px: 17 -> 9 over vit-ti-8's 4 blocks
MINILM = {"pretrained_text": "minilm"}
SIMCLR = {"pretrained_image": "simclr"}
# B1: scratch, each pre-trained tower and both, tuned or locked (LiT), and SigLIP with both locked
PRETRAINED = [CLIP, MINILM, {**MINILM, "lock_text": True}, SIMCLR, {**SIMCLR, "lock_image": True},
              {**MINILM, **SIMCLR}, {**MINILM, **SIMCLR, "lock_text": True, "lock_image": True},
              {**SIGLIP, **MINILM, **SIMCLR, "lock_text": True, "lock_image": True}]
# Paper B's Fig. 3 setting: its strategies on a pre-trained image tower (tuned), and SigLIP with
# both pre-trained towers tuned (B's most sample-efficient recipe)
ON_PRETRAINED_IMAGE = [{**SIMCLR, **FLIP}, {**SIMCLR, **SIGLIP}, {**SIMCLR, **TOME}, {**SIGLIP, **MINILM, **SIMCLR}]
# Each strategy's throughput is measured in one benchmark run (benchmarks/strategies.py, the
# tricks page): everything but the strategy held equal.
STRATEGIES = [CLIP, FLIP, TOME, SIGLIP, {**SIGLIP, **FLIP}, {**SIGLIP, **TOME}, SLIP, CLIP_AUG, MINILM,
              {**MINILM, "lock_text": True}, {**SIMCLR, "lock_image": True}]


def _grid(**axes) -> list[dict]:
    """Every combination of the axes' values (a shorthand for a literal list of dicts)."""
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


CHAPTERS: dict[str, dict[str, dict]] = {
    # A1: pool size x epochs. vit-ti-8; the claim's contrast is the gain from the fewest to the most
    # epochs on the largest pool minus that on the smallest. Laptop: 30 runs, 10.9 min cold on 2 cores (bf16).
    "data_quantity": {
        "smoke": {"train": {**SMOKE_TRAIN, "model": "vit-ti-8"}, "seeds": [0, 1],
                  "grid": _grid(data_limit=[256, 1_024], epochs=[1, 2])},
        "laptop": {"train": {**LAPTOP_TRAIN, "model": "vit-ti-8"}, "seeds": LAPTOP_SEEDS,
                   "grid": _grid(data_limit=[2_048, 8_192, 32_768], epochs=[1, 4])},
        "gpu": {"train": {**GPU_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2],
                "grid": _grid(data_limit=[62_500, 250_000, 1_000_000], epochs=[2, 4, 8, 16, 32])},
        "real": {"train": {**REAL_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2],
                 "grid": _grid(data_limit=[250_000, 1_000_000, 0], epochs=[1, 4, 8])},
    },
    # A3: ViT size, one epoch on pools of growing size (samples = pool). Laptop: the smallest,
    # a middle and the largest tower the budget allows, 30 runs (25 trained). A scaling law per
    # tower (clipstudy/scaling.py) needs four budgets above chance: at laptop, four budgets from
    # 4,096 to 32,768 (tried: 41.7 min cold, twice the two) left 4,096 at chance and 8k-32k in the
    # onset of learning (3-16%), so laptop keeps two; gpu has five one-epoch budgets.
    "vit_size": {
        "smoke": {"train": SMOKE_TRAIN, "seeds": [0],
                  "grid": _grid(model=["vit-ti-8", "vit-s-8"], data_limit=[512, 1_024], epochs=[1])},
        "laptop": {"train": LAPTOP_TRAIN, "seeds": LAPTOP_SEEDS,
                   "grid": _grid(model=["vit-ti-8", "vit-s-8", "vit-b-8"], data_limit=[4_096, 32_768], epochs=[1])},
        "gpu": {"train": GPU_TRAIN, "seeds": [0, 1, 2],
                "grid": _grid(model=["vit-ti-8", "vit-b-16", "vit-s-8", "vit-b-8", "vit-l-8"],
                              data_limit=[62_500, 125_000, 250_000, 500_000, 1_000_000], epochs=[1])
                + _grid(model=["vit-ti-8", "vit-b-16", "vit-s-8", "vit-b-8", "vit-l-8"],
                        data_limit=[62_500, 250_000], samples=[8_000_000])},
        "real": {"train": REAL_TRAIN, "seeds": [0, 1, 2],
                 "grid": _grid(model=["vit-ti-8", "vit-b-16", "vit-s-8", "vit-b-8", "vit-l-8"],
                               data_limit=[250_000, 1_000_000, 0], epochs=[1])},
    },
    # A4: towers of ~0.06 image GFLOPs per sample at 32 px (~0.24 at 64), on the whole pool at a
    # low and a high budget. Laptop: ViT, ResNet and Mixer (the towers the claims name), fed the
    # 32 px pool upsampled to 64 px: at 32 px the ResNet's last stage sees a 1x1 map and the /16
    # towers 2x2 patches, and all three sat at chance (3-4% after 32k samples; fed 64 px, 18-24%:
    # the calibration page). The Mixer at its own lr (MIXER_LR): at the others' 1e-3 it stays at
    # chance (the calibration page's Mixer rows). Every suite (the robustness claim needs the shifts).
    # gpu and real: five budgets, so that each tower's scaling law can be fitted and checked
    # (clipstudy/scaling.py needs four above chance) and ViT's crossover on ResNet predicted.
    "cnn_vs_vit": {
        "smoke": {"train": SMOKE_TRAIN, "seeds": [0],
                  "grid": _grid(model=["vit-b-16", "rn50", "mixer-b-16"], samples=[256])},
        "laptop": {"train": {**LAPTOP_TRAIN, "image_size": 64}, "seeds": LAPTOP_SEEDS,
                   "grid": _grid(model=["vit-b-16", "rn50"], samples=[8_192, 24_576])
                   + _grid(model=["mixer-b-16"], lr=[MIXER_LR], samples=[8_192, 24_576])},
        "gpu": {"train": GPU_TRAIN, "seeds": [0, 1, 2],
                "grid": _grid(model=["vit-b-16", "rn50", "convnext-t", "swin-t", "mixer-b-16"],
                              samples=[250_000, 500_000, 1_000_000, 4_000_000, 16_000_000])},
        "real": {"train": REAL_TRAIN, "seeds": [0, 1, 2],
                 "grid": _grid(model=["vit-b-16", "rn50", "convnext-t", "swin-t", "mixer-b-16"],
                               samples=[250_000, 500_000, 1_000_000, 2_000_000, 8_000_000])},
    },
    # A5: CLIP, SLIP, FLIP and CLIP + augmentation at one epoch (of the whole pool) and over
    # several epochs of a quarter of it, at equal samples seen (32,768); and SLIP at about CLIP's
    # compute (half the samples: SLIP's two extra image views double the image side; the page
    # shows the FLOPs ratio measured). The CLIP cells are the data-quantity chapter's runs.
    # Laptop: 45 runs, 35 trained, 15.9 min cold on 2 cores (bf16). gpu and real add CLIP, SLIP
    # and FLIP for one epoch of four smaller pools: five one-epoch budgets, for the scaling laws
    # that predict where CLIP and FLIP overtake SLIP (gpu's CLIP cells are the ViT-size chapter's).
    "strategies": {
        "smoke": {"train": {**SMOKE_TRAIN, "model": "vit-ti-8"}, "seeds": [0],
                  "grid": [{**s, "data_limit": pool, "epochs": epochs} for s in (CLIP, SLIP, FLIP, CLIP_AUG)
                           for pool, epochs in ((1_024, 1), (256, 4))] + [{**SLIP, "data_limit": 256, "epochs": 2}]},
        "laptop": {"train": {**LAPTOP_TRAIN, "model": "vit-ti-8"}, "seeds": LAPTOP_SEEDS,
                   "grid": [{**s, "data_limit": pool, "epochs": epochs} for s in (CLIP, SLIP, FLIP, CLIP_AUG)
                            for pool, epochs in ((32_768, 1), (8_192, 4))]
                   + [{**SLIP, "data_limit": 8_192, "epochs": 2}]},
        "gpu": {"train": {**GPU_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2],
                "grid": [{**s, "data_limit": pool, "epochs": epochs} for s in (CLIP, SLIP, FLIP, CLIP_AUG)
                         for pool, epochs in ((1_000_000, 1), (250_000, 8))]
                + [{**SLIP, "data_limit": 250_000, "epochs": 4}]
                + [{**s, "data_limit": pool, "epochs": 1} for s in (CLIP, SLIP, FLIP)
                   for pool in (62_500, 125_000, 250_000, 500_000)]},
        "real": {"train": {**REAL_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2],
                 "grid": [{**s, "data_limit": pool, "epochs": epochs} for s in (CLIP, SLIP, FLIP, CLIP_AUG)
                          for pool, epochs in ((0, 1), (REAL_QUARTER, 4))]
                 + [{**SLIP, "data_limit": REAL_QUARTER, "epochs": 2}]
                 + [{**s, "data_limit": pool, "epochs": 1} for s in (CLIP, SLIP, FLIP)
                    for pool in (250_000, 500_000, 1_000_000, 2_000_000)]},
    },
    # A6: no augmentation, crop & flip, RandAugment and Stacked RandAugment on two pools at 4
    # epochs (paper A: 30 epochs on 4 subsets), scored on zero-shot (the claims' metric). The
    # half-data claim: Stacked RA on 4,096 pairs vs none on 8,192. The 8,192-pair cells of none
    # and Stacked RA are the strategies chapter's CLIP and CLIP + Aug runs. At laptop and smoke
    # also Stacked RA without its crop and flip (our check: do crops that cut named emoji out of
    # 32 px scenes make it hurt?). Laptop: 50 runs, 40 trained.
    "augmentation": {
        "smoke": {"train": {**SMOKE_TRAIN, "model": "vit-ti-8"}, "seeds": [0], "suites": ["id"],
                  "grid": _grid(augment=["none", "crop_flip", "randaugment", "stacked_randaugment",
                                         "stacked_randaugment_nocrop"], data_limit=[256, 512], epochs=[2])},
        "laptop": {"train": {**LAPTOP_TRAIN, "model": "vit-ti-8"}, "seeds": LAPTOP_SEEDS, "suites": ["id"],
                   "grid": _grid(augment=["none", "crop_flip", "randaugment", "stacked_randaugment",
                                          "stacked_randaugment_nocrop"], data_limit=[4_096, 8_192], epochs=[4])},
        "gpu": {"train": {**GPU_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2], "suites": ["id"],
                "grid": _grid(augment=["none", "crop_flip", "randaugment", "stacked_randaugment"],
                              data_limit=[62_500, 125_000, 250_000, 500_000], epochs=[30])},
        "real": {"train": {**REAL_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2], "suites": ["id"],
                 "grid": _grid(augment=["none", "crop_flip", "randaugment", "stacked_randaugment"],
                               data_limit=[REAL_QUARTER // 2, REAL_QUARTER], epochs=[8])},
    },
    # B2/B3: FLIP, SigLIP and token merging from scratch, one epoch of the whole pool (at gpu and
    # real also as paper B combined them, SigLIP + FLIP and SigLIP + ToMe: no claim reads those
    # cells' accuracy, and their throughput is benchmarks/strategies.py's). B1: towers from
    # scratch, pre-trained text (MiniLM), pre-trained image (SimCLR on the world's images), both,
    # each locked or tuned, and SigLIP with both; and paper B's Fig. 3 setting, FLIP, SigLIP and
    # ToMe on the pre-trained image tower, and SigLIP with both towers tuned: one epoch of a quarter
    # of the pool (the MiniLM tower steps ~6x slower than the native one). Zero-shot only, paper
    # B's one metric. The CLIP cells are the data-quantity chapter's runs. At laptop and smoke also
    # CLIP and FLIP with the pool fed at 64 px (our check: FLIP drops half of 64 patches there, of
    # 16 at 32 px; the papers had 196 and more). Laptop: 19 points x 5 seeds, 85 runs trained (80
    # after the strategies chapter, whose FLIP cells it shares) and 5 SimCLR towers: 23.0 min cold.
    "tricks": {
        "smoke": {"train": {**SMOKE_TRAIN, "model": "vit-ti-8", "pretrain_samples": 256}, "seeds": [0], "suites": ["id"],
                  "grid": [{**s, "data_limit": 512, "epochs": 1}
                           for s in (CLIP, FLIP, SIGLIP, TOME, SIGLIP_PRIOR)]
                  + [{**s, "data_limit": 256, "epochs": 1} for s in PRETRAINED + ON_PRETRAINED_IMAGE]
                  + [{**s, "data_limit": 512, "epochs": 1, "image_size": 64} for s in (CLIP, FLIP)]},
        "laptop": {"train": {**LAPTOP_TRAIN, "model": "vit-ti-8"}, "seeds": LAPTOP_SEEDS, "suites": ["id"],
                   "grid": [{**s, "data_limit": 32_768, "epochs": 1}
                            for s in (CLIP, FLIP, SIGLIP, TOME, SIGLIP_PRIOR)]
                   + [{**s, "data_limit": 8_192, "epochs": 1} for s in PRETRAINED + ON_PRETRAINED_IMAGE]
                   + [{**s, "data_limit": 32_768, "epochs": 1, "image_size": 64} for s in (CLIP, FLIP)]},
        "gpu": {"train": {**GPU_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2], "suites": ["id"],
                "grid": [{**s, "epochs": 8} for s in (CLIP, FLIP, SIGLIP, TOME, {**SIGLIP, **FLIP}, {**SIGLIP, **TOME})]
                + [{**s, "data_limit": 250_000, "epochs": 1} for s in PRETRAINED + ON_PRETRAINED_IMAGE]},
        "real": {"train": {**REAL_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2], "suites": ["id"],
                 "grid": [{**s, "epochs": 2} for s in (CLIP, FLIP, SIGLIP, TOME, {**SIGLIP, **FLIP}, {**SIGLIP, **TOME})]
                 + [{**s, "data_limit": REAL_QUARTER, "epochs": 1} for s in PRETRAINED + ON_PRETRAINED_IMAGE]},
    },
}

# Deeper laptop grids for the scaling laws (issue 22), trained by benchmarks/laws.py, not by
# `make book` (~1 h on 2 cores): a law needs four budgets above chance (clipstudy/scaling.py) and
# the chapters' laptop grids have two. Their runs are recorded in benchmarks/results/laws-cpu.jsonl,
# which the CNN-vs-ViT and strategies pages fit. Each takes its chapter's laptop `train` fields.
# cnn_vs_vit: ViT and ResNet on the whole pool at 64 px, five budgets of samples seen (the last
# two epochs of the pool). strategies: CLIP, SLIP and FLIP for one epoch of five pools, fed at 64
# px: at 32 px one epoch of 4,096 pairs sits at chance and 8,192 barely leaves it (the ViT-size
# trial above; the pool holds 32,768 pairs); at 64 px one epoch of 32,768 gives the same tower ~3x
# the zero-shot (45 vs 16%, the tricks page's 64 px check). Recorded: every pool left chance.
LAWS: dict[str, dict] = {
    "cnn_vs_vit": {"seeds": [0, 1, 2], "grid": _grid(model=["vit-b-16", "rn50"],
                                                     samples=[8_192, 16_384, 24_576, 32_768, 65_536])},
    "strategies": {"seeds": [0, 1, 2], "grid": [{**s, "data_limit": pool, "epochs": 1, "image_size": 64}
                                                for s in (CLIP, SLIP, FLIP)
                                                for pool in (4_096, 8_192, 16_384, 24_576, 32_768)]},
}

# A2, data quality (clipstudy/quality.py, quality_chapter.quality_table): the study world with a share
# `noise` of its pool captions noisy (quality.noise_mix: half mismatched pairs, a third
# boilerplate alt-text, a sixth with one emoji misnamed), scored by a reference CLIP trained on
# `reference.rows` clean pairs of the study world whose images the candidates exclude; each cut
# keeps the top `tops` of the candidates and trains one epoch of the cut, or as many samples as
# the whole candidate pool ("equal samples"). At the other `noise_rates`, the sweep regimes only,
# with `sweep_seeds` (default: `seeds`; no claim reads the sweep, a table of where the best cut
# lies), evaluated on `sweep_suites` (default: the main runs' `suites`, default every suite: the A2
# panels are zero-shot, shifts, few-shot and retrieval). Not a grid of fields (the cuts depend on
# the reference's scores), so not in CHAPTERS: `quality_runs` below lists its runs.
QUALITY_TOPS = [0.2, 0.4, 0.6, 0.8, 1.0]
QUALITY = {
    "smoke": {"train": {**SMOKE_TRAIN, "model": "vit-ti-8"}, "seeds": [0], "noise": 0.3, "noise_rates": [0.3],
              "reference": {"rows": 256, "epochs": 2}, "tops": QUALITY_TOPS, "regimes": ["one epoch", "equal samples"],
              "sweep_regimes": ["equal samples"], "suites": ["id", "probe", "retrieval"]},
    "laptop": {"train": {**LAPTOP_TRAIN, "model": "vit-ti-8"}, "seeds": LAPTOP_SEEDS, "noise": 0.3,
               "noise_rates": [0.1, 0.3, 0.5], "reference": {"rows": 4_096, "epochs": 8}, "tops": QUALITY_TOPS,
               "regimes": ["one epoch", "equal samples"], "sweep_regimes": ["one epoch"], "sweep_seeds": LAPTOP_SEEDS[:3],
               "sweep_suites": ["id"]},
    "gpu": {"train": {**GPU_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2], "noise": 0.3, "noise_rates": [0.1, 0.3, 0.5],
            "reference": {"rows": 100_000, "epochs": 10}, "tops": QUALITY_TOPS,
            "regimes": ["one epoch", "equal samples"], "sweep_regimes": ["equal samples"]},
    # A real world's pool as it is: real data has no ground-truth noise labels, so here the chapter
    # has no precision / recall table (nothing to measure a cut against) and no noise sweep (no
    # noise to add); `world` (the real world folder) is required. The default reference trains
    # 4 epochs on the pool's first 500,000 pairs, which the candidates (the rest) then exclude.
    "real": {"train": {**REAL_TRAIN, "model": "vit-b-16"}, "seeds": [0, 1, 2],
             "reference": {"rows": 500_000, "epochs": 4}, "tops": QUALITY_TOPS,
             "regimes": ["one epoch", "equal samples"]},
}


def quality_regimes(sizes: dict, rate) -> list[str]:
    """The regimes a noise rate trains: every one at the main rate, `sweep_regimes` at the others."""
    return sizes["regimes"] if rate == sizes.get("noise") else sizes.get("sweep_regimes", [])


def quality_seeds(sizes: dict, rate) -> list[int]:
    """The seeds a noise rate trains: the chapter's at the main rate (its claims' runs), `sweep_seeds`
    (default: the same) at the others, whose table no claim reads."""
    return sizes["seeds"] if rate == sizes.get("noise") else sizes.get("sweep_seeds", sizes["seeds"])


def quality_suites(sizes: dict, rate) -> list[str] | None:
    """The suites a noise rate's runs are scored on: `suites` at the main rate, `sweep_suites` at the others
    (default: every suite)."""
    return sizes.get("suites") if rate == sizes.get("noise") else sizes.get("sweep_suites", sizes.get("suites"))


def quality_runs(sizes: dict, pool: int) -> list[dict]:
    """The chapter's runs as `sizes` (a `QUALITY` entry) plans them on a pool of `pool` pairs, before
    any pair is scored: the reference first (a page given a reference of its own trains none), then one dict per run
    {"noise", "top", "regimes", "samples", "seed", "suites"}, a run that two cells share (the whole
    pool's one epoch is also its equal samples) listed once with both regimes. A cut of top x of
    the candidates keeps round(top x candidates) rows (quality.top_fraction), so the samples here
    are the trained ones. The one count that the page's plan, `costs.real_costs` and
    benchmarks/book_cost.py read."""
    ref = sizes["reference"]
    candidates = pool - ref["rows"]
    runs = [{"noise": None, "top": None, "regimes": ["reference"], "samples": ref["rows"] * ref["epochs"], "seed": 0,
             "suites": ["id"]}]
    for rate in sizes.get("noise_rates", [None]):
        for top in sizes["tops"]:
            by_samples: dict[int, list[str]] = {}
            for regime in quality_regimes(sizes, rate):
                by_samples.setdefault(max(1, round(top * candidates)) if regime == "one epoch" else candidates, []).append(regime)
            for samples, regimes in by_samples.items():
                runs += [{"noise": rate, "top": top, "regimes": regimes, "samples": samples, "seed": seed,
                          "suites": quality_suites(sizes, rate)} for seed in quality_seeds(sizes, rate)]
    return runs


# Each chapter's page (notebooks/<page>.ipynb -> book/<page>): the one list the command line,
# the book's plan and cost tables, and the tests read the chapter names from.
PAGES = {"data_quantity": "10_data_quantity", "data_quality": "15_data_quality", "vit_size": "20_vit_size",
         "cnn_vs_vit": "30_cnn_vs_vit", "strategies": "40_strategies", "augmentation": "50_augmentation",
         "tricks": "60_tricks"}
