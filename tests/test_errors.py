"""Bad input, as a new user types it: one `error:` line naming the parameter and the valid range,
exit status 2, nothing written. Plus property tests of the config parser and the caption grammar.
~15 s on 2 cores (a tiny world, no training)."""

import errno
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clipstudy import cli, models
from clipstudy.chapters import PAGES
from clipstudy import tokenizer as word_vocab
from clipstudy.config import ConfigError, field_names, from_dict
from clipstudy.train import TrainConfig
from clipstudy.world import WorldConfig, captions
from clipstudy.world.classes import load_classes
from clipstudy.world.scenes import BACKGROUNDS

@pytest.fixture(scope="module")
def world(small_world):
    return small_world  # tests/conftest.py: built once per session, read-only


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An intact checkpoint's bytes (a tiny vocabulary keeps it small)."""
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    overrides = {"vocab_size": 50, "context_length": 16}
    models.save_checkpoint(path, models.create_model("vit-ti-8", 32, **overrides), "vit-ti-8", 32, overrides=overrides)
    return path.read_bytes()


def run_cli(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as e:  # argparse's own errors exit
        return e.code


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("args, names", [
    (["--grad-clip", "-1"], ["grad_clip=-1.0", ">= 0"]),
    (["--weight-decay", "-1"], ["weight_decay=-1.0", ">= 0"]),
    (["--lr", "nan"], ["lr=nan", "lr > 0"]),
    (["--lr", "inf"], ["lr=inf", "finite lr > 0"]),
    (["--min-lr", "1"], ["min_lr=1.0", "min_lr <= lr"]),
    (["--log-every", "0"], ["log_every=0", ">= 1"]),
    (["--eps", "-1"], ["eps=-1.0", "eps > 0"]),
    (["--beta1", "2"], ["beta1=2.0", "0 <= beta1 < 1"]),
    (["--beta2", "1"], ["beta2=1.0", "0 <= beta2 < 1"]),
    (["--seed", "-1"], ["seed=-1", "0 <= seed"]),
    (["--device", "tpu"], ["device='tpu'", "auto, cpu, cuda, cuda:<n> or mps"]),
    (["--device", "cuda:7"], ["device='cuda:7'", "available"]),
    (["--image-size", "100000"], ["image_size=100000", "multiple of 8 px up to 1024"]),
    (["--image-size", "36"], ["image_size=36", "multiple of 8"]),
    (["--config", "{bad}"], ["config file", "line 2 column 1"]),
    (["--config", "{list}"], ["config file", "not a JSON object"]),
])
def test_bad_train_option_is_one_error_line(world, tmp_path, capsys, args, names):
    (tmp_path / "bad.json").write_text('{"lr": 0.001,\n')
    (tmp_path / "list.json").write_text("[1, 2]")
    args = [a.format(bad=tmp_path / "bad.json", list=tmp_path / "list.json") for a in args]
    out = tmp_path / "run"
    code = run_cli(["--quiet", "train", "--data", str(world), "--model", "vit-ti-8", "--samples", "256",
                    "--batch-size", "32", "--out", str(out), *args])
    line = error_line(capsys)
    assert code == 2
    for name in names:
        assert name in line
    assert not out.exists() and not (tmp_path / "run.partial").exists()


def test_curve_on_data_without_an_id_suite_is_one_error_line(world, tmp_path, capsys):
    out = tmp_path / "run"  # a world's train folder is a pool without suites
    code = run_cli(["--quiet", "train", "--data", str(world / "train"), "--model", "vit-ti-8", "--samples", "256",
                    "--batch-size", "32", "--curve-every", "64", "--out", str(out)])
    line = error_line(capsys)
    assert code == 2 and "curve_every=64" in line and "`id` suite" in line and "curve_every=0" in line
    assert not list(tmp_path.iterdir())


def test_unknown_train_option_lists_the_train_options(world, tmp_path, capsys):
    assert run_cli(["train", "--data", str(world), "--bogus", "3"]) == 2
    line = error_line(capsys)
    assert "--bogus" in line and "--batch-size" in line and "--grad-clip" in line
    assert "--quiet" not in line  # the top-level options are not train's


def test_bad_world_option_is_one_error_line(tmp_path, capsys):
    out = tmp_path / "world"
    assert run_cli(["--quiet", "world", "build", "--out", str(out), "--p-background", "nan"]) == 2
    assert "p_background=nan" in error_line(capsys)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.fixture
def run(world, tmp_path, checkpoint):
    """A run folder as `train` leaves it, as far as `eval` reads it before loading weights."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": {"data": str(world), "device": "auto"}}))
    (run / "checkpoint.pt").write_bytes(checkpoint)
    return run


@pytest.mark.parametrize("args, names", [
    (["--batch-size", "-1"], ["--batch-size=-1", ">= 1"]),
    (["--suites", "id,nope"], ["--suites ['nope']", "valid suites: ['id', "]),
    (["--world", "{missing}"], ["--world", "does not exist"]),
    (["--device", "tpu"], ["device='tpu'", "auto, cpu, cuda"]),
])
def test_bad_eval_option_is_one_error_line(run, tmp_path, capsys, args, names):
    args = [a.format(missing=tmp_path / "missing") for a in args]
    assert run_cli(["--quiet", "eval", "--run", str(run), *args]) == 2
    line = error_line(capsys)
    for name in names:
        assert name in line
    assert not (run / "eval.json").exists()


def test_a_missing_suite_folder_is_found_before_any_suite_is_scored(run, world, tmp_path, capsys, monkeypatch):
    from clipstudy import evaluate

    copy = tmp_path / "world"
    shutil.copytree(world, copy)
    last = list(json.loads((copy / "world.json").read_text())["suites"])[-1]
    shutil.rmtree(copy / "suites" / last)

    def scored(*args, **kwargs):
        raise AssertionError("a suite was scored before the missing one was found")

    monkeypatch.setattr(evaluate, "image_features", scored)
    assert run_cli(["--quiet", "eval", "--run", str(run), "--world", str(copy)]) == 2
    line = error_line(capsys)
    assert f"[{last!r}]" in line and "nothing was scored" in line and "suites=" in line
    assert not (run / "eval.json").exists()


def test_eval_of_a_run_folder_that_cannot_be_written_scores_nothing(run, capsys, monkeypatch):
    from clipstudy import evaluate

    def refused(*args, **kwargs):  # as in a read-only or immutable folder (permission bits do not stop root)
        raise PermissionError(errno.EPERM, "Operation not permitted")

    def scored(*args, **kwargs):
        raise AssertionError("scored before the folder was found unwritable")

    monkeypatch.setattr("clipstudy.records.tempfile.mkstemp", refused)
    monkeypatch.setattr(evaluate, "image_features", scored)
    assert run_cli(["--quiet", "eval", "--run", str(run)]) == 2
    line = error_line(capsys)
    assert f"cannot write in {run} (Operation not permitted)" in line and "nothing was scored" in line
    assert not (run / "eval.json").exists()


@pytest.mark.parametrize("command", [
    ["train", "--data", "{world}", "--model", "vit-ti-8", "--samples", "64", "--batch-size", "32"],
    ["world", "build", "--classes", "20", "--pairs", "64"],
    ["world", "export", "--world", "{world}", "--format", "wds"],
])
def test_out_where_no_folder_can_be_made_is_one_error_line(world, tmp_path, capsys, command):
    (tmp_path / "file").write_text("a file, not a folder")  # fails for root too, unlike permission bits
    command = [a.format(world=world) for a in command]
    assert run_cli(["--quiet", *command, "--out", str(tmp_path / "file" / "out")]) == 2
    line = error_line(capsys)
    assert f"cannot write in {tmp_path / 'file'}" in line and "is a file, not a folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_missing_run_folder(tmp_path, capsys):
    assert run_cli(["--quiet", "eval", "--run", str(tmp_path / "nope")]) == 2
    assert "--run" in error_line(capsys)


@pytest.mark.parametrize("damage", ["half", "empty", "random", "other"])
def test_damaged_checkpoint_names_the_file(run, capsys, damage):
    ckpt = run / "checkpoint.pt"
    data = ckpt.read_bytes()
    if damage == "other":  # an intact torch file that is no clipstudy checkpoint
        torch.save({"weights": torch.zeros(3)}, ckpt)
    else:
        ckpt.write_bytes({"half": data[:len(data) // 2], "empty": b"", "random": os.urandom(4096)}[damage])
    assert run_cli(["--quiet", "eval", "--run", str(run)]) == 2
    line = error_line(capsys)
    assert str(ckpt) in line and "not a clipstudy checkpoint" in line and "train the run again" in line
    assert not (run / "eval.json").exists()


def test_unknown_chapter_lists_every_chapter_it_accepts(capsys):
    assert run_cli(["--quiet", "chapter", "train", "--name", "x"]) == 2
    line = error_line(capsys)
    assert "'x'" in line and all(name in line for name in PAGES)  # data_quality too: it is accepted


def test_failed_run_exits_1(world, tmp_path, monkeypatch, capsys):
    from clipstudy.records import RunFailed

    def fail(cfg, progress=True):
        raise RunFailed("loss became nan at step 3; lower lr (now 0.5)")

    monkeypatch.setattr(cli, "train", fail)
    assert run_cli(["--quiet", "train", "--data", str(world), "--out", str(tmp_path / "run")]) == 1
    assert error_line(capsys) == "python -m clipstudy train: error: loss became nan at step 3; lower lr (now 0.5)"


# ---- property tests: the config parser takes any value and either accepts it or says why -------

VALUES = st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none(),
                   st.integers().map(str), st.floats().map(str),
                   st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-1", "none", "cpu", "cuda:0", "hf:"]))


def _parses_or_says_why(cls, values: dict) -> None:
    try:
        cfg = from_dict(cls, values)
    except ConfigError:
        return
    cfg.check()  # an accepted config passes its own check, with every float finite
    assert all(math.isfinite(v) for v in vars(cfg).values() if isinstance(v, float))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(field_names(TrainConfig)), VALUES, max_size=3))
def test_train_config_parser_accepts_or_raises_config_error(values):
    _parses_or_says_why(TrainConfig, values)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(field_names(WorldConfig)), VALUES, max_size=3))
def test_world_config_parser_accepts_or_raises_config_error(values):
    _parses_or_says_why(WorldConfig, values)


# ---- property tests: the caption grammar ------------------------------------------------------

CLASSES = load_classes()
SCENES = st.lists(st.tuples(st.integers(0, len(CLASSES) - 1), st.floats(0, 1), st.floats(0, 1)),
                  min_size=1, max_size=4)


def _caption(seed: int, objects, background: int, p_background: float) -> str:
    dice = captions.Dice(np.random.default_rng(seed))
    return captions.describe(dice, [(CLASSES[c], y, x) for c, y, x in objects], BACKGROUNDS[background], p_background)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), SCENES, st.integers(0, len(BACKGROUNDS) - 1), st.floats(0, 1))
def test_captions_name_every_emoji_and_depend_only_on_the_seed(seed, objects, background, p_background):
    text = _caption(seed, objects, background, p_background)
    assert isinstance(text, str) and text == " ".join(text.split()) and text  # no stray or doubled spaces
    assert text == _caption(seed, objects, background, p_background)
    for c, _, _ in objects:  # by its name, its plural, or one of its short names ("a dog emoji")
        cls = CLASSES[c]
        assert any(n in text for n in [cls.name, captions.plural(cls.name) or cls.name, *cls.synonyms]), (text, cls)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), SCENES, st.integers(0, len(BACKGROUNDS) - 1)),
                min_size=1, max_size=8))
def test_word_vocabulary_round_trips_the_captions_it_was_fitted_on(scenes):
    texts = [_caption(seed, objects, background, 0.5) for seed, objects, background in scenes]
    tok = word_vocab.fit(texts, context_length=77)
    unk, eot = tok.tokenizer.token_to_id(word_vocab.UNK), tok.vocab_size - 1
    for text, ids in zip(texts, tok(texts).tolist()):
        ids = [i for i in ids if i != 0]  # padding
        assert unk not in ids
        assert ids[0] == 1 and ids[-1] == eot == max(ids)  # open_clip pools at the argmax: end-of-text
        assert [tok.tokenizer.id_to_token(i) for i in ids[1:-1]] == word_vocab.words(text)
    assert tok(["zzzq " + texts[0]])[0, 1] == unk  # a word it never saw
