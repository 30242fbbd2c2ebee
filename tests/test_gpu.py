"""CUDA checks, run where a GPU is: `make test-gpu` (CLIPSTUDY_TEST_GPU=1 keeps the GPU visible;
`make test` hides it and runs the CPU suite). Skipped without a CUDA device. Every training
strategy on the GPU path at once (FLIP, Stacked RandAugment, ToMe, SigLIP; then SLIP), a kill
and resume on the GPU, evaluation on cuda against cpu, one torchrun process on cuda. Whole
numbers are for benchmarks/gpu_check.sh, which times the same paths at full size."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clipstudy.store import evaluate_run
from clipstudy.train import TrainConfig, train

from test_reliability import ENV, _kill_at, _rows, _torchrun, _train_args

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: make test-gpu")


@pytest.fixture(scope="module")
def world(request) -> Path:
    """$CLIPSTUDY_TEST_WORLD, a world built elsewhere (a GPU machine without the emoji art packages:
    benchmarks/gpu_check.sh), else the suite's tiny world. Read-only."""
    given = os.environ.get("CLIPSTUDY_TEST_WORLD")
    return Path(given) if given else request.getfixturevalue("tiny_world")


def _cfg(world, out, **fields) -> TrainConfig:
    return TrainConfig(**{"data": str(world), "out": str(out), "model": "vit-ti-8", "samples": 64 * 30, "batch_size": 64,
                          "warmup": 0, "device": "cuda", "log_every": 5, **fields})


def test_every_strategy_trains_on_cuda(world, tmp_path):
    for name, fields in {"flip-aug-tome-siglip": dict(patch_dropout=0.5, augment="stacked_randaugment", tome_r=2,
                                                      loss="siglip"),
                         "slip": dict(ssl_scale=1.0, augment="crop_flip")}.items():
        summary = train(_cfg(world, tmp_path / name, **fields), progress=False)
        assert torch.isfinite(torch.tensor(summary["final_loss"])), name


def test_compiled_training_on_cuda_replays_cuda_graphs_for_every_strategy(world, tmp_path):
    """compile=True on a GPU compiles with CUDA graphs (mode "reduce-overhead"): every strategy
    trains (and a locked SimCLR-pre-trained image tower, and the Mixer tower, as the gpu profile's
    chapters compile them; the MiniLM text tower's 88 MB package is not carried to the GPU check),
    and CLIP's loss curve stays near the eager run's (same batches and initial weights; compiled
    kernels round differently)."""
    eager = train(_cfg(world, tmp_path / "eager"), progress=False)
    for name, fields in {"clip": {}, "flip-aug-tome-siglip": dict(patch_dropout=0.5, augment="stacked_randaugment",
                                                                  tome_r=2, loss="siglip"),
                         "slip": dict(ssl_scale=1.0, augment="crop_flip"),
                         "simclr-locked-siglip": dict(pretrained_image="simclr", pretrain_samples=256,
                                                      lock_image=True, loss="siglip"),
                         "mixer": dict(model="mixer-b-16")}.items():
        summary = train(_cfg(world, tmp_path / name, compile=True, **fields), progress=False)
        assert torch.isfinite(torch.tensor(summary["final_loss"])), name
    assert abs(_rows(tmp_path / "clip")[-1]["loss"] - _rows(tmp_path / "eager")[-1]["loss"]) < 0.5, eager


def test_a_killed_cuda_run_resumes_to_the_same_curve_within_rounding(world, tmp_path):
    """Bit-identical on CPU (tests/test_reliability.py). On a GPU, kernels that add in a varying
    order make two uninterrupted runs differ too: SLIP at vit-b-16, batch 1024, 40 steps, loss ~13.5,
    differed by up to 0.22 run to run and 0.29 resumed (benchmarks/results/gpu-check-gpu.json), so
    this checks the resume works on the GPU (CUDA generator states restored) and stays near."""
    args = lambda out: _train_args(world, out, "--device", "cuda", "--patch-dropout", "0.5", "--augment",  # noqa: E731
                                   "stacked_randaugment", "--checkpoint-every", "640")
    subprocess.run([sys.executable, "-m", "clipstudy", *args(tmp_path / "whole")], env=ENV, check=True,
                   capture_output=True, timeout=300)
    _kill_at([sys.executable, "-m", "clipstudy", *args(tmp_path / "again")], tmp_path / "again.partial" / "metrics.jsonl", 15)
    subprocess.run([sys.executable, "-m", "clipstudy", *args(tmp_path / "again")], env=ENV, check=True,
                   capture_output=True, timeout=300)
    assert json.loads((tmp_path / "again" / "config.json").read_text())["resumed_from_step"] > 0
    whole, again = _rows(tmp_path / "whole"), _rows(tmp_path / "again")
    assert len(whole) == len(again) and max(abs(a["loss"] - b["loss"]) for a, b in zip(whole, again)) < 0.5


def test_evaluation_on_cuda_matches_cpu_within_bf16_rounding(world, tmp_path):
    train(_cfg(world, tmp_path / "run"), progress=False)
    cuda = evaluate_run(tmp_path / "run", world, ["id", "retrieval"], progress=False, device="cuda")
    cpu = evaluate_run(tmp_path / "run", world, ["id", "retrieval"], progress=False, device="cpu")
    assert cuda.keys() == cpu.keys()
    metrics = [k for k in cpu if "seconds" not in k]
    assert max(abs(cuda[k] - cpu[k]) for k in metrics) < 0.05, {k: (cuda[k], cpu[k]) for k in metrics}


def test_torchrun_trains_on_cuda(world, tmp_path):
    subprocess.run(_torchrun(1, _train_args(world, tmp_path / "one", "--device", "cuda")), env=ENV, check=True,
                   capture_output=True, timeout=300)
    assert json.loads((tmp_path / "one" / "config.json").read_text())["device"] == "cuda:0"
