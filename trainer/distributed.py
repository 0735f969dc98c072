"""One process per device: set up from torchrun's environment, or a plain single process.

    ctx = setup(cfg.device)     # reads RANK / WORLD_SIZE / LOCAL_RANK when torchrun set them
    ...
    teardown(ctx)

CUDA uses NCCL; the CPU uses gloo (how the 2-process test runs).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    """``auto``: the local CUDA device when there is one, else the CPU."""
    if pref == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(pref)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {pref}: CUDA is not available on this machine")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


def setup(device_pref: str = "auto") -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(hours=2))
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def broadcast_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (batch-norm statistics) to every rank.

    DDP broadcasts them at the start of each forward, but the last forward of an epoch
    still updates them locally; this makes saved models identical on all ranks.
    """
    if not ctx.enabled:
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)


def all_reduce_mean(values: list[float], ctx: DistContext) -> list[float]:
    """Mean of some floats over ranks (for logging)."""
    if not ctx.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return (t / ctx.world_size).tolist()


def broadcast_object(obj: object, ctx: DistContext) -> object:
    """Rank 0's value of a small picklable object, on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
