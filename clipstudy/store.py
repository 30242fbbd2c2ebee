"""The result store: each config trained once, evaluated once, then read back.

    run = store.train_or_load(cfg, "data/runs")   # {"dir", "config", "summary", "metrics", "curve", "eval"}
    store.evaluate_run(Path("data/runs/default"))  # python -m clipstudy eval --run data/runs/default

A run lives in `<runs_dir>/<model>-<hash of the config>` (`run_dir`), so a changed setting never
reuses a stale run. Its files, lock and failure markers are clipstudy/records.py's.

Cost: all suites of the default world (1k classes x 4 styles, 5k retrieval scenes, probes)
take ~41 s for the default model on 2 cores of an AVX512-BF16 EPYC (benchmarks/core.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from clipstudy import distributed, models, tome
from clipstudy.compute import resolve_device, resolve_precision
from clipstudy.config import from_dict, to_dict
from clipstudy.data import DataError, data_identity, load_world_info
from clipstudy.evaluate import EVAL_VERSION, evaluate_world, fit_gap
from clipstudy.records import FAILED, InvalidRun, check_writable, recorded_eval, run_lock, run_problem, run_record
from clipstudy.train import TrainConfig, train


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
        tome.apply(model, tome.run_schedule(from_dict(TrainConfig, cfg["train"])))
    return model, models.checkpoint_tokenizer(run, info), cfg


def evaluate_run(run: Path, world: Path | None = None, suites: list[str] | None = None,
                 batch_size: int | None = None, progress: bool = True, device: str | None = None) -> dict[str, float]:
    """Evaluate a run on a world's suites, on `device` (None: the device it was trained on, as
    "auto" resolves here), `batch_size` images at a time (None: 256 on CPU, 1,024 on a GPU,
    `evaluate.batch_for`); the result is recorded in `<run>/eval.json` under the world's path,
    with what the world was and which protocol version and precision scored it. A folder where
    that cannot be written is a ConfigError before anything is scored."""
    check_writable(run, f"eval records its metrics in {run / 'eval.json'}, so nothing was scored; make the "
                        f"run folder writable")
    lock = run_lock(run)  # its folder made now: a store that cannot hold it fails before scoring too
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
    with lock:  # another process may record its own evaluation of this run meanwhile
        record = json.loads(path.read_text()) if path.is_file() else {}
        record[str(world)] = {"metrics": result, "version": EVAL_VERSION, "world": data_identity(world),
                              "precision": precision, "device": device, "suites": suites}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, path)
    return result


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
    speed-only `threads` and `keep_optimizer`; fields newer than HASHED_ALWAYS only when set, so
    `compile`, whose random draws differ from eager ones, only when on), of the data the `data`
    field points at, and of the training code's STORE_VERSION."""
    defaults = to_dict(type(cfg)())
    fields = {k: v for k, v in to_dict(cfg).items() if k not in ("out", "overwrite", "threads", "keep_optimizer", "data_workers")
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


def run_dir(cfg, runs_dir: str | Path = "data/runs") -> Path:
    """The store's folder for `cfg`: `<runs_dir>/<model>-<config_hash>`."""
    return Path(runs_dir) / f"{cfg.model}-{config_hash(cfg)}"


def train_or_load(cfg, runs_dir: str | Path = "data/runs", world: Path | None = None, progress: bool = True,
                  suites: list[str] | None = None, retrain: bool = False) -> dict:
    """The run for `cfg`: trained and evaluated once (on `suites` of the world, None = all), then
    read back from `run_dir(cfg, runs_dir)`.

    Safe to call from several processes at once: the run's lock lets one train while the others
    wait, then load. A partial run (killed) is resumed; a failed run (non-finite loss) raises
    RunFailed and an invalid folder InvalidRun, unless `retrain` asks to train either again.
    Under torchrun every rank trains its part of the run and rank 0 evaluates and records it.
    Returns {"dir", "config", "summary", "metrics" (list of dicts), "curve", "eval" (dict[str, float])}.
    """
    run = run_dir(cfg, runs_dir)
    run.parent.mkdir(parents=True, exist_ok=True)
    world = world or Path(cfg.data)
    rank, world_size = distributed.setup(cfg.device)
    if world_size > 1:
        return _train_or_load_ranks(cfg, run, world, suites, rank, world_size, progress)
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
        return run_record(run, recorded_eval(run, world, suites) or evaluate_run(run, world, suites, progress=progress))


def _train_or_load_ranks(cfg, run: Path, world: Path, suites: list[str] | None, rank: int, world_size: int,
                         progress: bool) -> dict:
    """train_or_load under torchrun: rank 0 decides (its view of the folder is broadcast), every
    rank trains its slice of each batch (`train` takes the run's lock on rank 0 only, so no rank
    waits on a lock another rank holds), rank 0 evaluates and every rank returns its record."""
    problem = distributed.broadcast(run_problem(run) if run.exists() else "absent", world_size)
    if problem not in (None, "absent"):
        raise InvalidRun(f"run folder {run} is not a complete run ({problem}); delete it to train it again")
    if problem == "absent":
        train(dataclasses.replace(cfg, out=str(run)), progress=progress)
    metrics = (recorded_eval(run, world, suites) or evaluate_run(run, world, suites, progress=progress)) if rank == 0 else None
    return run_record(run, distributed.broadcast(metrics, world_size))
