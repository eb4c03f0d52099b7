"""Data-parallel training on PyTorch's own engine: torchrun launches, DDP synchronizes.

`modelworks train` started by ``torchrun --nproc_per_node N`` finds WORLD_SIZE/RANK in its
environment and joins the process group (gloo on CPU, NCCL on CUDA). Started plainly it is a
world of one and none of this costs anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(device_type: str) -> World:
    """Join the torchrun process group if launched by torchrun; otherwise a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return World(rank=dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")), size=size)


def broadcast_str(text: str, world: World) -> str:
    """Rank 0's string on every rank (sent as bytes in a tensor: nothing is unpickled)."""
    if not world.distributed:
        return text
    device = torch.device("cuda", world.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    data = torch.tensor(list(text.encode()), dtype=torch.uint8, device=device)
    length = torch.tensor([len(data)], device=device)
    dist.broadcast(length, src=0)
    buf = data if world.is_main else torch.zeros(int(length), dtype=torch.uint8, device=device)
    dist.broadcast(buf, src=0)
    return bytes(buf.cpu().tolist()).decode()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def all_mean(value: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of a scalar tensor over ranks."""
    if world.distributed:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= world.size
    return value


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
