"""Multi-process training under torchrun: process group, DDP wrapping, collectives.

``dlbench run --gpus N`` starts N processes with torch.distributed.run; each reads RANK,
LOCAL_RANK and WORLD_SIZE from its environment. NCCL joins GPUs, gloo joins CPU processes
(which is how the tests exercise DDP on a machine without a GPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Topology:
    rank: int
    local_rank: int
    world_size: int

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def topology() -> Topology:
    """This process's place in the job (a single process when not under torchrun)."""
    return Topology(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def device_for(requested: str) -> torch.device:
    """This process's device: its own GPU (LOCAL_RANK) for ``cuda``, else the CPU."""
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            from dlbench.errors import EngineUnavailable

            raise EngineUnavailable("--device cuda: this torch build sees no CUDA GPU")
        return torch.device(f"cuda:{topology().local_rank}")
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from dlbench.sysinfo import cpu_model

    return cpu_model()


def gpus_here() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def peers() -> list[dict[str, Any]]:
    """Every rank's place: rank, local rank and node name, in rank order (on every rank)."""
    from dlbench.sysinfo import node_name

    here = topology()
    return gather({"rank": here.rank, "local_rank": here.local_rank, "host": node_name()})


def init(device: torch.device) -> None:
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    if dist.is_initialized():
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order (on every rank)."""
    if not dist.is_initialized():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
