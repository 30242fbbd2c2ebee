"""Where a GPU training step's time goes: the trainer against the same step with its batch already on
the device, eager, compiled and compiled with CUDA graphs, at several batch sizes.

    python benchmarks/gpu_step.py --world WORLD [--model vit-b-16] [--image-size 64]
                                  [--batches 1024,2048] [--steps 30] [--out benchmarks/results]

For each batch size, one bare step (clipstudy's model, loss, backward, gradient clip and fused
AdamW, bf16 autocast; one fixed batch of the world's uint8 images and tokens held on the device, so
no host gather, copy or augmentation) timed over `--steps` steps after warm-up, in each of `--modes`:
eager, `torch.compile(model)`, `torch.compile(model, mode="reduce-overhead")` (CUDA graphs: one
launch for the compiled forward and one for the backward; what `compile=True` runs on a GPU).
Then the same number of steps again under torch.profiler: the GPU's kernel time per
step over the step's wall time says whether the step waits on the GPU (near 100%) or the GPU
waits on the host (kernel launches, Python). Last, `clipstudy.train` itself (the trainer: host
gather, pinned copy, augmentation off) with compile=True, for the gap between the bare step and
the trainer. `--sdp math,flash,...` repeats it all with PyTorch's attention allowed only that backend;
each profiled row also sums its kernels' time by kind (attention, matmul, normalisation, optimiser,
other). MFU = samples/s x training FLOPs per sample / measured bf16 matmul peak, as mfu.py.
Writes <out>/<name>-gpu.json and the top kernels of each mode. Needs a CUDA GPU (about 3 minutes
on an H200). On an H200, vit-b-16 at 64 px, batch 1024: eager and compiled steps kept the GPU busy
23-24% of the time (launch-bound); CUDA graphs 31.6 -> 10.5 ms a step (68% busy); at batch 2048
94% busy yet 12.5% MFU: then the kernels themselves bound it (cuDNN's flash attention, tiles of
64-128 rows at 17 tokens, took ~40% of the GPU time: 3.95 of 10.27 ms a step at batch 1024, where
matmuls took 2.1; allowing only the math backend left the same kernels and time).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clipstudy.compute import autocast, describe, matmul_peak, use_fast_kernels
from clipstudy.data import load_pairs, to_model_input
from clipstudy.losses import logit_init, make_loss
from clipstudy.optim import make_optimizer
from clipstudy.train import TrainConfig, make_model, text_side, tokenize_pool, train_flops

from _results import write_result  # this folder: scripts run by path have it on sys.path
from mfu import measure

HERE = Path(__file__).resolve().parent
MODES = {"eager": None, "compiled": "default", "CUDA graphs": "reduce-overhead"}  # name -> torch.compile mode
SDP = ("default", "cudnn", "flash", "mem_efficient", "math")  # attention kernels: torch's choice, or only one


def only_sdp(name: str) -> None:
    """Allow PyTorch's scaled-dot-product attention one backend (`name`), or every one ("default").
    Global flags, read when a graph is traced: set before compiling."""
    for backend in SDP[1:]:
        getattr(torch.backends.cuda, f"enable_{backend}_sdp")(name in ("default", backend))


def bare_step(cfg: TrainConfig, pairs, device: torch.device, mode: str | None):
    """-> (step function, training GFLOPs per sample): one training step on a fixed on-device batch."""
    tokenizer, overrides = text_side(cfg, pairs.captions)
    overrides.update(logit_init(cfg))
    model = make_model(cfg, cfg.image_size, overrides, device)
    flops = train_flops(cfg, model, None, cfg.image_size, tokenizer.context_length)["train_gflops"]
    loss_fn, optimizer = make_loss(cfg), make_optimizer(cfg, model)
    idx = np.arange(cfg.batch_size) % len(pairs)
    images = torch.as_tensor(np.asarray(pairs.images[idx])).to(device)
    tokens = tokenize_pool(tokenizer, [pairs.captions[i] for i in idx]).to(device)
    forward = model if mode is None else torch.compile(model, mode=mode)

    def step():
        x = to_model_input(images, cfg.image_size)
        with autocast(device, "bf16"):
            loss = sum(loss_fn(**forward(x, tokens), output_dict=True).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
    return step, flops


def timed(step, steps: int, warmup: int = 5) -> float:
    """Seconds per step, the device synchronised before and after `steps` steps."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


KINDS = {"attention": ("sdpa", "fmha", "flash", "attention"), "matmul": ("gemm", "nvjet", "cutlass", "xmma", "cublas"),
         "normalisation": ("norm", "gammabeta"), "optimiser": ("adam", "multi_tensor", "foreach", "optimizer")}


def kind(kernel: str) -> str:
    """A kernel's kind by its name (the first of KINDS whose words it contains), else "other" (fused
    elementwise and reductions: triton_poi/triton_red, copies, GELU, softmax outside attention)."""
    name = kernel.lower()
    return next((k for k, words in KINDS.items() if any(w in name for w in words)), "other")


def gpu_busy(step, steps: int) -> tuple[float, list[dict], dict]:
    """Kernel time per step over wall time per step, under torch.profiler; the top kernels; and
    milliseconds per step by kernel kind."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        wall = time.perf_counter() - start
    # kernels only: a user range's GPU time ("Optimizer.step#AdamW.step") spans kernels counted on their own
    events = [e for e in prof.key_averages()
              if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA and "#" not in e.key]
    kernel_s = sum(e.self_device_time_total for e in events) / 1e6
    top = sorted(events, key=lambda e: -e.self_device_time_total)[:8]
    kinds: dict[str, float] = {}
    for e in events:
        kinds[kind(e.key)] = kinds.get(kind(e.key), 0.0) + e.self_device_time_total / 1e3 / steps
    return kernel_s / wall, [{"kernel": e.key[:90], "ms_per_step": round(e.self_device_time_total / 1e3 / steps, 3),
                              "calls_per_step": round(e.count / steps, 1)} for e in top], \
        {k: round(v, 3) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", required=True)
    ap.add_argument("--model", default="vit-b-16")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batches", default="1024,2048")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--modes", default=",".join(MODES), help=f"bare-step modes, of {list(MODES)}")
    ap.add_argument("--sdp", default="default", help=f"attention backends to compare, of {list(SDP)}")
    ap.add_argument("--no-trainer", action="store_true", help="bare steps only (no clipstudy.train row)")
    ap.add_argument("--name", default="gpu-step", help="the result file's name (<out>/<name>-gpu.json)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    modes, sdps = args.modes.split(","), args.sdp.split(",")
    if set(modes) - set(MODES):
        raise SystemExit(f"error: unknown mode(s) {sorted(set(modes) - set(MODES))}; valid: {list(MODES)}")
    if set(sdps) - set(SDP):
        raise SystemExit(f"error: unknown --sdp {sorted(set(sdps) - set(SDP))}; valid: {list(SDP)}")
    if not torch.cuda.is_available():
        raise SystemExit("error: gpu_step.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    device = torch.device("cuda", torch.cuda.current_device())
    use_fast_kernels(device)
    peak = matmul_peak(torch.bfloat16, device, (4096, 8192)) / 1e9
    pairs = load_pairs(args.world, image_size=args.image_size)
    result = {"machine": describe(device), "model": args.model, "image_size": args.image_size, "steps": args.steps,
              "bf16_matmul_peak_gflop_s": round(peak, 1), "rows": []}
    print(f"bf16 matmul peak {peak:,.0f} GFLOP/s", flush=True)
    for batch, sdp in [(int(b), a) for b in args.batches.split(",") for a in sdps]:
        only_sdp(sdp)
        cfg = TrainConfig(data=args.world, out="", model=args.model, image_size=args.image_size, batch_size=batch,
                          samples=batch, warmup=0, precision="bf16", device="cuda")
        for name in modes:
            torch.compiler.reset()
            step, gflops = bare_step(cfg, pairs, device, MODES[name])
            seconds = timed(step, args.steps)
            busy, kernels, kinds = gpu_busy(step, min(args.steps, 10))
            row = {"what": name, "batch": batch, "sdp": sdp, "ms_per_step": round(1e3 * seconds, 2),
                   "samples_per_s": round(batch / seconds, 1), "train_gflops_per_sample": round(gflops, 4),
                   "mfu": round(batch / seconds * gflops / peak, 3), "gpu_busy": round(busy, 3), "kernel_ms_by_kind": kinds, "top_kernels": kernels}
            result["rows"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "top_kernels"}), flush=True)
            print("   top kernels:", json.dumps(kernels), flush=True)
            del step
            torch.cuda.empty_cache()
        if args.no_trainer:
            continue
        torch.compiler.reset()
        tmp = Path(tempfile.mkdtemp(prefix="clipstudy-gpu-step-"))
        try:  # the trainer: host gather, pinned copy one batch ahead, the loop's own work
            m = measure(Path(args.world), tmp / "run", args.model, args.image_size, batch, max(args.steps, 40), 1,
                        "bf16", True, log_every=10)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        row = {"what": "trainer, compile=True", "batch": batch, "sdp": sdp,
               "ms_per_step": round(1e3 * batch / m["samples_per_s"], 2),
               "samples_per_s": m["samples_per_s"], "train_gflops_per_sample": m["train_gflops_per_sample"],
               "mfu": round(m["achieved_gflop_s"] / peak, 3)}
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
    only_sdp("default")
    print(f"\n{'what':33s} {'sdp':>13s} {'batch':>6s} {'ms/step':>8s} {'samples/s':>10s} {'MFU':>6s} {'GPU busy':>8s}")
    for r in result["rows"]:
        busy = f"{r['gpu_busy']:8.0%}" if "gpu_busy" in r else f"{'':8s}"
        print(f"{r['what']:33s} {r.get('sdp', 'default'):>13s} {r['batch']:6d} {r['ms_per_step']:8.2f} {r['samples_per_s']:10.1f} {r['mfu']:6.1%} {busy}")
    write_result(args.out, args.name, result, gpu=True)


if __name__ == "__main__":
    main()
