"""A study survives what shared machines do to it: `kill -9` mid-run (resumed exactly), two
processes asking for one run (trained once), a crashed lock holder, a run whose loss becomes NaN
(recorded as failed, never read), an invalid run folder; and torchrun data-parallel training
(2 processes on CPU with gloo give the one-process loss curve), and a chapter's runs trained
ahead of its notebook, in shards or under torchrun. ~2 minutes on 2 cores: each subprocess pays
~5 s of imports."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import torch

from clipstudy import cli
from clipstudy.config import ConfigError
from clipstudy.records import InvalidRun, RunFailed, recorded_eval, run_lock
from clipstudy.store import run_dir, train_or_load
from clipstudy.study import chapter, chapter_table, configs, run_grid, train_all
from clipstudy.records import FAILED
from clipstudy.train import TrainConfig, train

ENV = {**os.environ, "OMP_NUM_THREADS": "1",  # the repository first, then what the caller had (a GPU machine's carried packages)
       "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def world(tiny_world):
    return tiny_world  # tests/conftest.py: built once per session, read-only


def _train_args(world, out, *extra):
    return ["--quiet", "train", "--data", str(world), "--out", str(out), "--model", "vit-ti-8", "--samples", "1920",
            "--batch-size", "64", "--warmup", "320", "--log-every", "1", "--threads", "1", *extra]


def _rows(run: Path) -> list[dict]:  # the logged metrics less wall-clock timings
    return [{k: v for k, v in json.loads(line).items() if k not in ("samples_per_s", "seconds")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["state_dict"]


def _kill_at(cmd: list[str], metrics: Path, logged_steps: int) -> None:
    """Start `cmd`, SIGKILL it and its children once `metrics` has `logged_steps` lines."""
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while p.poll() is None:
        try:
            if len(metrics.read_text().splitlines()) >= logged_steps:
                break
        except OSError:
            pass
        time.sleep(0.005)
    for proc in [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]:  # torchrun's workers too
        proc.kill()
    p.wait()


def test_kill_minus_9_at_random_steps_then_resume_ends_identical(world, tmp_path):
    # augmentation and patch dropout draw random numbers every step: their RNG states resume too
    extra = ["--checkpoint-every", "320", "--augment", "crop_flip", "--patch-dropout", "0.5", "--curve-every", "960"]
    assert cli.main(_train_args(world, tmp_path / "whole", *extra)) == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "clipstudy", *_train_args(world, out, *extra)]
    for step in random.Random(os.getpid()).sample(range(2, 29), 2):
        _kill_at(cmd, tmp_path / "killed.partial" / "metrics.jsonl", step)
        assert not out.exists() and (tmp_path / "killed.partial").is_dir()
    assert cli.main(_train_args(world, out, *extra)) == 0
    assert _rows(out) == _rows(tmp_path / "whole")
    assert (out / "curve.jsonl").read_text() == (tmp_path / "whole" / "curve.jsonl").read_text()
    whole, resumed = _weights(tmp_path / "whole"), _weights(out)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_ctrl_c_stops_with_one_line_and_a_checkpoint_that_resumes_exactly(world, tmp_path):
    args = ("--checkpoint-every", "320")  # 30 steps: Ctrl-C after the 2nd lands well before the end on a loaded machine
    assert cli.main(_train_args(world, tmp_path / "whole", *args)) == 0
    out = tmp_path / "run"
    # the child starts with Ctrl-C's default disposition, as from a terminal, also when this process was
    # started ignoring SIGINT (a background job of a non-interactive shell: the child would inherit SIG_IGN)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        p = subprocess.Popen([sys.executable, "-m", "clipstudy", *_train_args(world, out, *args)], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, before)
    metrics = tmp_path / "run.partial" / "metrics.jsonl"
    while p.poll() is None and not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):
        time.sleep(0.005)
    os.killpg(p.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole process group
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and len(err.splitlines()) == 1, err
    step = torch.load(tmp_path / "run.partial" / "checkpoint.pt", weights_only=True)["step"]
    assert 2 <= step < 30 and err.startswith(f"python -m clipstudy train: error: interrupted (Ctrl-C) at step {step} "
                                             f"of 30; its checkpoint is saved in {tmp_path / 'run.partial'}")
    assert cli.main(_train_args(world, out, *args)) == 0
    assert json.loads((out / "config.json").read_text())["resumed_from_step"] == step
    assert _rows(out) == _rows(tmp_path / "whole")
    whole, resumed = _weights(tmp_path / "whole"), _weights(out)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_resume_refuses_another_config_and_overwrite_starts_again(world, tmp_path, capsys):
    out = tmp_path / "run"
    _kill_at([sys.executable, "-m", "clipstudy", *_train_args(world, out, "--checkpoint-every", "128")],
             tmp_path / "run.partial" / "metrics.jsonl", 6)
    assert cli.main(_train_args(world, out, "--checkpoint-every", "128", "--lr", "5e-4")) == 2
    assert "differs in ['lr']" in capsys.readouterr().err
    assert cli.main([*_train_args(world, out, "--lr", "5e-4"), "--overwrite", "true"]) == 0
    assert json.loads((out / "config.json").read_text())["resumed_from_step"] == 0


CONCURRENT = textwrap.dedent("""
    import json, os, sys
    from clipstudy import store
    from clipstudy.train import TrainConfig
    real = store.train
    def counted(cfg, progress=True):
        with open(sys.argv[2], "a") as f:
            f.write(f"{os.getpid()}\\n")
        return real(cfg, progress)
    store.train = counted
    cfg = TrainConfig(data=sys.argv[1], model="vit-ti-8", samples=1280, batch_size=64, warmup=0, threads=1)
    run = store.train_or_load(cfg, runs_dir=sys.argv[3], progress=False, suites=["id"])
    print(json.dumps({"dir": str(run["dir"]), "top1": run["eval"]["id/top1"]}))
""")


def test_two_processes_one_config_train_once_and_both_get_the_run(world, tmp_path):
    script, log = tmp_path / "one_run.py", tmp_path / "trained.log"
    script.write_text(CONCURRENT)
    procs = [subprocess.Popen([sys.executable, str(script), str(world), str(log), str(tmp_path / "runs")],
                              env=ENV, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=300)[0].splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(log.read_text().splitlines()) == 1  # one process trained, the other waited and loaded
    assert results[0] == results[1]


def test_a_crashed_lock_holder_does_not_block_the_store(world, tmp_path):
    cfg = TrainConfig(data=str(world), model="vit-ti-8", samples=128, batch_size=64, warmup=0)
    run = run_dir(cfg, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time, filelock; "
                               "lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); time.sleep(600)",
                               run_lock(run).lock_file], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ConfigError, match="being trained by another process"):  # refused at once while held
        train(TrainConfig(**{**cfg.__dict__, "out": str(run)}), progress=False)
    assert not run.exists() and not Path(f"{run}.partial").exists()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert train_or_load(cfg, runs_dir=tmp_path, progress=False, suites=["id"])["dir"] == run


def test_a_run_leaves_no_lock_file_beside_it(world, tmp_path, capsys):
    assert cli.main(["--quiet", "train", "--data", str(world), "--model", "vit-ti-8", "--samples", "64",
                     "--batch-size", "32", "--out", str(tmp_path / "run")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", "run"]  # the store's one folder of locks
    assert Path(run_lock(tmp_path / "run").lock_file) == tmp_path / ".locks" / "run.lock"


@pytest.mark.parametrize("torch_error", [False, True])
def test_a_full_disk_removes_the_part_written_and_says_what_filled_up(world, tmp_path, capsys, monkeypatch,
                                                                       torch_error):
    save, calls = torch.save, []

    def full_at_the_second(obj, f):
        calls.append(1)
        if len(calls) < 2:
            return save(obj, f)
        f.write(b"\0" * 4096)  # part of a checkpoint, then the disk is full
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            if torch_error:  # what torch's zip writer raises over it on a real full disk
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
            raise

    monkeypatch.setattr(torch, "save", full_at_the_second)
    out = tmp_path / "run"
    assert cli.main(["--quiet", "train", "--data", str(world), "--model", "vit-ti-8", "--samples", "128",
                     "--batch-size", "32", "--checkpoint-every", "32", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    ckpt = tmp_path / "run.partial" / "checkpoint.pt"
    assert len(err.splitlines()) == 1 and f"No space left on device writing {ckpt} (" in err and "MB free" in err
    assert not ckpt.with_name("checkpoint.pt.tmp").exists()
    assert torch.load(ckpt, weights_only=True)["step"] == 1  # the last whole checkpoint is kept


def test_a_nan_run_stops_keeps_its_last_good_checkpoint_and_is_recorded_failed(world, tmp_path, capsys):
    out = tmp_path / "nan"
    args = ["--quiet", "train", "--data", str(world), "--out", str(out), "--model", "vit-ti-8", "--samples", "1280",
            "--batch-size", "64", "--warmup", "64", "--lr", "1e3", "--checkpoint-every", "64", "--log-every", "1"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("non-finite" in err[0] or "loss became" in err[0])
    assert "at step" in err[0] and "(lr " in err[0]
    partial = tmp_path / "nan.partial"
    assert not out.exists() and (partial / FAILED).is_file()
    ckpt = torch.load(partial / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert cli.main(args) == 1  # the same command reports the recorded failure; it does not retrain
    assert "failed before" in capsys.readouterr().err


def test_the_store_reports_failed_and_invalid_runs_and_chapters_leave_them_out(world, tmp_path):
    bad = TrainConfig(data=str(world), model="vit-ti-8", samples=1280, batch_size=64, warmup=64, lr=1e3)
    with pytest.raises(RunFailed):
        train_or_load(bad, runs_dir=tmp_path, progress=False)
    with pytest.raises(RunFailed, match="failed before"):
        train_or_load(bad, runs_dir=tmp_path, progress=False)
    good = TrainConfig(data=str(world), model="vit-ti-8", samples=128, batch_size=64, warmup=0)
    broken = run_dir(good, tmp_path)
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(InvalidRun, match="missing summary.json"):
        train_or_load(good, runs_dir=tmp_path, progress=False)
    with pytest.warns(UserWarning, match="2 of 2 runs left out"):
        assert run_grid([bad, good], tmp_path, world, progress=False, suites=["id"]) == []
    assert train_or_load(good, runs_dir=tmp_path, progress=False, suites=["id"], retrain=True)["dir"] == broken


def _torchrun(nproc: int, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "clipstudy", *args]


def test_two_gloo_processes_give_the_one_process_loss_curve_and_resume(world, tmp_path):
    args = lambda out, *more: _train_args(world, out, "--precision", "fp32", *more)  # noqa: E731
    assert cli.main(args(tmp_path / "one")) == 0
    subprocess.run(_torchrun(2, args(tmp_path / "two")), env=ENV, check=True, capture_output=True, timeout=300)
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert len(one) == len(two) == 30
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two)) < 1e-3
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
    # FLIP killed under torchrun, resumed under torchrun: each rank draws its own patches again
    # (restoring rank 0's random state on every rank made them drop the same ones)
    flip = lambda out, *more: args(out, "--patch-dropout", "0.5", "--checkpoint-every", "320", *more)  # noqa: E731
    subprocess.run(_torchrun(2, flip(tmp_path / "flip")), env=ENV, check=True, capture_output=True, timeout=300)
    _kill_at(_torchrun(2, flip(tmp_path / "again")), tmp_path / "again.partial" / "metrics.jsonl", 12)
    done = subprocess.run(_torchrun(2, flip(tmp_path / "again")), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, [line for line in done.stderr.splitlines() if "error" in line.lower()][:5]
    assert json.loads((tmp_path / "again" / "config.json").read_text())["resumed_from_step"] > 0
    assert _rows(tmp_path / "again") == _rows(tmp_path / "flip")


def test_a_chapter_trained_ahead_in_shards_and_under_torchrun_is_what_its_notebook_loads(world, tmp_path, capsys):
    for shard in ("0/2", "1/2"):
        assert cli.main(["--quiet", "chapter", "train", "--name", "strategies", "--profile", "smoke", "--world",
                         str(world), "--runs-dir", str(tmp_path / "store"), "--shard", shard]) == 0
    trained = sorted((tmp_path / "store").glob("*/summary.json"))
    _, table = chapter_table("smoke", "strategies", str(world), tmp_path / "store")
    assert sorted((tmp_path / "store").glob("*/summary.json")) == trained  # the notebook trained nothing
    assert len(table) == len(configs(chapter("smoke", "strategies"), world))
    # each run data-parallel over 2 processes
    subprocess.run(_torchrun(2, ["--quiet", "chapter", "train", "--name", "augmentation", "--profile", "smoke",
                                 "--world", str(world), "--runs-dir", str(tmp_path / "ddp")]),
                   env=ENV, check=True, capture_output=True, timeout=600)
    runs = sorted((tmp_path / "ddp").glob("*/config.json"))
    assert runs and all(json.loads(p.read_text())["world_size"] == 2 for p in runs)
    assert all(recorded_eval(p.parent, world, chapter("smoke", "augmentation").get("suites")) for p in runs)


def test_runs_train_side_by_side_and_come_back_in_order(world, tmp_path):
    cfgs = [TrainConfig(data=str(world), model="vit-ti-8", samples=128, batch_size=64, warmup=0, seed=seed)
            for seed in (1, 0)]
    runs, bad = train_all(cfgs, tmp_path, world, progress=False, suites=["id"], workers=2)
    assert bad == [] and [r["dir"] for r in runs] == [run_dir(c, tmp_path) for c in cfgs]
    assert [json.loads((r["dir"] / "config.json").read_text())["threads"] for r in runs] == [max(1, (os.cpu_count() or 1) // 2)] * 2
    again, _ = train_all(cfgs, tmp_path, world, progress=False, suites=["id"], workers=2)  # stored: loaded, not trained
    assert [r["summary"] for r in again] == [r["summary"] for r in runs]
