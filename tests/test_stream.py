"""Streaming pools (load_pairs(stream=True), TrainConfig.data_workers): shards, HF datasets and
caption tables are indexed, not loaded; images are read and decoded as batches are drawn, in
DataLoader worker processes, and give the same pixels and the same run as a pool in memory.
Cost: ~15 s on 2 CPU cores (three tiny runs, one with 2 worker processes)."""

import gzip
import json

import numpy as np
import pytest
import torch

from clipstudy import data as data_module
from clipstudy.data import DataError, LazyImages, load_pairs
from clipstudy.world import export_csv, export_hf, export_webdataset

from test_data_faults import PNG, encode, good, write_tar


@pytest.fixture(scope="module")
def sources(small_world, tmp_path_factory):  # small_world: tests/conftest.py, 256 pairs at 32 px
    world = small_world
    root = tmp_path_factory.mktemp("stream-sources")
    export_webdataset(world, root / "wds", shard_size=50)
    export_hf(world, root / "hf")
    return {"wds": root / "wds", "hf": root / "hf", "csv": export_csv(world, root / "csv")}


@pytest.mark.parametrize("kind", ["wds", "hf", "csv"])
def test_a_streamed_pool_decodes_to_the_pixels_of_a_loaded_one(sources, kind, monkeypatch):
    loaded = load_pairs(sources[kind], image_size=32)
    with monkeypatch.context() as m:  # indexing decodes nothing
        m.setattr(data_module, "_decode", lambda *a: pytest.fail("an image was decoded while indexing"))
        streamed = load_pairs(sources[kind], image_size=32, stream=True)
    assert isinstance(streamed.images, LazyImages) and streamed.images.shape == loaded.images.shape
    assert streamed.captions == loaded.captions
    rows = np.array([0, 5, 64, 127])
    assert np.array_equal(streamed.images[rows], loaded.images[rows])
    assert np.array_equal(streamed.images[3], loaded.images[3]) and np.array_equal(streamed.images[:2], loaded.images[:2])
    assert np.array_equal(streamed.images.subset(rows)[1:3], loaded.images[rows[1:3]])
    assert streamed.images.bad == set()


def test_streaming_needs_an_image_size_and_plain_tars(sources, tmp_path):
    with pytest.raises(DataError, match="needs image_size"):
        load_pairs(sources["wds"], stream=True)
    shard = sorted(sources["wds"].glob("*.tar"))[0]
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "a.tar").write_bytes(gzip.compress(shard.read_bytes()))
    assert len(load_pairs(tmp_path / "gz", image_size=32)) == 50  # in memory a gzipped tar reads
    with pytest.raises(DataError, match="a.tar is compressed"):
        load_pairs(tmp_path / "gz", image_size=32, stream=True)


def test_damaged_shards_stream_skipping_and_counting(tmp_path):
    truncated_jpeg = encode(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (8, 8), (1, 2, 3)), "JPEG")[:60]
    write_tar(tmp_path / "a.tar", good(3) + [("0003.jpg", truncated_jpeg), ("0003.txt", b"cut short")]
              + [("0004.png", PNG), ("0004.txt", b"")] + good(2, start=5))
    write_tar(tmp_path / "b.tar", good(4, start=10))
    shard = (tmp_path / "b.tar").read_bytes()
    (tmp_path / "b.tar").write_bytes(shard[:2048 + 512 + 100])  # the second sample's image cut short
    pairs = load_pairs(tmp_path, image_size=4, stream=True)
    # found while indexing: the empty caption, the truncated shard (the sample at the damage dropped)
    assert pairs.skipped == {"empty caption": 1, "truncated shard": 1}
    assert len(pairs) == 6 + 1 and "cut short" in pairs.captions
    loaded = load_pairs(tmp_path, image_size=4)  # in memory, the corrupt image is found at once
    assert loaded.skipped == {"corrupt image": 1, "empty caption": 1, "truncated shard": 1} and len(loaded) == 6
    # found when drawn: the truncated JPEG, replaced by the next row, counted by row
    row = pairs.captions.index("cut short")
    images = pairs.images[np.arange(len(pairs))]
    assert np.array_equal(images[row], images[row + 1]) and pairs.images.bad == {row}
    assert pairs.images.name(row) == "a.tar@" + str(pairs.images.offset[row])


def _train(tmp_path, data, name, **kw):
    from clipstudy.train import TrainConfig, train

    cfg = TrainConfig(data=str(data), out=str(tmp_path / name), model="vit-ti-8", image_size=32, samples=128,
                      batch_size=32, warmup=0, log_every=1, threads=1, **kw)
    threads = torch.get_num_threads()
    try:
        return train(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)  # train() sets it for the whole process


def _losses(run) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_on_a_streamed_pool_is_the_run_on_the_loaded_pool(sources, tmp_path):
    """Two DataLoader worker processes decode the batches; the run is the one a pool in memory gives."""
    loaded = _train(tmp_path, sources["wds"], "loaded")
    streamed = _train(tmp_path, sources["wds"], "streamed", data_workers=2)
    here = _train(tmp_path, sources["wds"], "here", data_workers=0, augment="crop_flip")
    assert streamed["final_loss"] == loaded["final_loss"]
    assert _losses(tmp_path / "streamed") == _losses(tmp_path / "loaded")
    assert streamed["skipped_at_decode"] == {"count": 0, "examples": []} and "skipped_at_decode" not in loaded
    assert here["steps"] == 4


def test_stream_is_keyed_apart_and_data_workers_is_checked(sources):
    from clipstudy.config import ConfigError
    from clipstudy.store import config_hash
    from clipstudy.train import TrainConfig

    base = TrainConfig(data=str(sources["wds"]), image_size=32)
    two, eight = (TrainConfig(data=str(sources["wds"]), image_size=32, data_workers=n) for n in (2, 8))
    assert config_hash(two) == config_hash(eight) != config_hash(base)
    with pytest.raises(ConfigError, match="data_workers=-1"):
        TrainConfig(data_workers=-1).check()


def test_a_run_resumes_with_another_worker_count_but_not_another_loading(sources, tmp_path, monkeypatch):
    from clipstudy import train as train_module
    from clipstudy.config import ConfigError

    _train(tmp_path, sources["wds"], "whole", data_workers=2, checkpoint_every=32)
    check = train_module._check_finite

    def killed_at_step_3(model, step, lr):  # as a kill after step 2's checkpoint
        if step == 3:
            raise KeyboardInterrupt
        check(model, step, lr)

    monkeypatch.setattr(train_module, "_check_finite", killed_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, sources["wds"], "run", data_workers=2, checkpoint_every=32)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"data_workers=2 there, 0 now \(0 loads the pool into memory, > 0 streams"):
        _train(tmp_path, sources["wds"], "run", data_workers=0, checkpoint_every=32)
    _train(tmp_path, sources["wds"], "run", data_workers=1, checkpoint_every=32)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["resumed_from_step"] == 2
    assert _losses(tmp_path / "run") == _losses(tmp_path / "whole")


def test_worker_count_is_not_part_of_a_runs_key():
    from clipstudy.store import config_hash
    from clipstudy.train import TrainConfig

    keys = [config_hash(TrainConfig(data="no/such/pool", device="cpu", precision="fp32", data_workers=n))
            for n in (0, 1, 2, 8)]
    # pinned: a change here orphans every stored run (the in-memory run, and the streamed one of any worker count)
    assert keys == ["20d1ec595be6", "5813eaea65aa", "5813eaea65aa", "5813eaea65aa"]
