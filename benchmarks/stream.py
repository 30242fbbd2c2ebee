"""What streaming a web-sized pool costs: JPEG decode and resize rates, in one run on this machine.

    .venv/bin/python benchmarks/stream.py [--images 512] [--workers 2] [--size 64] [--out FILE.json]

Writes one uncompressed tar shard of `--images` photo-sized JPEGs (500x375, quality 90, smooth
gradients plus noise: CC3M's typical size; noise makes them slower to decode than most photos, so
the rates are conservative), then times, on the same shard in the same run:
- `load`: `load_pairs(..., image_size)`, the in-memory path (every image decoded once, one process);
- `index`: `load_pairs(..., stream=True)`, the streaming index (captions and byte offsets, no decoding);
- `decode`: `LazyImages.decode` of every row in batches of 128, in this process;
- `workers`: the trainer's DataLoader (`train._stream`) with `--workers` processes, one pass.
It prints samples/s of each and the worker run's ratio to one process. A GPU trains the chapters'
towers at 64 px faster than this decodes, so a streamed real-data run is bound by
decode rate x workers: the "Re-run on real data" page's cost estimates use `decode`'s rate.
Cost: ~20 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clipstudy.compute import describe
from clipstudy.data import load_pairs
from clipstudy.train import _stream


def photo(seed: int, size=(500, 375)) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[1], 0:size[0]] / max(size)
    base = np.stack([np.sin(6 * x + rng.uniform(0, 6)), np.cos(5 * y + rng.uniform(0, 6)),
                     np.sin(4 * (x + y))], -1)
    pixels = np.clip(127 + 90 * base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_shard(path: Path, n: int) -> int:
    """A webdataset shard of n pairs; returns the mean JPEG size in bytes."""
    sizes = []
    with tarfile.open(path, "w") as tar:
        for i in range(n):
            for ext, data in (("jpg", photo(i)), ("txt", f"a photo number {i}".encode())):
                info = tarfile.TarInfo(f"{i:06d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                if ext == "jpg":
                    sizes.append(len(data))
    return int(np.mean(sizes))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "000000.tar"
        jpeg_bytes = write_shard(shard, args.images)
        n = args.images
        load_s = timed(lambda: load_pairs(shard, image_size=args.size))
        pairs = {}
        index_s = timed(lambda: pairs.setdefault("p", load_pairs(shard, image_size=args.size, stream=True)))
        images = pairs["p"].images
        batches = [np.arange(i, min(i + args.batch, n)) for i in range(0, n, args.batch)]
        decode_s = timed(lambda: [images.decode(b) for b in batches])
        tokens = torch.zeros(n, 1, dtype=torch.long)
        workers_s = timed(lambda: list(_stream(images, iter(batches), tokens, args.workers, torch.device("cpu"))))
    rate = {k: round(n / s, 1) for k, s in (("load", load_s), ("index", index_s), ("decode", decode_s),
                                             ("workers", workers_s))}
    result = {"machine": describe(torch.device("cpu")), "images": n, "jpeg": "500x375 q90",
              "mean_jpeg_bytes": jpeg_bytes, "image_size": args.size, "workers": args.workers,
              "samples_per_s": rate, "workers_over_one_process": round(rate["workers"] / rate["decode"], 2)}
    print(f"{n} JPEGs of 500x375 ({jpeg_bytes / 1024:.0f} KiB each) to {args.size} px")
    for k, v in rate.items():
        print(f"  {k:8s} {v:9,.0f} samples/s")
    print(f"  {args.workers} workers over one process: {result['workers_over_one_process']:.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
