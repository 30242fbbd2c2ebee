"""The GPU paths checked and timed on one CUDA GPU (issue 23), each part on its own so one failure
does not hide the others; one JSON of results and a table at the end.

    python benchmarks/gpu_check.py --world W64 --world-1021 W1021 [--out DIR] [--steps 40]

W64: a small world at 64 px (`python -m clipstudy world build --out W64 --pairs 2048 --image-size 64
--classes 60 --retrieval-images 200 --probe-per-class 12`); W1021: a world of every class at the
default world's suite sizes (`--out W1021 --pairs 4096`). benchmarks/gpu_check.sh runs this with
the throughput rows of benchmarks/mfu.py on a machine without internet.

Parts:
  strategies  vit-b-16 at 64 px, batch 1024, bf16: SigLIP + FLIP + ToMe + Stacked RandAugment,
              eager and compiled: samples/s, MFU against the measured bf16 matmul peak
  slip_resume SLIP (vit-b-16, batch 1024) killed with SIGKILL mid-run, resumed: the largest gap
              between its loss curve and the uninterrupted run's
  eval        that run evaluated on cuda and on cpu (every suite): the largest metric difference;
              then a vit-b-8 checkpoint evaluated on the 1,021-class world on cuda: seconds
  torchrun    `torchrun --nproc_per_node 1 ... --device cuda`: exit status and the run's device
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from clipstudy.compute import describe, matmul_peak
from clipstudy.records import read_metrics
from clipstudy.store import evaluate_run
from clipstudy.train import TrainConfig, train

from _results import write_result  # this folder: scripts run by path have it on sys.path

STRATEGIES = {"loss": "siglip", "patch_dropout": 0.5, "tome_r": 1, "augment": "stacked_randaugment"}


DEVICE, BATCH = "cuda", 1024  # --device cpu --batch 64: a dry run of the logic on a machine without a GPU


def throughput(world: Path, out: Path, steps: int, skip: int = 2, **fields) -> dict:
    """A short training run's median samples/s over its logged intervals (8, each a few steps: a logged
    step waits for the device) after the first `skip`."""
    log_every = max(1, steps // 8)
    cfg = TrainConfig(data=str(world), out=str(out), samples=steps * BATCH, warmup=0,
                      log_every=log_every, device=DEVICE, batch_size=BATCH, **fields)
    summary = train(cfg, progress=False)
    rows = read_metrics(out)
    shutil.rmtree(out)
    rate = statistics.median(r["samples_per_s"] for r in rows[skip:])
    return {**fields, "samples_per_s": round(rate, 1), "train_gflops_per_sample": round(summary["train_gflops_per_sample"], 4),
            "achieved_gflop_s": round(rate * summary["train_gflops_per_sample"], 1),
            "first_interval_s": round(rows[0]["seconds"], 2)}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "clipstudy", "--quiet", "train", *args]


def slip_args(world: Path, out: Path, steps: int) -> list[str]:
    return cli("--data", str(world), "--out", str(out), "--model", "vit-b-16", "--samples", str(steps * BATCH),
               "--batch-size", str(BATCH), "--warmup", "0", "--ssl-scale", "1", "--augment", "crop_flip",
               "--checkpoint-every", str(max(1, steps // 4) * BATCH), "--log-every", "1", "--device", DEVICE)


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def slip_resume(world: Path, tmp: Path, steps: int) -> dict:
    whole, again = tmp / "slip-whole", tmp / "slip-again"
    subprocess.run(slip_args(world, whole, steps), check=True)
    p = subprocess.Popen(slip_args(world, again, steps))
    metrics = again.with_name(again.name + ".partial") / "metrics.jsonl"
    while p.poll() is None and not (metrics.is_file() and len(metrics.read_text().splitlines()) >= steps // 2 + 3):
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    subprocess.run(slip_args(world, again, steps), check=True)
    twice = tmp / "slip-whole-2"  # the floor: GPU kernels that add in a varying order differ run to run
    subprocess.run(slip_args(world, twice, steps), check=True)
    a, b, c = losses(whole), losses(again), losses(twice)
    resumed = json.loads((again / "config.json").read_text())["resumed_from_step"]
    gap = lambda x, y: max(abs(u - v) for u, v in zip(x, y))  # noqa: E731
    return {"steps": len(a), "resumed_from_step": resumed, "max_loss_gap": gap(a, b),
            "max_loss_gap_two_uninterrupted": gap(a, c), "gap_before_resume": gap(a[:resumed], b[:resumed]),
            "final_loss": [a[-1], b[-1], c[-1]], "run": str(whole)}


def timed_eval(run: Path, world: Path, device: str) -> tuple[dict, float]:
    (run / "eval.json").unlink(missing_ok=True)  # score again, not read the record
    start = time.perf_counter()
    result = evaluate_run(run, world, progress=False, device=device)
    return result, round(time.perf_counter() - start, 2)


def evaluation(world: Path, world_1021: Path, slip_run: Path, tmp: Path) -> dict:
    cuda, cuda_s = timed_eval(slip_run, world, DEVICE)
    cpu, cpu_s = timed_eval(slip_run, world, "cpu")
    gap = {k: round(abs(cuda[k] - cpu[k]), 5) for k in cpu if isinstance(cpu[k], (int, float)) and "seconds" not in k}
    run = tmp / "b8-1021"
    train(TrainConfig(data=str(world_1021), out=str(run), model="vit-b-8", samples=20 * BATCH, batch_size=BATCH,
                      warmup=0, device=DEVICE), progress=False)
    first, first_s = timed_eval(run, world_1021, DEVICE)
    _, again_s = timed_eval(run, world_1021, DEVICE)
    return {"w64_cuda_s": cuda_s, "w64_cpu_s": cpu_s, "max_abs_diff_cuda_vs_cpu": max(gap.values()),
            "diffs": gap, "w1021_vit_b_8_cuda_s": [first_s, again_s],
            "w1021_suites": sorted(k for k in first if k.endswith("top1"))[:20]}


def torchrun_one(world: Path, tmp: Path) -> dict:
    out = tmp / "torchrun"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                           "-m", "clipstudy", "--quiet", "train", "--data", str(world), "--out", str(out), "--model",
                           "vit-b-16", "--samples", str(5 * BATCH), "--batch-size", str(BATCH), "--warmup", "0",
                           "--device", DEVICE], capture_output=True, text=True)
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() else {}
    return {"returncode": done.returncode, "device": config.get("device"), "stderr_tail": done.stderr[-600:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", required=True)
    ap.add_argument("--world-1021", required=True)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--parts", default="slip_resume,eval,torchrun,strategies")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a dry run of the logic")
    ap.add_argument("--batch", type=int, default=1024)
    args = ap.parse_args()
    global DEVICE, BATCH
    DEVICE, BATCH = args.device, args.batch
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device here; this script checks the GPU paths (--device cpu: a dry run)")
    world, world_1021 = Path(args.world), Path(args.world_1021)
    tmp = Path(tempfile.mkdtemp(prefix="clipstudy-gpu-"))
    peak = matmul_peak(torch.bfloat16, DEVICE, sizes=(4096, 8192) if DEVICE == "cuda" else (512,)) / 1e9
    result: dict = {"machine": describe(DEVICE), "bf16_matmul_peak_gflop_s": round(peak, 1), "errors": {}}
    print(f"{result['machine']}: bf16 matmul peak {peak:,.0f} GFLOP/s", flush=True)

    def part(name: str, fn) -> None:
        if name not in args.parts.split(","):
            return
        start = time.perf_counter()
        try:
            result[name] = fn()
        except Exception:
            result["errors"][name] = traceback.format_exc()[-2000:]
            print(f"{name} FAILED:\n{result['errors'][name]}", flush=True)
        print(f"{name}: {time.perf_counter() - start:.0f} s {json.dumps(result.get(name), default=str)[:800]}", flush=True)
        write_result(args.out, "gpu-check", result, gpu=DEVICE == "cuda")

    part("slip_resume", lambda: slip_resume(world, tmp, args.steps))
    slip_run = tmp / "slip-whole"
    part("eval", lambda: evaluation(world, world_1021, slip_run, tmp))
    part("torchrun", lambda: torchrun_one(world, tmp))

    def strategies() -> list[dict]:
        rows = []
        for compile in (False, True):
            row = throughput(world, tmp / "s", args.steps, model="vit-b-16", compile=compile, **STRATEGIES)
            row["mfu"] = round(row["achieved_gflop_s"] / peak, 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
        return rows

    part("strategies", strategies)
    shutil.rmtree(tmp, ignore_errors=True)
    print("\npart         result")
    for name in args.parts.split(","):
        print(f"{name:12s} {'FAILED' if name in result['errors'] else json.dumps(result.get(name), default=str)[:300]}")


if __name__ == "__main__":
    main()
