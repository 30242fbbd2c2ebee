"""Where and in which number format the maths runs: device, precision, attention kernel, peak.

Precision "auto" is bf16 wherever the hardware multiplies bf16 matrices natively (a CUDA GPU
with bf16, or a CPU with AVX512-BF16 or AMX) and fp32 elsewhere. Measured on a 2-core AVX512-BF16
CPU (torch 2.14): bf16 matmul runs at ~4x the fp32 rate, and the default laptop run trains
~2.4x faster in bf16 with the same accuracy within seed noise (benchmarks/precision.py).

On CPU, attention runs on PyTorch's math kernel: the flash kernel's bf16 *backward* is ~8x
slower than the math one for these short sequences (17 image / 32 text tokens), and in fp32 the
two are equally fast.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import time
from typing import Iterator

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from clipstudy.config import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


DEVICES = "auto, cpu, cuda, cuda:<n> or mps"  # the device names a config may give


def available_devices() -> list[str]:
    """The devices this machine has, by the names `resolve_device` takes."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda if available, else cpu; "cpu", "cuda", "cuda:<n>" or "mps" as named. A name
    that is none of these, or a device this machine does not have, is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|mps|cuda(:(0|[1-9][0-9]*))?", name):
        raise ConfigError(f"device={name!r} is not valid; use {DEVICES}")
    if name not in available_devices():
        raise ConfigError(f"device={name!r} is not available here; available: {available_devices()}")
    return torch.device(name)


def describe(device: torch.device | str = "cpu") -> str:
    """The machine in words, for benchmark records."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    bf16 = "with" if cpu_has_bf16() else "without"
    return (f"{_cpu_name()}, {os.cpu_count()} cores, {bf16} native bf16, "
            f"torch {torch.__version__} on {torch.get_num_threads()} threads")


def _cpu_name() -> str:
    """e.g. "AMD EPYC CPU (x86 family 25, model 17)": cloud CPUs often report only a brand, and
    the family/model tell generations apart (their bf16 matmul rates differ ~2x)."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = info.get("model name") or platform.processor() or platform.machine()
    family = f" (x86 family {info['cpu family']}, model {info.get('model', '?')})" if "cpu family" in info else ""
    return f"{name} CPU{family}"


def cpu_has_bf16() -> bool:
    """True if this CPU multiplies bf16 natively (AVX512-BF16 or AMX tiles)."""
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence getattr
    return any(getattr(cpu, name, lambda: False)() for name in checks)


PRECISION_ENV = "CLIPSTUDY_PRECISION"  # fp32 or bf16: what "auto" means on this machine (`make book PRECISION=fp32`)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """"auto" -> $CLIPSTUDY_PRECISION if set, else "bf16" where bf16 matmul is native on `device`,
    else "fp32"; others unchanged. The store keys runs by the resolved precision."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; valid: {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    forced = os.environ.get(PRECISION_ENV, "").strip()
    if forced:
        if forced not in ("fp32", "bf16"):
            raise ConfigError(f"{PRECISION_ENV}={forced!r} is not valid; use fp32 or bf16 (or leave it unset: "
                              f"bf16 where the hardware has it)")
        return forced
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def use_fast_kernels(device: torch.device) -> None:
    """On a CUDA device: TF32 for the float32 matrix products and convolutions that bf16 autocast
    leaves (and for fp32 runs; Ampere and later), and cuDNN's autotuner, which picks the fastest
    convolution for a run's fixed batch shape (the CNN towers). Nothing on CPU."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str) -> Iterator[None]:
    """bf16 autocast when `precision` resolves to bf16, with the CPU attention-kernel choice."""
    device = torch.device(device)
    bf16 = resolve_precision(precision, device) == "bf16"
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16))
        if device.type == "cpu":
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        yield


def matmul_peak(dtype: torch.dtype, device: torch.device | str = "cpu", sizes=(1024, 2048),
                seconds: float = 0.5, repeats: int = 3) -> float:
    """Measured dense matmul rate (FLOP/s), best over square sizes and `repeats` timings of at
    least `seconds` each: the denominator of MFU. A shared cloud CPU's rate drifts (one timing
    here read 121 GFLOP/s fp32 where others read ~190), so one timing can understate the peak."""
    device = torch.device(device)
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        reps, elapsed = 1, 0.0
        while elapsed < seconds:  # double the repetitions until one timing lasts long enough
            reps *= 2
            elapsed = _time_matmuls(a, b, reps, device)
        timings = [elapsed] + [_time_matmuls(a, b, reps, device) for _ in range(repeats - 1)]
        best = max(best, 2 * n ** 3 * reps / min(timings))
    return best


def _time_matmuls(a: torch.Tensor, b: torch.Tensor, reps: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


WORKERS_ENV = "CLIPSTUDY_WORKERS"  # e.g. "2x1": runs side by side x threads each; "1" turns it off


def parallelism(runs: int, cores: int | None = None) -> tuple[int, int]:
    """How a grid's runs share this machine's cores: (runs trained side by side, torch threads
    each). The laptop towers are small (vit-ti-8 at 32 px: 64-sample steps of a few ms of
    matmuls), so one run leaves cores idle between ops; two runs of one thread each keep both
    busy (benchmarks/workers.py measures the choices). The rule: threads = 1 on up to 4 cores,
    else 2; workers = cores // threads, at most `runs`. Where a GPU trains the runs, one at a
    time (they would share the device; torchrun spreads one run over several). $CLIPSTUDY_WORKERS="WxT"
    (or "W") overrides it."""
    cores = cores or os.cpu_count() or 1
    given = os.environ.get(WORKERS_ENV, "").strip()
    if not given and torch.cuda.is_available():
        return 1, cores
    if given:
        m = re.fullmatch(r"([1-9][0-9]*)(?:x([1-9][0-9]*))?", given)
        if not m:
            raise ConfigError(f"{WORKERS_ENV}={given!r} is not valid; use W or WxT (runs side by side x threads "
                              f"each), e.g. 2x1")
        workers = int(m[1])
        threads = int(m[2]) if m[2] else max(1, cores // workers)
    else:
        threads = 1 if cores <= 4 else 2
        workers = max(1, cores // threads)
    workers = max(1, min(workers, runs))
    if workers == 1 and not given:
        threads = cores
    return workers, threads
