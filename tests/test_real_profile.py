"""The `real` profile end to end on CPU, so its path cannot rot: a real world built by the CLI
(`world real`) over tiny fixtures in the layouts real data ships in (a streamed pool of two plain
webdataset shards with a corrupt JPEG and a truncated shard; ImageNet-style class folders for `id`
and `probe`; CLIP_benchmark's webdataset layout for `shift-imagenet-r`; COCO captions for
`retrieval`), the data_quantity chapter trained at the `real` profile by `chapter train` (its real
recipe: BPE, 32-token captions, bf16, the pool streamed by DataLoader workers; only the tower,
batch, pools and workers shrunk), its table loaded by `study.chapter_table` without training,
judged by the data-quantity claims of `claims` (n=3 seeds), its scale sentence, and `eval --run` of one run on
the world. Cost: ~20-30 s on 2 idle CPU cores (12 tiny runs, each evaluated on every suite)."""

import json
import tarfile

import pytest

from clipstudy import claims, cli, prose, stats, study, verdicts, worlds
from clipstudy.chapters import CHAPTERS
from clipstudy.data import LazyImages, load_pairs

from test_real_eval import _image, _tar

WNIDS = ["n01440764", "n01443537", "n02085620", "n04591713"]
NAMES = ["tench", "goldfish", "Chihuahua", "wine bottle"]  # ImageNet's names of those wnids
TEMPLATES = "a photo of a {c}.\na {c} in the wild.\n"
POOL, CORRUPT_ROW, SMALL = 64, 37, 32  # pairs kept; the corrupt JPEG's row, beyond the small pool
BATCH = 16  # 64 = 4 batches: one epoch of the whole pool draws every row, the corrupt one too


def _pool(root):
    """Two plain webdataset shards of 65 captioned images (48x40 JPEG/PNG): 0.tar rows 0-39 with a
    corrupt JPEG (its header parses, its data is cut short) at CORRUPT_ROW; 1.tar rows 40-64, cut
    inside its last member's data, so its last sample is lost and POOL pairs remain."""
    root.mkdir()
    backgrounds = ["grass", "a beach", "a table"]
    samples = []
    for i in range(POOL + 1):
        image = _image(200 + i, "JPEG" if i % 2 else "PNG", size=(48, 40))
        if i == CORRUPT_ROW:
            image = _image(200 + i, "JPEG", size=(48, 40))[:200]
        samples.append((f"{i:06d}", {"jpg" if i % 2 or i == CORRUPT_ROW else "png": image,
                                     "txt": f"a photo of a {NAMES[i % 4]} on {backgrounds[i % 3]}".encode()}))
    _tar(root / "0.tar", samples[:40])
    _tar(root / "1.tar", samples[40:])
    with tarfile.open(root / "1.tar") as tar:
        last = tar.getmembers()[-1]
    data = (root / "1.tar").read_bytes()
    (root / "1.tar").write_bytes(data[:last.offset_data + last.size // 2])
    return root


def _wnid_folders(root, seed):
    """ImageNet-style root/<wnid>/<i>.<ext> (JPEG, PNG and WebP), 3 images a class, with the
    set's own templates (unnamed wnid folders: a 4-way problem; as `imagenet1k` it would be the
    1,000-way one, 80,000 prompts per evaluation)."""
    for c, wnid in enumerate(WNIDS):
        (root / wnid).mkdir(parents=True)
        for i, (fmt, ext) in enumerate([("JPEG", "JPEG"), ("PNG", "png"), ("WEBP", "webp")]):
            (root / wnid / f"img{i}.{ext}").write_bytes(_image(seed + 10 * c + i, fmt))
    (root / "zeroshot_classification_templates.txt").write_text(TEMPLATES)
    return root


def _imagenet_r_wds(root):
    """CLIP_benchmark's webdataset layout (root/test/N.tar of .webp + .cls, nshards.txt,
    classnames.txt, templates): a 2-class stand-in for ImageNet-R, whose own 200 class names x 80
    templates would cost each of the 12 runs' evaluations ~16,000 prompts."""
    (root / "test").mkdir(parents=True)
    (root / "classnames.txt").write_text("goldfish\nGerman Shepherd Dog\n")
    (root / "zeroshot_classification_templates.txt").write_text("a sketch of a {c}.\na painting of the {c}.\n")
    (root / "test" / "nshards.txt").write_text("1\n")
    _tar(root / "test" / "0.tar", [(f"s{i:07d}", {"webp": _image(300 + i, "WEBP"), "cls": str(i % 2).encode()})
                                   for i in range(6)])
    return root


def _coco(root):
    (root / "val2014").mkdir(parents=True)
    ann = {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(6)],
           "annotations": [{"image_id": i, "caption": f"a photo of a {NAMES[i % 4]} number {i} take {j}"}
                           for i in range(6) for j in range(2)]}
    (root / "coco_test_karpathy.json").write_text(json.dumps(ann))
    for i in range(6):
        (root / "val2014" / f"{i}.jpg").write_bytes(_image(400 + i))
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-profile")
    pool = _pool(root / "pool")
    args = ["--quiet", "world", "real", "--out", str(root / "world"), "--pool", str(pool), "--image-size", "32",
            "--eval", f"id={_wnid_folders(root / 'val', 500)}", "--eval", f"probe={_wnid_folders(root / 'train', 600)}",
            "--eval", f"shift-imagenet-r=imagenet-r:{_imagenet_r_wds(root / 'imagenet-r')}",
            "--eval", f"retrieval=mscoco_captions:{_coco(root / 'coco')}"]
    assert cli.main(args) == 0
    return root / "world"


def _tiny_real(real: dict) -> dict:
    """The chapter's real sizes shrunk to CPU scale, the real recipe otherwise kept (BPE, 32-token
    captions, bf16, a streamed pool decoded in DataLoader processes): vit-ti-8 at the world's
    32 px, batch 16, no warm-up, 2 workers, no mid-run checkpoints, eager; pools of 32 pairs and the whole
    pool (data_limit 0) x 1 and 2 epochs; 3 seeds, so verdicts have n=3."""
    train = {**real["train"], "model": "vit-ti-8", "batch_size": BATCH, "warmup": 0, "data_workers": 2,
             "checkpoint_every": 0, "image_size": 32, "compile": False}  # eager: compiling costs more than these runs
    return {**real, "train": train, "seeds": [0, 1, 2],
            "grid": [{"data_limit": pool, "epochs": e} for pool in (SMALL, 0) for e in (1, 2)]}


@pytest.fixture(scope="module")
def chapter(world, tmp_path_factory):
    """The data_quantity chapter trained at the real profile by `chapter train` -> its runs_dir."""
    real = study.chapter("real", "data_quantity")
    runs_dir = tmp_path_factory.mktemp("real-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(CHAPTERS["data_quantity"], "real", _tiny_real(real))
        mp.setenv("CLIPSTUDY_WORKERS", "2x1")  # two run processes, each streaming through its loader's workers
        assert cli.main(["--quiet", "chapter", "train", "--name", "data_quantity", "--profile", "real",
                         "--world", str(world), "--runs-dir", str(runs_dir)]) == 0
        yield runs_dir  # chapter_table below reads the same (patched) sizes


def test_the_world_names_its_streamed_pool(world):
    info = json.loads((world / "world.json").read_text())
    assert info["kind"] == "real" and info["pool"] == {"source": str(world.parent / "pool"), "image_size": 32}
    assert info["classes"]["names"] == NAMES
    assert info["suites"]["shift-imagenet-r"]["classnames"] == ["goldfish", "German Shepherd Dog"]
    pairs = load_pairs(world)  # a real world's pool always streams: indexed, nothing decoded
    assert isinstance(pairs.images, LazyImages) and len(pairs) == POOL and pairs.images.shape[1:] == (32, 32, 3)
    assert pairs.skipped == {"truncated shard": 1}  # the corrupt JPEG is only found when drawn


def test_chapter_runs_record_the_streamed_pool(world, chapter):
    corrupt = load_pairs(world).images.name(CORRUPT_ROW)  # "0.tar@<its byte offset>"
    runs = sorted(p.parent for p in chapter.glob("*/summary.json"))
    assert len(runs) == 4 * 3
    for run in runs:
        cfg, summary = (json.loads((run / name).read_text()) for name in ("config.json", "summary.json"))
        train = cfg["train"]
        assert train["data"] == str(world) and train["model"] == "vit-ti-8" and train["batch_size"] == BATCH
        assert (train["vocab"], train["context_length"], train["data_workers"]) == ("bpe", 32, 2)  # the real recipe
        assert summary["image_size"] == 32 and (run / "eval.json").is_file()
        if train["data_limit"] == SMALL:  # the first 32 rows: 0.tar only, the corrupt row beyond them
            assert summary["pool_pairs"] == SMALL and cfg["skipped"] == {}
            assert summary["skipped_at_decode"] == {"count": 0, "examples": []}
        else:  # the whole pool: each epoch draws every row, so the corrupt JPEG was drawn (and replaced)
            assert train["data_limit"] == 0 and summary["pool_pairs"] == POOL
            assert cfg["skipped"] == {"truncated shard": 1} and cfg["skipped_examples"] == ["1.tar (truncated shard)"]
            assert summary["skipped_at_decode"] == {"count": 1, "examples": [corrupt]}
        assert summary["samples"] // BATCH == summary["steps"] and summary["samples"] in (SMALL, 2 * SMALL, 2 * POOL)


def test_chapter_table_loads_and_verdicts_judge_it(world, chapter, monkeypatch):
    from clipstudy import store

    monkeypatch.setattr(store, "train", lambda *a, **k: pytest.fail("chapter_table trained a run"))
    monkeypatch.setattr(store, "evaluate_run", lambda *a, **k: pytest.fail("chapter_table evaluated a run"))
    path, table = study.chapter_table("real", "data_quantity", str(world), chapter)
    assert path == world and len(table) == 12
    metrics = ["zero-shot", "shifts", "5-shot", "10-shot", "linear probe", "i2t R@1", "t2i R@1", "fit gap"]
    assert set(metrics) <= set(table.columns) and "coarse" not in table  # a real world has no coarse classes
    assert table[metrics].notna().all().all()
    assert sorted(set(table["pool"])) == [SMALL, POOL] and sorted(set(table["epochs"])) == [1.0, 2.0]
    assert table.groupby(["pool", "epochs"])["seed"].nunique().eq(3).all()

    # what the notebook does with it (notebooks/10_data_quantity.ipynb)
    summary = stats.aggregate(table, ["epochs", "pool"])
    assert len(summary) == 4 and summary["n"].eq(3).all()
    gain = stats.difference(table, "zero-shot", "epochs", 1.0, 2.0, by=["pool"])
    assert gain["n"].eq(3).all()
    assert worlds.chance(world) == pytest.approx(25.0)
    judged = claims.verdicts_of("data_quantity", table, worlds.chance(world))
    # paper A's four claims (retrieval after 8 epochs: beyond this grid's 2), and the why-check:
    # 32 pairs x 2 epochs vs the whole pool (64) x 1 at equal samples
    assert [v["key"] for v in judged] == ["A1.epochs", "A1.shifts", "A1.few-shot", "A1.retrieval-flat", "A1.why-overfit"]
    assert judged[3]["verdict"] == "beyond our scale" and judged[4]["metric"] == "fit gap"
    assert all(v["n"] == 3 and v["verdict"] in verdicts.VERDICTS for v in judged if v["verdict"] != "beyond our scale")
    assert len(verdicts.table_of(judged)) == 5 and all(verdicts.sentence(v) for v in judged)
    assert "chance (25.0%)" in prose.floor_note(table, world)
    text = prose.scale("real", world, table)
    assert f"training pool `{world.parent / 'pool'}` (runs on up to {POOL} of its pairs)" in text
    assert "4 classes in `id`" in text and "12 runs" in text and "3 seed(s) per point" in text


def test_eval_cli_on_a_run_of_the_chapter(world, chapter, capsys):
    run = next(p.parent for p in sorted(chapter.glob("*/config.json"))
               if json.loads(p.read_text())["train"]["data_limit"] == 0)  # a run on the whole pool
    capsys.readouterr()
    assert cli.main(["--quiet", "eval", "--run", str(run), "--world", str(world)]) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((run / "eval.json").read_text())[str(world)]["metrics"]
    assert metrics == printed
    for key in ("id/top1", "id/top5", "shift-imagenet-r/top1", "shift_mean/top1", "probe/5shot_top1",
                "probe/linear_top1", "retrieval/i2t_r1", "retrieval/t2i_r1", "fit/gap"):
        assert key in metrics
    assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if k not in ("eval_seconds", "fit/gap"))
    assert metrics["id/top5"] == 1.0  # 4 classes
