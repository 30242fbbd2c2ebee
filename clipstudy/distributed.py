"""Data-parallel training under torchrun: one process per device, the global batch split by rank.

    torchrun --nproc_per_node 2 -m clipstudy train --data data/worlds/default --out data/runs/ddp

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `setup(device)` sets this rank's GPU, then joins
the process group (NCCL for a CUDA run, gloo for a CPU one). Every rank builds the same model (same seed), takes its contiguous slice of the same
global batch, and open_clip's loss gathers the features of every rank (with their gradients), so
each rank's loss is the one-process loss of the global batch. Averaging the gradients over ranks
then gives the one-process gradient: the loss curve equals one process at the same batch_size
within float tolerance (tests/test_distributed.py). Rank 0 alone writes the run folder.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from clipstudy.compute import resolve_device


def setup(device: torch.device | str = "auto") -> tuple[int, int]:
    """(rank, world size): (0, 1) outside torchrun; inside it, this process's device is chosen
    first (`local_device`: GPU number LOCAL_RANK) and the process group joined once, with the
    backend the device needs: NCCL for CUDA tensors, bound to that GPU, gloo for CPU tensors
    (also on a GPU machine when the run asks for `device="cpu"`)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1
    if not dist.is_initialized():
        device = local_device(resolve_device(device) if isinstance(device, str) else device)
        if device.type == "cuda":  # NCCL knows its GPU from the start: no rank guesses cuda:0
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def local_device(device: torch.device) -> torch.device:
    """This process's device: under torchrun, GPU number LOCAL_RANK of the node, made current
    (collectives and `torch.cuda.current_device()` then use it)."""
    if device.type == "cuda" and device.index is None:  # set_device needs an index
        local = os.environ.get("LOCAL_RANK")
        device = torch.device("cuda", int(local) if local is not None else torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def average_gradients(params, world_size: int) -> None:
    """All-reduce the gradients (one flat buffer) and divide by the number of ranks, as DDP does."""
    if world_size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean(value: torch.Tensor, world_size: int) -> float:
    """The mean of a scalar over ranks (the logged loss; every rank then agrees on a NaN stop)."""
    if world_size == 1:
        return value.item()
    value = value.detach().float().clone()
    dist.all_reduce(value)
    return value.item() / world_size


def broadcast(obj, world_size: int):
    """Rank 0's `obj` on every rank (a small picklable value)."""
    if world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()
