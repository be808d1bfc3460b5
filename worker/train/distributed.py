"""The process group of one training run, as ``torchrun`` describes it in the environment.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT (also across nodes through its
rendezvous); a plain ``python -m worker.train`` is a world of one. Backend: NCCL when training on
CUDA, gloo on CPU. Nothing here starts or watches processes: torchrun does that.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """Where this process stands: its global rank, how many there are, its device."""

    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(device: str = "auto") -> World:
    """Join the process group torchrun set up (none for a single process); pick the device.

    device: "auto" (CUDA:LOCAL_RANK when available, else CPU), "cpu" or "cuda".
    """
    rank = int(os.environ.get("RANK", "0"))
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return World(rank, size, local_rank, dev)


def close_world() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def mean_scalars(world: World, values: dict[str, float]) -> dict[str, float]:
    """The average over ranks of a few logged numbers (one small all-reduce)."""
    if not world.distributed or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    t /= world.size
    return {k: float(v) for k, v in zip(keys, t.tolist(), strict=True)}


def gather_objects(world: World, obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(world: World, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap_ddp(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` in a multi-process run, the model itself otherwise.

    find_unused_parameters: lower resolutions and narrower sub-networks leave whole layers
    (higher-resolution ToRGBs, the other from-RGB convs) out of a step's graph.
    """
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    with warnings.catch_warnings():
        # The buffers are fixed (blur kernels, noise maps): no per-forward buffer broadcast.
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*")
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True,
                                       broadcast_buffers=False)
