"""Real worlds (clipstudy.real.build_real_world, `python -m clipstudy world real`): tiny evaluation
sets in the layouts of tests/test_real_eval.py written as a world's suites, its world.json, the
world evaluated with evaluate_world (a suite with classes of its own gets its own classifier), the
CLI, and what chapters read from a world. Cost: ~8 s on 2 CPU cores."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clipstudy import cli, models, prose, worlds
from clipstudy import evaluate as ev
from clipstudy.config import ConfigError
from clipstudy.data import load_suite
from clipstudy.real import build_real_world, imagenet_classes

from test_real_eval import CORRUPT, NAMES_1K, TEMPLATES_1K, _folders, _image, _tar

WNIDS = ["n01440764", "n01443537", "n02085620"]  # tench, goldfish, Chihuahua
R_WNIDS = ["n01443537", "n02106662"]  # goldfish, German Shepherd Dog: 2 of ImageNet-R's 200 classes
TEMPLATES = "a photo of a {c}.\na {c} in the wild.\n"


def _wnid_folders(root, wnids, per_class):
    """Unnamed ImageNet wnid folders with their own two templates: a 3-class problem whose
    zero-shot classifier is cheap (a named imagenet1k set is 1,000 classes x 80 templates)."""
    _folders(root, wnids, per_class)
    (root / "zeroshot_classification_templates.txt").write_text(TEMPLATES)
    return root


def _coco(root):
    (root / "val2014").mkdir(parents=True)
    ann = {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(4)],
           "annotations": [{"image_id": i, "caption": f"photo {i} caption {j}"} for i in range(4) for j in range(2)]}
    (root / "coco_test_karpathy.json").write_text(json.dumps(ann))
    for i in range(3):  # 3.jpg is missing
        (root / "val2014" / f"{i}.jpg").write_bytes(_image(50 + i))
    return root


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """suite -> (set name, path) of tiny sets in three layouts; one corrupt JPEG in `id`."""
    root = tmp_path_factory.mktemp("sets")
    val = _wnid_folders(root / "val", WNIDS, per_class=2)
    (val / WNIDS[0] / "broken.jpg").write_bytes(CORRUPT)
    return {"id": (None, val), "probe": (None, _wnid_folders(root / "train", WNIDS, per_class=3)),
            "shift-imagenet-r": ("imagenet-r", _folders(root / "imagenet-r", R_WNIDS, per_class=2)),
            "shift-copy": (None, _wnid_folders(root / "copy", WNIDS, per_class=1)),
            "retrieval": ("mscoco_captions", _coco(root / "coco"))}


@pytest.fixture(scope="module")
def world(sets, tmp_path_factory):
    return build_real_world(tmp_path_factory.mktemp("w") / "real", "/data/cc3m/{00000..00009}.tar", sets, 32)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return models.create_model("vit-ti-8", 32).eval(), models.get_tokenizer("vit-ti-8")


def test_suites_are_written_as_load_suite_reads_them(world):
    assert sorted(p.name for p in (world / "suites").iterdir()) == sorted(
        ["id", "probe", "shift-imagenet-r", "shift-copy", "retrieval"])
    s = load_suite(world / "suites" / "id")
    assert s.images.shape == (6, 32, 32, 3) and s.images.dtype == np.uint8
    assert s.labels.dtype == np.int64 and sorted(s.labels.tolist()) == [0, 0, 1, 1, 2, 2] and s.captions is None
    r = load_suite(world / "suites" / "shift-imagenet-r")
    r_names = imagenet_classes("imagenet-r")[1]
    assert [r_names[y] for y in r.labels] == ["goldfish", "German Shepherd Dog"] * 2  # labels among its 200
    ret = load_suite(world / "suites" / "retrieval")
    assert ret.labels is None and ret.captions == [[f"photo {i} caption 0", f"photo {i} caption 1"] for i in range(3)]
    assert not list(world.parent.glob("real.tmp-*"))  # the temp folder was renamed


def test_world_json_contract(world, sets):
    info = json.loads((world / "world.json").read_text())
    assert info["kind"] == "real"
    assert info["pool"] == {"source": "/data/cc3m/{00000..00009}.tar", "image_size": 32}
    names = ["tench", "goldfish", "Chihuahua"]  # the id set's, as written (no article)
    assert info["classes"] == {"names": names, "phrases": names}
    assert info["prompts"] == ["a photo of a {}.", "a {} in the wild."]
    assert list(info["suites"]) == list(sets)  # in the order given
    s = info["suites"]
    assert s["id"] == {"kind": "classification", "n": 6, "set": None, "source": str(sets["id"][1]),
                       "layout": "class folders", "skipped": {"corrupt image": 1},
                       "skipped_examples": [f"{WNIDS[0]}/broken.jpg (corrupt image)"]}
    assert s["probe"]["n"] == 9 and "classnames" not in s["probe"]
    assert "classnames" not in s["shift-copy"] and "templates" not in s["shift-copy"]  # the world's classes
    assert s["shift-imagenet-r"]["set"] == "imagenet-r" and s["shift-imagenet-r"]["n"] == 4
    assert len(s["shift-imagenet-r"]["classnames"]) == 200 and s["shift-imagenet-r"]["templates"] == TEMPLATES_1K
    assert s["retrieval"] == {"kind": "retrieval", "n": 3, "set": "mscoco_captions",
                              "source": str(sets["retrieval"][1]), "layout": "coco json",
                              "skipped": {"missing image": 1}, "skipped_examples": ["3.jpg (missing image)"]}
    assert info["config"] == {"image_size": 32, "pool": "/data/cc3m/{00000..00009}.tar", "limit": None,
                              "eval_sets": {k: {"set": n, "source": str(p)} for k, (n, p) in sets.items()}}


def test_evaluate_world_gives_a_suite_of_other_classes_its_own_classifier(world, tiny, monkeypatch):
    model, tokenizer = tiny
    built = []
    make = ev.zero_shot_classifier

    def spy(model, tokenizer, classnames, templates, *args):
        built.append((len(classnames), list(templates)))
        return make(model, tokenizer, classnames, templates, *args)

    monkeypatch.setattr(ev, "zero_shot_classifier", spy)
    out = ev.evaluate_world(model, tokenizer, world, batch_size=16, precision="fp32")
    # id and shift-copy share the world's classifier; ImageNet-R gets its 200 classes x 80 templates
    assert built == [(3, ["a photo of a {}.", "a {} in the wild."]), (200, TEMPLATES_1K)]
    expected = {"id/top1", "id/top5", "shift-copy/top1", "shift-copy/top5", "shift-imagenet-r/top1", "shift-imagenet-r/top5",
                "shift_mean/top1", "shift_mean/top5", "probe/5shot_top1", "probe/10shot_top1", "probe/linear_top1",
                "retrieval/i2t_r1", "retrieval/i2t_r5", "retrieval/t2i_r1", "retrieval/t2i_r5", "eval_seconds"}
    assert set(out) == expected  # no coarse accuracy: a real world has no coarse classes
    assert all(0.0 <= v <= 1.0 for k, v in out.items() if k != "eval_seconds")
    assert out["id/top5"] == 1.0  # 3 classes
    assert out["shift_mean/top1"] == pytest.approx((out["shift-copy/top1"] + out["shift-imagenet-r/top1"]) / 2)


def test_build_errors_name_the_bad_value(sets, tmp_path):
    def build(eval_sets, **kw):
        return build_real_world(tmp_path / "w", "shards", eval_sets, 32, **kw)

    with pytest.raises(ConfigError, match=r"suite name 'imagenet' is not valid; use 'id', 'probe', 'retrieval' or "
                                          r"'shift-<name>'"):
        build({"imagenet": sets["id"]})
    with pytest.raises(ConfigError, match="unknown evaluation set name 'imagenet-z'.*imagenet-r"):
        build({"id": ("imagenet-z", sets["id"][1])})
    with pytest.raises(ConfigError, match="suite 'retrieval' needs a retrieval set, but 'imagenet1k' is a "
                                          "classification set"):
        build({"retrieval": ("imagenet1k", sets["id"][1])})
    with pytest.raises(ConfigError, match="suite 'id' needs a classification set, but .*coco.* holds a retrieval"):
        build({"id": (None, sets["retrieval"][1])})
    with pytest.raises(ConfigError, match="suite 'probe' needs an 'id' suite"):
        build({"probe": sets["probe"]})
    with pytest.raises(ConfigError, match="suite 'probe' .*2 classes.* does not have the classes of suite 'id' .3."):
        build({"id": sets["id"], "probe": (None, _wnid_folders(tmp_path / "p2", WNIDS[:2], 1))})
    assert not (tmp_path / "w").exists() and not list(tmp_path.glob("w.tmp-*"))  # nothing half-written
    # a named imagenet1k set is the 1,000-way problem; a probe of the same set shares its classes
    world = build({"id": ("imagenet1k", sets["id"][1]), "probe": ("imagenet1k", sets["probe"][1])}, limit=4)
    info = json.loads((world / "world.json").read_text())
    assert info["classes"]["names"] == NAMES_1K and info["prompts"] == TEMPLATES_1K
    assert info["suites"]["id"]["n"] == 4 and "classnames" not in info["suites"]["probe"]
    assert worlds.chance(world) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="already exists"):
        build({"id": sets["id"]})


def test_cli_world_real(sets, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cli-world"
    args = ["--quiet", "world", "real", "--out", str(out), "--pool", "shards/{0..1}.tar", "--image-size", "32",
            "--eval", f"id={sets['id'][1]}", "--eval", f"shift-imagenet-r=imagenet-r:{sets['shift-imagenet-r'][1]}",
            "--eval", f"retrieval=mscoco_captions:{sets['retrieval'][1]}", "--limit", "5"]
    assert cli.main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["suites"] == {"id": {"n": 5, "skipped": {"corrupt image": 1}},
                                 "shift-imagenet-r": {"n": 4, "skipped": {}},
                                 "retrieval": {"n": 3, "skipped": {"missing image": 1}}}
    info = json.loads((out / "world.json").read_text())
    assert info["pool"]["source"] == str(tmp_path / "shards" / "{0..1}.tar")  # made absolute
    assert (out / "suites" / "retrieval" / "captions.json").is_file()
    assert cli.main(args) == 2 and "already exists" in capsys.readouterr().err
    assert cli.main([*args, "--overwrite"]) == 0

    for value, named in [(f"imagenet={sets['id'][1]}", "suite name 'imagenet' is not valid"),
                         (f"id=imagenet-z:{sets['id'][1]}", "'imagenet-z' is not an evaluation set name"),
                         ("id", "'id' is not SUITE=[SET:]PATH")]:
        assert cli.main(["--quiet", "world", "real", "--out", str(tmp_path / "bad"), "--pool", "p",
                         "--eval", value]) == 2
        err = capsys.readouterr().err
        assert err.startswith("python -m clipstudy world: error:") and named in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_an_empty_class_folder_is_an_error_not_a_class(sets, tmp_path, capsys):
    val = shutil.copytree(sets["id"][1], tmp_path / "val")
    (val / R_WNIDS[1]).mkdir()  # 3 classes would silently become 4
    out = tmp_path / "world"
    assert cli.main(["--quiet", "world", "real", "--out", str(out), "--pool", "p", "--eval", f"id={val}"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"class folder(s) ['{R_WNIDS[1]}'] hold no images" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val"]  # nothing written


def test_eval_cli_and_fit_gap_on_a_real_world(world, tmp_path, capsys):
    """`eval --run R --world <real world>`, R trained on that world: its fit gap reads the pool
    world.json names (its size from the run's summary)."""
    world = Path(shutil.copytree(world, tmp_path / "world"))  # given a pool that exists
    shards = tmp_path / "pool"
    shards.mkdir()
    _tar(shards / "0.tar", [(f"s{i}", {"jpg": _image(70 + i), "txt": f"pool caption {i}".encode()}) for i in range(4)])
    info = json.loads((world / "world.json").read_text())
    info["pool"]["source"] = str(shards)
    (world / "world.json").write_text(json.dumps(info))
    run = tmp_path / "run"
    run.mkdir()
    torch.manual_seed(0)
    models.save_checkpoint(run / "checkpoint.pt", models.create_model("vit-ti-8", 32), "vit-ti-8", 32)
    (run / "config.json").write_text(json.dumps({"train": {"data": str(world), "data_limit": 0, "device": "cpu"}}))
    (run / "summary.json").write_text(json.dumps({"pool_pairs": 4}))
    assert cli.main(["--quiet", "eval", "--run", str(run), "--world", str(world), "--suites", "retrieval"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"retrieval/i2t_r1", "fit/train_i2t_r1", "fit/heldout_i2t_r1", "fit/gap"} <= set(out)
    assert str(world) in json.loads((run / "eval.json").read_text())


def test_what_chapters_read_from_a_real_world(world):
    assert worlds.chance(world) == pytest.approx(100 / 3)
    table = pd.DataFrame([{"run": "a", "model": "vit-b-8", "pool": 1000, "samples": 4000, "seed": 0,
                           "image_size": 64, "batch_size": 256, "precision": "bf16", "train_seconds": 60.0}])
    text = prose.scale("real", world, table)
    assert "1 runs in bf16, 1.0 minutes of training" in text  # the precision its runs used
    assert "3 classes in `id`" in text and "/data/cc3m/{00000..00009}.tar" in text and "Chance is 33.3%" in text
    assert "fed to the towers at 64 px" in text  # the world's images are 32 px
    with pytest.raises(ConfigError, match=r"real profile needs study_world= a real world folder, built with "
                                          r"`python -m clipstudy world real --out"):
        worlds.study_world("real", "")
