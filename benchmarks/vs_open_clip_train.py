"""clipstudy's trainer vs open_clip's reference trainer, side by side in one run.

    .venv/bin/python benchmarks/vs_open_clip_train.py [--steps 40] [--workers 0,2] [--out benchmarks/results]

For each setting (the laptop default: vit-s-8 at 32 px, batch 256; and the tiny 4x128 ViT at
64 px, batch 128) and each precision (fp32, bf16 autocast), both trainers train the same model
config on the same world for the same steps, batch, optimiser settings and torch threads:

- clipstudy: `python -m clipstudy train` on the world folder (uint8 arrays in memory);
- open_clip_train: `python -m open_clip_train.main` on the same world exported to its CSV format
  (PNG files), once per `--workers` value (data-loader processes).

Throughput is the median of per-step samples/s after `--skip` warm-up steps, as each trainer
logs it (both time a step from the end of the previous one, data loading included); memory is
the peak resident set of the trainer's process (data-loader workers not included). Prints a table and
writes it with the ratios as JSON. Cost: ~10 minutes on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from clipstudy.compute import describe, resolve_device, resolve_precision
from clipstudy.records import read_metrics
from clipstudy.world import WorldConfig, build_world, export_csv

from _results import write_result  # this folder: scripts run by path have it on sys.path

HERE = Path(__file__).resolve().parent
SETTINGS = {  # name: (model, image size, batch)
    "laptop": ("vit-s-8", 32, 256),
    "tiny-4x128": ("vit-ti-8", 64, 128),
}
OPEN_CLIP_PRECISION = {"fp32": "fp32", "bf16": "amp_bf16"}
STEP_LOG = re.compile(r"Batch \(t\): [\d.]+, ([\d.]+)/s")


def launch(peak: Path, module: str, args: list[str], cwd: Path) -> dict:
    cmd = [sys.executable, str(HERE / "_launch.py"), str(peak), module, *args]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(peak.read_text())


def median_after(values: list[float], skip: int) -> float:
    if len(values) <= skip:
        raise RuntimeError(f"only {len(values)} step timings; need more than --skip={skip}")
    return round(statistics.median(values[skip:]), 1)


def ours(world: Path, tmp: Path, model: str, size: int, batch: int, steps: int, precision: str, device,
         skip: int) -> dict:
    out = tmp / f"ours-{model}-{precision}"
    peak = launch(tmp / "peak.json", "clipstudy", [
        "--quiet", "train", "--data", str(world), "--out", str(out), "--model", model, "--image-size", str(size),
        "--samples", str(steps * batch), "--batch-size", str(batch), "--warmup", str(5 * batch),
        "--precision", precision, "--device", str(device), "--log-every", "1",
        # the model exactly as open_clip_train builds it from the same JSON: BPE, 32 tokens
        "--vocab", "bpe", "--context-length", "32"], cwd=tmp)
    rates = [r["samples_per_s"] for r in read_metrics(out)]
    shutil.rmtree(out)
    return {"samples_per_s": median_after(rates, skip), **peak}


def open_clip_train(csv: Path, tmp: Path, model: str, size: int, batch: int, precision: str, workers: int,
                    device, skip: int) -> dict:
    name = f"oc-{model}-{precision}-w{workers}"
    peak = launch(tmp / "peak.json", "open_clip_train.main", [
        "--train-data", str(csv), "--dataset-type", "csv", "--model", model, "--force-image-size", str(size),
        "--image-mean", "0.5", "0.5", "0.5", "--image-std", "0.5", "0.5", "0.5",
        "--batch-size", str(batch), "--epochs", "1", "--lr", "1e-3", "--wd", "0.1", "--warmup", "5",
        "--beta1", "0.9", "--beta2", "0.98", "--eps", "1e-6", "--grad-clip-norm", "1.0",
        "--precision", OPEN_CLIP_PRECISION[precision], "--workers", str(workers), "--device", str(device),
        "--log-every-n-steps", "1", "--save-frequency", "0", "--zeroshot-frequency", "0",
        "--val-frequency", "0", "--report-to", "", "--logs", str(tmp / "logs"), "--name", name,
        "--seed", "0"], cwd=tmp)
    log = (tmp / "logs" / name / "out.log").read_text()
    rates = [float(m) for m in STEP_LOG.findall(log)]
    shutil.rmtree(tmp / "logs" / name)
    return {"samples_per_s": median_after(rates, skip), **peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40, help="training steps per measurement")
    ap.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the median")
    ap.add_argument("--workers", default="0,2", help="open_clip_train data-loader workers to try")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"any of {list(SETTINGS)}")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    settings = args.settings.split(",")
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        sys.exit(f"error: unknown setting(s) {bad}; valid: {list(SETTINGS)}")

    device = resolve_device("auto")
    results: dict = {"machine": describe(device), "device": str(device), "torch_threads": torch.get_num_threads(), "steps": args.steps,
                     "skip": args.skip, "auto_precision": resolve_precision("auto", "cpu"), "rows": []}
    tmp = Path(tempfile.mkdtemp(prefix="clipstudy-vs-oc-"))
    try:
        for setting in settings:
            model, size, batch = SETTINGS[setting]
            world = tmp / f"world-{setting}"
            build_world(WorldConfig(pairs=args.steps * batch, image_size=size), world, progress=False)
            csv = export_csv(world, tmp / f"csv-{setting}")
            for precision in args.precisions.split(","):
                row = {"setting": setting, "model": model, "image_size": size, "batch": batch, "precision": precision}
                row["clipstudy"] = ours(world, tmp, model, size, batch, args.steps, precision, device, args.skip)
                for w in [int(w) for w in args.workers.split(",")]:
                    row[f"open_clip_train_w{w}"] = open_clip_train(csv, tmp, model, size, batch, precision, w,
                                                                   device, args.skip)
                best = max(v["samples_per_s"] for k, v in row.items() if k.startswith("open_clip_train"))
                row["speedup_vs_best_open_clip_train"] = round(row["clipstudy"]["samples_per_s"] / best, 2)
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'setting':12s} {'precision':9s} {'trainer':20s} {'samples/s':>10s} {'peak MiB':>9s}")
    for row in results["rows"]:
        for key, value in row.items():
            if isinstance(value, dict):
                print(f"{row['setting']:12s} {row['precision']:9s} {key:20s} {value['samples_per_s']:10.1f} "
                      f"{value['peak_rss_mib']:9.0f}")
        print(f"{'':12s} {'':9s} {'clipstudy / best open_clip_train':32s} {row['speedup_vs_best_open_clip_train']:.2f}x")
    write_result(args.out, "vs-open-clip-train", results, gpu=torch.cuda.is_available())


if __name__ == "__main__":
    main()
