"""Where one training step's time goes: matrix multiplies vs everything else, per precision.

    .venv/bin/python benchmarks/step_profile.py [--model vit-ti-8] [--image-size 32] [--batch 64]
                                                [--threads 2] [--steps 12] [--world data/worlds/study-laptop]

One forward + backward + AdamW step of the chapters' laptop recipe (CLIP loss, the world's
word vocabulary, 16-token captions, random pixels) under torch.profiler, after
warm-up steps, in fp32 and, where the CPU has it, bf16 autocast. Splits the self CPU time of
the profiled steps into matrix multiplies (aten mm / addmm / bmm / baddbmm and their bf16
kernels), attention's softmax, layer norm and GELU, the optimizer, and the rest (per-op
overhead: views, copies, casts, reductions), and prints the ten ops that take longest. Writes
benchmarks/results/step-profile-cpu.json. Cost: ~1 minute on 2 cores.
"""

from __future__ import annotations

import argparse
import collections
import math

import torch
from torch.profiler import ProfilerActivity, profile

from clipstudy.compute import autocast, cpu_has_bf16, describe
from clipstudy.losses import make_loss
from clipstudy.optim import make_optimizer
from clipstudy.train import TrainConfig, make_model, text_side

from _results import write_result  # this folder: scripts run by path have it on sys.path

GROUPS = {"matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "mkldnn", "onednn"),
          "softmax": ("softmax",), "layer norm": ("layer_norm",), "gelu": ("gelu",),
          "optimizer": ("adam", "_foreach", "lerp", "addcdiv", "addcmul")}


def group(name: str) -> str:
    low = name.lower()
    return next((g for g, keys in GROUPS.items() if any(k in low for k in keys)), "other ops")


def profile_steps(world: str, model_name: str, size: int, batch: int, steps: int, precision: str) -> dict:
    torch.manual_seed(0)
    cfg = TrainConfig(data=world, model=model_name, image_size=size, batch_size=batch)
    tokenizer, overrides = text_side(cfg, [])  # the world's word vocabulary, the recipe's 16 tokens
    model = make_model(cfg, size, overrides, torch.device("cpu"))
    loss_fn, optimizer = make_loss(cfg, 0, 1), make_optimizer(cfg, model)
    x = torch.randn(batch, 3, size, size)
    t = tokenizer(["a photo of a cat on a red background"] * batch)

    def step():
        with autocast("cpu", precision):
            loss = loss_fn(**model(x, t), output_dict=True)["contrastive_loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(4):  # warm-up: allocator, oneDNN primitive caches
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    shares = collections.Counter()
    for e in events:
        shares[group(e.key)] += e.self_cpu_time_total
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:10]
    return {"precision": precision, "ms_per_step": round(total / steps / 1000, 2),
            "ops_per_step": round(sum(e.count for e in events) / steps),
            "shares": {g: round(v / total, 3) for g, v in shares.most_common()},
            "top_ops": [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls_per_step": e.count // steps}
                        for e in top]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="vit-ti-8")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--world", default="data/worlds/study-laptop", help="a world folder: its word vocabulary")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [profile_steps(args.world, args.model, args.image_size, args.batch, args.steps, p)
            for p in (["fp32", "bf16"] if cpu_has_bf16() else ["fp32"])]
    for r in rows:
        print(f"\n{args.model} at {args.image_size} px, batch {args.batch}, {r['precision']}: {r['ms_per_step']} ms of "
              f"op time per step ({r['ops_per_step']} op calls, ~{1000 * r['ms_per_step'] / max(r['ops_per_step'], 1):.0f} us each)")
        print("  " + ", ".join(f"{g} {v:.0%}" for g, v in r["shares"].items()))
        for op in r["top_ops"]:
            print(f"    {op['share']:6.1%}  {op['calls_per_step']:5d}/step  {op['op']}")
    write_result(args.out, "step-profile", {"machine": describe(), "model": args.model, "image_size": args.image_size,
                                            "batch": args.batch, "threads": torch.get_num_threads(), "rows": rows},
                 gpu=False)
    assert all(math.isfinite(r["ms_per_step"]) for r in rows)


if __name__ == "__main__":
    main()
