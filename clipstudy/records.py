"""A run folder's records, locks and failure markers: the bottom of the result store.

    with run_lock(run): ...                      # one process trains or records a run at a time
    run_problem(run)                             # None for a complete run, else what is missing
    recorded_eval(run, world, suites)            # the current metrics eval.json holds, or None
    run_record(run, metrics)                     # the dict chapters read
    check_writable(folder, what)                 # before work whose result is written there

The trainer (clipstudy/train.py) writes these files, the store (clipstudy/store.py) decides
when to train or evaluate; both import this module, and it imports neither.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import filelock

from clipstudy.config import ConfigError
from clipstudy.data import DataError, data_identity
from clipstudy.evaluate import EVAL_VERSION

FAILED = "failed.json"  # in a partial run folder: why the run stopped (a non-finite loss)
RUN_FILES = ("config.json", "summary.json", "metrics.jsonl", "checkpoint.pt")  # a complete run has each


class RunFailed(RuntimeError):
    """A run that could not finish (a non-finite loss): the message names the step and the lr,
    the run folder keeps its last good checkpoint and a `failed.json`."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C at the end of a step: the message names the step and whether a
    checkpoint was saved there to resume from. A KeyboardInterrupt, so nothing catches it as an error."""


class InvalidRun(DataError):
    """A run folder in the store that is not a complete run (files missing or unreadable)."""


LOCKS = ".locks"  # the folder of a store's lock files: `<runs_dir>/.locks/<run>.lock`


def run_lock(run: Path) -> filelock.FileLock:
    """The lock of a run folder: held by the process that trains it; the OS drops it when that
    process dies, so a crashed holder never blocks the store. One object per path in a process
    (re-entrant), so train_or_load and train can both take it.

    Its file stays after release, as filelock leaves it by design: deleting a lock file that
    another process has open and waits on would let a third create a new one, and two would then
    hold "the" lock. So the files live in one hidden folder beside the runs (LOCKS), not as a
    stray `<run>.lock` beside each run."""
    run = Path(run)
    folder = run.parent / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(str(folder / f"{run.name}.lock"), is_singleton=True)


def check_writable(folder: Path, what: str) -> None:
    """Raise ConfigError, naming the folder, why and `what` to do, unless a file can be created in
    `folder` (or, while it does not exist, in the nearest folder above it): checked before work
    whose result is written there, so that none is done and then lost. (A read-only or immutable
    folder fails here even for root, where permission bits do not.)"""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"cannot write in {folder}: {existing} is a file, not a folder; {what}")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".write-check-")
    except OSError as e:
        raise ConfigError(f"cannot write in {existing} ({e.strerror}); {what}") from None
    os.close(fd)
    os.unlink(probe)


def run_problem(run: Path) -> str | None:
    """What is wrong with a finished run folder, or None when it is complete and readable."""
    missing = [name for name in RUN_FILES if not (run / name).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    for name in ("config.json", "summary.json"):
        try:
            json.loads((run / name).read_text())
        except (OSError, ValueError) as e:
            return f"{name} is unreadable ({e})"
    return None


def recorded_eval(run: Path, world: Path, suites: list[str] | None = None) -> dict[str, float] | None:
    """The metrics `eval.json` holds for `world` if they are current: the same world content, the
    current protocol version, and every suite asked for (`suites`; None = all of them); else None."""
    path = Path(run) / "eval.json"
    entry = json.loads(path.read_text()).get(str(world)) if path.is_file() else None
    if not (isinstance(entry, dict) and entry.get("version") == EVAL_VERSION and entry.get("world") == data_identity(world)):
        return None
    held = entry.get("suites")  # None: every suite of the world
    covered = held is None or (suites is not None and set(suites) <= set(held))
    return entry["metrics"] if covered else None


def run_record(run: Path, metrics: dict[str, float]) -> dict:
    """A finished run folder as chapters use it: {"dir", "config", "summary", "metrics" (list of
    dicts), "curve" (its learning curve, empty without one), "eval" (the given evaluation metrics)}."""
    return {"dir": run, "config": json.loads((run / "config.json").read_text()),
            "summary": json.loads((run / "summary.json").read_text()), "metrics": read_metrics(run),
            "curve": read_metrics(run, "curve.jsonl") if (run / "curve.jsonl").is_file() else [], "eval": metrics}


def read_metrics(run: Path, name: str = "metrics.jsonl") -> list[dict]:
    """The rows of a run's metrics.jsonl (or another JSON-lines file of it, e.g. curve.jsonl), in order."""
    return [json.loads(line) for line in (Path(run) / name).read_text().splitlines() if line]


def recorded_runs(runs_dir: str | Path, world: Path) -> list[dict]:
    """Every finished run in the store with a current evaluation on `world` (the compute frontier
    reads them all): the same dicts as train_or_load, without training anything."""
    out = []
    for summary in sorted(Path(runs_dir).glob("*/summary.json")):
        ev = recorded_eval(summary.parent, world, suites=["id"])  # any evaluation that scored zero-shot
        if ev is not None:
            out.append(run_record(summary.parent, ev))
    return out
