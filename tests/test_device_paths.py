"""The GPU and multi-GPU paths, where a CPU can show them (issue 23's review): torchrun ranks take
their GPU before NCCL starts, and a CPU run uses gloo on any machine; each rank's random streams
survive a resume (tests/test_reliability.py resumes FLIP under torchrun); shared memory too small
for the streaming workers is said before they start; `compile` keys the store and the resume
check; final checkpoints are weights only unless asked; the gpu profiles let "auto" choose the
precision; the suite itself hides GPUs (tests/conftest.py) so that it passes on a GPU machine as
on CPU. The CUDA-only checks are in tests/test_gpu.py."""

import dataclasses
import os
from collections import namedtuple

import pytest
import torch
import torch.distributed as dist

from clipstudy import distributed, train as train_module
from clipstudy.chapters import CHAPTERS
from clipstudy.config import ConfigError
from clipstudy.profiles import PROFILES
from clipstudy.store import config_hash
from clipstudy.train import TrainConfig, train


@pytest.fixture
def two_ranks(monkeypatch):
    """Rank 1 of 2 under torchrun, with the process group's calls recorded instead of made."""
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.append(("join", backend, kw)))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    return calls


def test_a_cuda_rank_sets_its_own_gpu_before_joining_nccl(two_ranks):
    assert distributed.setup(torch.device("cuda")) == (1, 2)
    gpu = torch.device("cuda", 1)  # LOCAL_RANK's, not cuda:0
    assert two_ranks == [("set_device", gpu), ("join", "nccl", {"device_id": gpu})]


def test_a_cpu_run_joins_gloo_even_where_a_gpu_is_present(two_ranks, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert distributed.setup("cpu") == (1, 2)
    assert two_ranks == [("join", "gloo", {})]


def test_each_rank_restores_its_own_random_state_and_a_missing_one_keeps_its_seed():
    states = ["rank 0", "rank 1"]
    assert [train_module._rank_state(states, r) for r in range(3)] == ["rank 0", "rank 1", None]
    assert train_module._rank_state("one state", 0) == "one state"  # a checkpoint from before per-rank states
    assert train_module._rank_state("one state", 1) is None


Usage = namedtuple("Usage", "total used free")


def test_streaming_workers_fit_their_batches_in_shared_memory_or_say_what_to_do(monkeypatch):
    batch = 1024 * 64 * 64 * 3  # 12 MiB of uint8 images
    monkeypatch.setattr(train_module.shutil, "disk_usage", lambda path: Usage(2**40, 0, 2**40))
    assert train_module._prefetch(12, batch) == 4
    monkeypatch.setattr(train_module.shutil, "disk_usage", lambda path: Usage(600 * 2**20, 0, 600 * 2**20))
    assert train_module._prefetch(12, batch) == 2  # 2 x 12 x 2 x 12 MiB = 576 MiB fits, 3 would not
    monkeypatch.setattr(train_module.shutil, "disk_usage", lambda path: Usage(64 * 2**20, 0, 64 * 2**20))
    with pytest.raises(ConfigError, match=r"data_workers=12 .* 12 MiB .*64 MiB free.*--shm-size"):
        train_module._prefetch(12, batch)


def test_compile_keys_the_store_and_keep_optimizer_does_not(tiny_world):
    cfg = TrainConfig(data=str(tiny_world), model="vit-ti-8", samples=128, batch_size=64)
    assert config_hash(dataclasses.replace(cfg, compile=True)) != config_hash(cfg)
    assert config_hash(dataclasses.replace(cfg, keep_optimizer=True)) == config_hash(cfg)
    assert "compile" not in train_module.RESUME_IGNORES


def test_a_final_checkpoint_is_weights_only_unless_asked(tiny_world, tmp_path):
    cfg = TrainConfig(data=str(tiny_world), model="vit-ti-8", samples=128, batch_size=64, warmup=0, device="cpu")
    for keep in (False, True):
        out = tmp_path / f"keep-{keep}"
        train(dataclasses.replace(cfg, out=str(out), keep_optimizer=keep), progress=False)
        saved = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
        assert ("optimizer" in saved) == keep and saved["state_dict"]


def test_the_gpu_profiles_let_auto_choose_the_precision():
    """bf16 forced would fail on a GPU without it (before Ampere); "auto" takes bf16 where it is native."""
    assert PROFILES["real"]["train"].get("precision", "auto") == "auto"
    for name, sizes in CHAPTERS.items():
        for profile in ("gpu", "real"):
            if profile in sizes:
                assert sizes[profile].get("train", {}).get("precision", "auto") == "auto", (name, profile)


def test_the_suite_hides_gpus_unless_asked():
    """tests/conftest.py: a GPU machine runs the same CPU suite (bit-identical resumes, gloo ranks);
    CLIPSTUDY_TEST_GPU=1 keeps the GPUs for tests/test_gpu.py."""
    if os.environ.get("CLIPSTUDY_TEST_GPU") != "1":
        assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
        assert not torch.cuda.is_available()
