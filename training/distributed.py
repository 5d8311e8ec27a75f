"""DistributedDataParallel plumbing: `torchrun --nproc-per-node N -m training <model>`.

A process group exists only when torchrun (or another launcher) set RANK and WORLD_SIZE; otherwise
`Dist()` is the single process (rank 0 of 1) and every helper here is a no-op, so the same code
runs unchanged without torchrun.

Sharding is the deterministic equivalent of `DistributedSampler(drop_last=False)`: every rank
draws the same epoch order from the same seeded generator (it advances once per epoch, which is
what `set_epoch` does), pads it by wrapping around to a multiple of the world size, and takes every
world_size-th index from its rank on. With one process the order is exactly `data.epoch_order`'s.
"""

from __future__ import annotations

import datetime
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True when a launcher (torchrun) asked for a process group."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def setup(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun; the rank's info and its device.

    On CUDA each process takes the GPU of its LOCAL_RANK; on the CPU all share the CPU.
    """
    if not launched():
        return Dist(), device
    env = os.environ
    info = Dist(
        rank=int(env["RANK"]),
        world_size=int(env["WORLD_SIZE"]),
        local_rank=int(env.get("LOCAL_RANK", 0)),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", 1)),
    )
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(
            backend_for(device), timeout=datetime.timedelta(minutes=30), **kwargs
        )
    return info, device


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current() -> Dist:
    """This process's place in the group (rank 0 of 1 without one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    env = os.environ
    return Dist(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(env.get("LOCAL_RANK", 0)),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", 1)),
    )


def shard(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's share of an epoch order, as DistributedSampler(drop_last=False) splits it."""
    if world_size == 1:
        return order
    total = math.ceil(len(order) / world_size) * world_size
    if total > len(order):  # wrap around so every rank takes the same number of steps
        reps = math.ceil(total / len(order))
        order = order.repeat(reps)[:total]
    return order[rank:total:world_size]


def shard_len(n: int, world_size: int) -> int:
    return math.ceil(n / world_size)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over the ranks, in place (a no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def wrap(net: nn.Module, device: torch.device, seed: int) -> nn.Module:
    """The module to train: `net` itself, or under a process group `net` in
    DistributedDataParallel (which broadcasts rank 0's initial weights, then all-reduces the
    gradients). Every rank but 0 then reseeds, for its own augmentations and dropout masks."""
    if not (dist.is_available() and dist.is_initialized()):
        return net
    model = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    me = current()
    if me.rank:
        torch.manual_seed(seed + me.rank)
    return model


def rank_share(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every world_size-th item from this rank on (all of them on one process): sharded scoring,
    whose sums all-reduce to the numbers of scoring everything on one process."""
    me = current()
    if me.world_size == 1:
        return x, y
    idx = torch.arange(me.rank, len(x), me.world_size, device=x.device)
    return x[idx], y[idx]
