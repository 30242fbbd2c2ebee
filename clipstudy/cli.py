"""Command line: the same entry points the notebooks call.

    python -m clipstudy world build --out data/worlds/default [--pairs 100000 --image-size 32 ...]
    python -m clipstudy world export --world data/worlds/default --format wds --out data/shards
    python -m clipstudy world real --out data/worlds/real --pool data/cc3m/shards --image-size 64 \
        --eval id=imagenet1k:/data/imagenet/val --eval shift-imagenet-r=imagenet-r:/data/imagenet-r
    python -m clipstudy train --data data/worlds/default --out data/runs/demo [--samples ...]
    python -m clipstudy eval --run data/runs/demo --world data/worlds/default
    python -m clipstudy models
    python -m clipstudy book run --profile laptop

Config fields become options (`--batch-size 128`); `--config file.json` loads a JSON of fields
first. Bad input prints one `error:` line naming the bad value and the valid choices, exits 2,
and writes nothing (a folder that cannot be written too); a run that stops on a non-finite loss,
a notebook that fails or a full disk prints one `error:` line and exits 1; Ctrl-C prints one
line and exits 130 (a run stops at the end of a step, checkpointed if it has checkpoint_every).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import json
import os
import re
import shutil
import sys
from pathlib import Path

from clipstudy import book, models
from clipstudy import config as C
from clipstudy.book import NotebookFailed
from clipstudy.chapter_train import train_chapter
from clipstudy.chapters import PAGES
from clipstudy.compute import available_devices, resolve_device
from clipstudy.data import DataError, load_world_info
from clipstudy.real import build_real_world, eval_set_names
from clipstudy.records import RunFailed, check_writable
from clipstudy.store import evaluate_run
from clipstudy.train import TrainConfig, train
from clipstudy.world import WorldConfig, build_world, export_csv, export_hf, export_webdataset
from clipstudy.world.styles import STYLES, fetch_npm_styles


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors, same shape as ours
        valid = sorted(o for a in self._actions for o in a.option_strings if o.startswith("--"))
        hint = f"; valid options: {' '.join(valid)}" if "unrecognized" in message else ""
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")


class _Subcommand(_Parser):
    """A subcommand's parser rejects options it does not know itself, so the hint lists its own
    options (argparse hands them up to the top parser, whose hint would list the top's)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return namespace, extra


def _add_config_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    helps = C.field_help(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None, metavar="V",
                            help=f"{helps.get(f.name, '')} (default: {default})")
    parser.add_argument("--config", default=None, help="JSON file of fields, applied before the options")


def _config_from_args(cls: type, args: argparse.Namespace, extra: dict | None = None):
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if getattr(args, f.name, None) is not None}
    values.update(extra or {})
    return C.load(cls, args.config, values)


def _world_build(args) -> int:
    cfg = _config_from_args(WorldConfig, args)
    _check_out(args.out)
    info = build_world(cfg, Path(args.out), overwrite=args.overwrite, progress=not args.quiet)
    print(json.dumps({"out": args.out, "counts": info.get("counts"), "seconds": info.get("seconds")}, indent=2))
    return 0


def _check_out(out: str | Path) -> None:
    """A folder --out cannot be made in is one error line before any work."""
    check_writable(Path(out).parent, "choose another --out")


def _world_styles(args) -> int:
    if args.fetch:
        fetch_npm_styles()
    for name, style in STYLES.items():
        print(f"{name:14s} {'installed' if style.available() else 'missing  '}  {style.source}")
    return 0


def _world_export(args) -> int:
    out = Path(args.out)
    if out.exists():
        raise C.ConfigError(f"export folder {out} already exists; choose another --out")
    _check_out(out)
    export = {"wds": export_webdataset, "hf": export_hf,
              "csv": functools.partial(export_csv, image_root=out)}[args.format]
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")  # renamed when complete: no half export
    try:
        export(Path(args.world), tmp)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {args.format} export of {args.world} to {out}")
    return 0


def _world_real(args) -> int:
    eval_sets = {}
    for value in args.eval:
        suite, name, path = _eval_option(value)
        if suite in eval_sets:
            raise C.ConfigError(f"--eval {value}: suite {suite!r} is given twice; one set per suite")
        eval_sets[suite] = (name, path)
    _check_out(args.out)
    out = build_real_world(args.out, args.pool, eval_sets, args.image_size, overwrite=args.overwrite,
                           progress=not args.quiet, limit=args.limit)
    info = json.loads((out / "world.json").read_text())
    suites = {name: {"n": s["n"], "skipped": s["skipped"]} for name, s in info["suites"].items()}
    print(json.dumps({"out": str(out), "suites": suites, "seconds": info["seconds"]}, indent=2))
    return 0


def _eval_option(value: str) -> tuple[str, str | None, str]:
    """`--eval SUITE=[SET:]PATH` -> (suite, set name or None, path). The part before the first ':'
    is a set name only if it is one (`real.eval_set_names()`), so a path may hold ':' too."""
    suite, eq, rest = value.partition("=")
    if not eq or not suite or not rest:
        raise C.ConfigError(f"--eval {value!r} is not SUITE=[SET:]PATH; e.g. --eval id=imagenet1k:/data/imagenet/val "
                            f"or --eval id=/data/imagenet/val")
    name, colon, path = rest.partition(":")
    if colon and re.sub(r"^wds[/_]", "", name) in eval_set_names():
        return suite, name, path
    if colon and "/" not in name and not Path(rest).exists():  # a mistyped set name, not a path
        raise C.ConfigError(f"--eval {value}: {name!r} is not an evaluation set name and {rest} is no path; "
                            f"valid names: {eval_set_names()} (optionally prefixed 'wds/' or 'wds_')")
    return suite, None, rest


def _train(args) -> int:
    cfg = _config_from_args(TrainConfig, args)
    summary = train(cfg, progress=not args.quiet)
    if _rank() == 0:  # under torchrun every rank returns it
        print(json.dumps(summary, indent=2))
    return 0


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _chapter_train(args) -> int:
    try:
        shard = tuple(int(x) for x in args.shard.split("/"))
        assert len(shard) == 2
    except (ValueError, AssertionError):
        raise C.ConfigError(f"--shard={args.shard!r} is not valid; use i/n, e.g. 0/4 (the first of 4 shards)") from None
    runs = train_chapter(args.profile, args.name, args.world, args.runs_dir, shard, progress=not args.quiet)
    if _rank() == 0:
        print(f"{len(runs)} runs of chapter {args.name} (profile {args.profile}, shard {args.shard}) are in {args.runs_dir}")
    return 0


def _eval(args) -> int:
    run = Path(args.run)
    if not run.is_dir():
        partial = run.with_name(run.name + ".partial")
        hint = f" ({partial} exists: that run did not finish)" if partial.exists() else ""
        raise DataError(f"--run {run} does not exist, so there is no checkpoint to evaluate{hint}; "
                        "give a run folder that `train` wrote")
    if args.batch_size < 0:
        raise C.ConfigError(f"--batch-size={args.batch_size} is out of range; use --batch-size >= 1 (or 0: 256 on CPU, 1024 on a GPU)")
    trained = _run_config(run)
    if args.device:
        resolve_device(args.device)
    else:  # the device the run trained on, if this machine has it
        try:
            resolve_device(trained.get("device", "auto"))
        except C.ConfigError:
            raise C.ConfigError(f"{run} trained on device={trained['device']!r}, which is not here; pass --device, "
                                f"one of {available_devices()}") from None
    if args.world and not Path(args.world).is_dir():
        raise DataError(f"--world {args.world} does not exist; give a world folder (`python -m clipstudy world build`)")
    world = Path(args.world or trained["data"])
    valid = list(load_world_info(world)["suites"])
    suites = args.suites.split(",") if args.suites else None
    unknown = [s for s in suites or [] if s not in valid]
    if unknown:
        raise C.ConfigError(f"--suites {unknown} are not suites of {world}; valid suites: {valid}")
    result = evaluate_run(run, Path(args.world) if args.world else None, suites=suites,
                          batch_size=args.batch_size or None, progress=not args.quiet, device=args.device or None)
    print(json.dumps(result, indent=2))
    return 0


def _run_config(run: Path) -> dict:
    """The TrainConfig fields a run folder's config.json records."""
    try:
        return json.loads((run / "config.json").read_text())["train"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{run} is not a run folder: no readable config.json with its training config; "
                        "give a run folder that `train` wrote") from None


def _models(args) -> int:
    tokens = TrainConfig.context_length  # the text tower's cost at the default caption length
    for name in sorted(models.MODELS):
        model = models.create_model(name, image_size=args.image_size, context_length=tokens)
        f = models.flops_per_sample(model, args.image_size, tokens)
        params = sum(p.numel() for p in model.visual.parameters()) / 1e6
        print(f"{name:12s} image {f['image_gflops']:7.3f} GFLOPs  text {f['text_gflops']:6.3f} GFLOPs  "
              f"image params {params:6.2f} M")
    return 0


def _book_run(args) -> int:
    if args.timeout < 1:
        raise C.ConfigError(f"--timeout={args.timeout} is out of range; use --timeout >= 1 (seconds per cell)")
    only = args.only.split(",") if args.only else None
    params = {"study_world": args.study_world} if args.study_world else {}
    for value in args.param:
        name, eq, text = value.partition("=")
        if not eq or not name.isidentifier():
            raise C.ConfigError(f"--param {value!r} is not NAME=VALUE; e.g. --param reference=open_clip:ViT-B-32:ckpt.pt")
        try:  # numbers, true/false and JSON lists as themselves; anything else as text
            params[name] = json.loads(text)
        except ValueError:
            params[name] = text
    book.execute(args.profile, args.world, timeout_s=args.timeout, only=only, parameters=params or None)
    if not args.no_html:
        print(f"book written to {book.build_html()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m clipstudy", description=__doc__.split("\n\n")[0])
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Subcommand)

    world = sub.add_parser("world", help="build or export an EmojiWorld, or make a world of real data").add_subparsers(
        dest="world_command", required=True, parser_class=_Subcommand)
    build = world.add_parser("build", help="render the training pool and evaluation suites")
    build.add_argument("--out", default="data/worlds/default", help="world folder to create")
    build.add_argument("--overwrite", action="store_true", help="replace an existing world folder")
    _add_config_options(build, WorldConfig)
    build.set_defaults(func=_world_build)
    styles = world.add_parser("styles", help="list the art styles; --fetch installs the npm ones")
    styles.add_argument("--fetch", action="store_true", help="fetch the npm styles' art (once, ~25 MB)")
    styles.set_defaults(func=_world_styles)
    export = world.add_parser("export", help="write a world's training pool as tar shards, a HF dataset or a CSV")
    export.add_argument("--world", required=True, help="world folder")
    export.add_argument("--format", choices=["wds", "hf", "csv"], required=True,
                        help="wds = webdataset tar shards; hf = datasets.save_to_disk; "
                             "csv = open_clip_train's CSV (train.csv + images/)")
    export.add_argument("--out", required=True, help="folder to create")
    export.set_defaults(func=_world_export)
    real = world.add_parser("real", help="a world of real data: evaluation sets as its suites, a training pool it names")
    real.add_argument("--out", required=True, help="world folder to create")
    real.add_argument("--pool", required=True, help="training pairs: shards folder, brace pattern, HF dataset folder "
                                                    "or caption CSV / TSV (recorded, not read)")
    real.add_argument("--image-size", type=int, default=64, help="px the evaluation images are stored at (default: 64)")
    real.add_argument("--eval", action="append", required=True, metavar="SUITE=[SET:]PATH",
                      help="an evaluation set as a suite, once per suite: id, probe, retrieval or shift-<name>; "
                           "SET a CLIP_benchmark name (imagenet1k, imagenet-r, mscoco_captions, ...), e.g. "
                           "id=imagenet1k:/data/imagenet/val")
    real.add_argument("--limit", type=int, default=None, help="at most this many images per set (default: all)")
    real.add_argument("--overwrite", action="store_true", help="replace an existing world folder")
    real.set_defaults(func=_world_real)

    tr = sub.add_parser("train", help="train a CLIP model (config fields as options)")
    _add_config_options(tr, TrainConfig)
    tr.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="evaluate a run's checkpoint on every suite of a world")
    ev.add_argument("--run", required=True, help="run folder (holds checkpoint.pt)")
    ev.add_argument("--world", default=None, help="world folder (default: the run's training data)")
    ev.add_argument("--suites", default=None, help="comma-separated suite names (default: all)")
    ev.add_argument("--batch-size", type=int, default=0, help="images or captions per forward pass (>= 1; default: 256 on CPU, 1024 on a GPU)")
    ev.add_argument("--device", default="", help="auto | cpu | cuda | cuda:<n> | mps (default: the run's training device)")
    ev.set_defaults(func=_eval)

    bk = sub.add_parser("book", help="execute the notebooks and build the HTML book").add_subparsers(
        dest="book_command", required=True, parser_class=_Subcommand)
    run = bk.add_parser("run", help="Papermill every notebook into book/, then jupyter-book build")
    run.add_argument("--profile", default="laptop", help="smoke | laptop | gpu | real")
    run.add_argument("--world", default="data/worlds/default", help="world folder the notebooks use")
    run.add_argument("--study-world", default=None,
                     help="world folder for the chapters (default: the profile's study world, built under data/worlds/)")
    run.add_argument("--only", default=None, help="comma-separated notebook names (default: all)")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a notebook parameter, to every notebook that declares it (repeatable), "
                          "e.g. --param reference=open_clip:ViT-B-32:ckpt.pt")
    run.add_argument("--timeout", type=int, default=3600, help="seconds per notebook cell")
    run.add_argument("--no-html", action="store_true", help="execute only; skip jupyter-book build")
    run.set_defaults(func=_book_run)

    ch = sub.add_parser("chapter", help="train a chapter's runs into the store ahead of its notebook").add_subparsers(
        dest="chapter_command", required=True, parser_class=_Subcommand)
    ct = ch.add_parser("train", help="train (or find) a chapter's runs, evaluated on its suites; under torchrun "
                                     "each run is data-parallel (the book's 'Re-run at scale' page)")
    ct.add_argument("--name", required=True, help=f"chapter: {' | '.join(PAGES)} (data_quality: one process, no "
                                                   "--shard, no torchrun; its cuts depend on its reference's scores)")
    ct.add_argument("--profile", default="laptop", help="smoke | laptop | gpu | real")
    ct.add_argument("--world", default="", help="study world folder (default: the profile's, built under data/worlds/)")
    ct.add_argument("--runs-dir", default="data/runs", help="the result store the notebooks read")
    ct.add_argument("--shard", default="0/1", help="i/n: train every n-th run from the i-th (one shard per machine or GPU)")
    ct.set_defaults(func=_chapter_train)

    md = sub.add_parser("models", help="list registered models with FLOPs per sample")
    md.add_argument("--image-size", type=int, default=32)
    md.set_defaults(func=_models)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a command; bad input is exit status 2, a run or notebook that fails is 1, each with one
    `error:` line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (C.ConfigError, DataError, FileNotFoundError, FileExistsError) as e:
        return _error(args, e, 2)
    except (RunFailed, NotebookFailed) as e:
        return _error(args, e, 1)
    except KeyboardInterrupt as e:  # Ctrl-C: one line (a run says where it stopped), the shell's status for it
        return _error(args, str(e) or "interrupted (Ctrl-C)", 130)
    except OSError as e:  # a folder that cannot be written, found only when written: one line, no traceback
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return _error(args, _disk_full(e), 1)
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR):
            raise
        return _error(args, f"{e.strerror}: {e.filename}", 2)


def _disk_full(e: OSError) -> str:
    """What filled up: the file being written and the space left on its disk."""
    if e.filename is None:
        return f"{e.strerror} while writing the output; free space there and run the same command again"
    folder = next(p for p in Path(e.filename).parents if p.exists())
    usage = shutil.disk_usage(folder)
    return (f"{e.strerror} writing {e.filename} ({usage.free / 2**20:.1f} MB free of {usage.total / 2**20:.0f} MB "
            f"on that disk); the part written was removed: free space there, or write elsewhere, and run the same "
            f"command again (a run with --checkpoint-every resumes from its last checkpoint)")


def _error(args: argparse.Namespace, e: Exception | str, status: int) -> int:
    # one line, whatever the message holds
    print(f"python -m clipstudy {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
