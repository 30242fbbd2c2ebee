"""Data-parallel training under torchrun: one process per device, the global batch split by rank.

    torchrun --nproc_per_node 2 -m clipstudy train --data data/worlds/default --out data/runs/ddp

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `setup()` joins the process group (NCCL on GPUs,
gloo on CPU). Every rank builds the same model (same seed), takes its contiguous slice of the same
global batch, and open_clip's loss gathers the features of every rank (with their gradients), so
each rank's loss is the one-process loss of the global batch. Averaging the gradients over ranks
then gives the one-process gradient: the loss curve equals one process at the same batch_size
within float tolerance (tests/test_distributed.py). Rank 0 alone writes the run folder.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside torchrun; inside it, the process group is joined once."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def local_device(device: torch.device) -> torch.device:
    """This process's device: under torchrun, GPU number LOCAL_RANK of the node."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
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
