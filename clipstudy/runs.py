"""Run folders after training: load the checkpoint, evaluate it, record `eval.json`.

    python -m clipstudy eval --run data/runs/default

Cost: all suites of the default world (1k classes x 4 styles, 5k retrieval scenes, probes)
take ~41 s for the default model on 2 cores of an AVX512-BF16 EPYC (benchmarks/core.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from clipstudy import models, tome
from clipstudy.data import DataError, load_world_info


class RunFailed(RuntimeError):
    """A run that could not finish (a non-finite loss): the message names the step and the lr,
    the run folder keeps its last good checkpoint and a `failed.json`."""


def run_lock(run: Path):
    """The lock of a run folder (`<run>.lock` beside it): held by the process that trains it; the
    OS drops it when that process dies, so a crashed holder never blocks the store. One object per
    path in a process (re-entrant), so train_or_load and train can both take it."""
    import filelock

    return filelock.FileLock(f"{run}.lock", is_singleton=True)


def load_run(run: Path):
    """-> (model in eval mode, tokenizer, config.json of the run)."""
    ckpt = run / "checkpoint.pt"
    if not ckpt.is_file():
        partial = run.with_name(run.name + ".partial")
        hint = f" ({partial} exists: that run did not finish)" if partial.exists() else ""
        raise DataError(f"no checkpoint at {ckpt}{hint}")
    model, info = models.load_checkpoint(ckpt)
    cfg = json.loads((run / "config.json").read_text())
    if cfg["train"].get("tome_r"):  # token merging is a forward change, not weights: at inference as in training
        from clipstudy.config import from_dict
        from clipstudy.train import TrainConfig, tome_schedule

        tome.apply(model, tome_schedule(from_dict(TrainConfig, cfg["train"])))
    return model, models.checkpoint_tokenizer(run, info), cfg


def evaluate_run(run: Path, world: Path | None = None, suites: list[str] | None = None,
                 batch_size: int = 256, progress: bool = True, device: str | None = None) -> dict[str, float]:
    """Evaluate a run on a world's suites, on `device` (None: the device it was trained on, as
    "auto" resolves here); the result is recorded in `<run>/eval.json` under the world's path,
    with what the world was and which protocol version and precision scored it."""
    from clipstudy.compute import resolve_device, resolve_precision
    from clipstudy.evaluate import EVAL_VERSION, evaluate_world, fit_gap

    model, tokenizer, cfg = load_run(run)
    trained_on = Path(cfg["train"]["data"])
    world = world or trained_on
    device = str(resolve_device(device or cfg["train"].get("device", "auto")))
    model = model.to(device)
    precision = resolve_precision("auto", device)
    result = evaluate_world(model, tokenizer, world, suites=suites, batch_size=batch_size, progress=progress,
                            device=device, precision=precision)
    info = load_world_info(world)
    if (suites is None or "retrieval" in suites) and Path(world).resolve() == trained_on.resolve() \
            and "retrieval" in info["suites"]:
        # the pool's size: an EmojiWorld's config holds it; a real world's pool was counted by the run
        pool = cfg["train"]["data_limit"] or info["config"].get("pairs") or \
            json.loads((run / "summary.json").read_text())["pool_pairs"]
        result.update(fit_gap(model, tokenizer, world, pool, batch_size=batch_size, device=device, precision=precision))
    path = run / "eval.json"
    with run_lock(run):  # another process may record its own evaluation of this run meanwhile
        record = json.loads(path.read_text()) if path.is_file() else {}
        record[str(world)] = {"metrics": result, "version": EVAL_VERSION, "world": data_identity(world),
                              "precision": precision, "device": device, "suites": suites}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, path)
    return result


def recorded_eval(run: Path, world: Path, suites: list[str] | None = None) -> dict[str, float] | None:
    """The metrics `eval.json` holds for `world` if they are current: the same world content, the
    current protocol version, and every suite asked for (`suites`; None = all of them); else None."""
    from clipstudy.evaluate import EVAL_VERSION

    path = Path(run) / "eval.json"
    entry = json.loads(path.read_text()).get(str(world)) if path.is_file() else None
    if not (isinstance(entry, dict) and entry.get("version") == EVAL_VERSION and entry.get("world") == data_identity(world)):
        return None
    held = entry.get("suites")  # None: every suite of the world
    covered = held is None or (suites is not None and set(suites) <= set(held))
    return entry["metrics"] if covered else None


def data_identity(data: str | Path) -> str:
    """What the data is, not only where: a world folder's world.json (less its build timings), so
    a world rebuilt with other settings at the same path is other data; any other source, its path."""
    info_path = Path(data) / "world.json"
    if not info_path.is_file():
        return str(data)
    info = json.loads(info_path.read_text())
    info.pop("seconds", None)
    return hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()


# Bump when a change to training or the models changes what a config produces: every stored run
# is then trained again rather than reused (eval.json has its own EVAL_VERSION).
STORE_VERSION = 2  # 2: word vocabulary, 16-token captions, temperature fields


# The TrainConfig fields of STORE_VERSION 2. A field added since is hashed only when it differs
# from its default, so adding a training strategy keeps every stored run's key (and the runs).
HASHED_ALWAYS = frozenset((
    "data", "model", "image_size", "data_limit", "samples", "batch_size", "lr", "min_lr", "warmup",
    "weight_decay", "optimizer", "beta1", "beta2", "eps", "grad_clip", "precision", "temperature",
    "learn_temperature", "vocab", "context_length", "seed", "device", "log_every", "curve_every",
    "checkpoint_every", "loss"))


def config_hash(cfg) -> str:
    """Short hash of every field that changes a run's result (not where it is written, nor the
    speed-only `threads` and `compile`; fields newer than HASHED_ALWAYS only when set), of the
    data the `data` field points at, and of the training code's STORE_VERSION."""
    from clipstudy.compute import resolve_device, resolve_precision
    from clipstudy.config import to_dict

    defaults = to_dict(type(cfg)())
    fields = {k: v for k, v in to_dict(cfg).items() if k not in ("out", "overwrite", "threads", "compile", "data_workers")
              and (k in HASHED_ALWAYS or v != defaults[k])}
    if getattr(cfg, "data_workers", 0):  # how many workers decode changes nothing; streaming keeps undecodable rows (replaced when drawn)
        fields["stream"] = True
    # "auto" is keyed by what it resolves to here, so a bf16 and an fp32 run never share a record
    fields["precision"] = resolve_precision(cfg.precision, resolve_device(cfg.device))
    fields["data_identity"] = data_identity(cfg.data)
    if fields.get("data_subset"):  # the rows a run trains on, not where their file is
        fields["data_subset"] = hashlib.sha256(Path(cfg.data_subset).read_bytes()).hexdigest()
    fields["store_version"] = STORE_VERSION
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


class InvalidRun(DataError):
    """A run folder in the store that is not a complete run (files missing or unreadable)."""


RUN_FILES = ("config.json", "summary.json", "metrics.jsonl", "checkpoint.pt")


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


def train_or_load(cfg, runs_dir: str | Path = "data/runs", world: Path | None = None, progress: bool = True,
                  suites: list[str] | None = None, retrain: bool = False) -> dict:
    """The run for `cfg`: trained and evaluated once (on `suites` of the world, None = all), then
    read back from `<runs_dir>/<model>-<hash>`.

    The folder name carries a hash of the config, so a changed setting never reuses a stale run.
    Safe to call from several processes at once: the run's lock lets one train while the others
    wait, then load. A partial run (killed) is resumed; a failed run (non-finite loss) raises
    RunFailed and an invalid folder InvalidRun, unless `retrain` asks to train either again.
    Returns {"dir", "config", "summary", "metrics" (list of dicts), "eval" (dict[str, float])}.
    """
    import dataclasses
    import shutil

    from clipstudy.train import FAILED, train

    run = Path(runs_dir) / f"{cfg.model}-{config_hash(cfg)}"
    run.parent.mkdir(parents=True, exist_ok=True)
    with run_lock(run):
        problem = run_problem(run) if run.exists() else None
        if problem and not retrain:
            raise InvalidRun(f"run folder {run} is not a complete run ({problem}); train it again with "
                             f"retrain=True, or delete the folder")
        if problem:
            shutil.rmtree(run)
        if not run.exists():
            failed = (run.with_name(run.name + ".partial") / FAILED).is_file()
            train(dataclasses.replace(cfg, out=str(run), overwrite=retrain and failed), progress=progress)
        world = world or Path(cfg.data)
        return run_record(run, recorded_eval(run, world, suites) or evaluate_run(run, world, suites, progress=progress))


def run_record(run: Path, metrics: dict[str, float]) -> dict:
    """A finished run folder as chapters use it: {"dir", "config", "summary", "metrics" (list of
    dicts), "curve" (its learning curve, empty without one), "eval" (the given evaluation metrics)}."""
    return {"dir": run, "config": json.loads((run / "config.json").read_text()),
            "summary": json.loads((run / "summary.json").read_text()), "metrics": read_metrics(run),
            "curve": read_metrics(run, "curve.jsonl") if (run / "curve.jsonl").is_file() else [], "eval": metrics}


def read_metrics(run: Path, name: str = "metrics.jsonl") -> list[dict]:
    """The rows of a run's metrics.jsonl (or another JSON-lines file of it, e.g. curve.jsonl), in order."""
    return [json.loads(line) for line in (Path(run) / name).read_text().splitlines() if line]
