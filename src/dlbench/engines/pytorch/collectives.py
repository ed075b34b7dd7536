"""Collectives timed on torch.distributed (NCCL on GPUs, gloo on CPUs), as nccl-tests does.

Every rank runs ``measure``: per operation and size, untimed warm-up calls, then rounds of
back-to-back calls between a barrier and a device synchronisation; a round's time per call is
its slowest rank's. Timed buffers hold zeros, so repeated in-place reductions stay finite;
the result is checked once afterwards, on buffers of known values.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.distributed as dist

from dlbench.measure.collectives import CollectiveResult, calls_for, elements_for

# all_gather_single and reduce_scatter_single are the names from torch 2.14; before, these.
_ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


def measure(
    operations: tuple[str, ...],
    sizes: tuple[int, ...],
    device: torch.device,
    *,
    iters: int | None,
    warmup: int,
    rounds: int,
    on_result: Callable[[CollectiveResult], None] | None = None,
) -> list[CollectiveResult]:
    """Every operation at every size, in order; the same list on every rank."""
    ranks = dist.get_world_size()
    results = []
    for operation in operations:
        for size in sizes:
            elements = elements_for(operation, size, ranks)
            calls = calls_for(size, iters)
            call = _call(operation, _buffers(operation, elements, ranks, device, 0.0))
            for _ in range(warmup):
                call()
            times = tuple(_round(call, calls, device) for _ in range(rounds))
            result = CollectiveResult(
                operation,
                elements * 4,
                ranks,
                calls,
                times,
                _correct(operation, elements, ranks, device),
            )
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _round(call: Callable[[], object], calls: int, device: torch.device) -> float:
    """Seconds per call of ``calls`` back-to-back calls, the slowest rank's."""
    dist.barrier()
    _sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        call()
    _sync(device)
    per_call_s = (time.perf_counter() - start) / calls
    elapsed = torch.tensor([per_call_s], dtype=torch.float64, device=device)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # NCCL reduces GPU tensors only
    return float(elapsed.item())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _buffers(
    operation: str, elements: int, ranks: int, device: torch.device, value: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, input) of ``operation`` over a counted buffer of ``elements`` float32s,
    the input filled with ``value``."""
    part = elements // ranks
    shapes = {
        "all_reduce": (elements, elements),
        "broadcast": (elements, elements),
        "all_gather": (elements, part),
        "reduce_scatter": (part, elements),
        "all_to_all": (elements, elements),
    }
    out_n, in_n = shapes[operation]
    source = torch.full((in_n,), value, dtype=torch.float32, device=device)
    if operation in ("all_reduce", "broadcast"):
        return source, source  # in place
    return torch.empty(out_n, dtype=torch.float32, device=device), source


def _call(operation: str, buffers: tuple[torch.Tensor, torch.Tensor]) -> Callable[[], object]:
    output, source = buffers
    if operation == "all_reduce":
        return lambda: dist.all_reduce(output)
    if operation == "broadcast":
        return lambda: dist.broadcast(output, src=0)
    if operation == "all_gather":
        return lambda: _ALL_GATHER(output, source)
    if operation == "reduce_scatter":
        return lambda: _REDUCE_SCATTER(output, source)
    return lambda: dist.all_to_all_single(output, source)


def _correct(operation: str, elements: int, ranks: int, device: torch.device) -> bool:
    """One more call on buffers of known values (rank r sends r + 1), checked on every rank;
    True only where every rank found its expected result."""
    rank = dist.get_rank()
    output, source = _buffers(operation, elements, ranks, device, float(rank + 1))
    if operation == "all_to_all":
        # Rank r's part j holds r * ranks + j: rank j receives r * ranks + j from every r.
        source.copy_(
            torch.arange(ranks, device=device).repeat_interleave(elements // ranks) + rank * ranks
        )
    _call(operation, (output, source))()
    part = elements // ranks
    everyone = ranks * (ranks + 1) / 2
    if operation == "all_reduce":
        expected = torch.full_like(output, everyone)
    elif operation == "broadcast":
        expected = torch.ones_like(output)
    elif operation == "all_gather":
        expected = (torch.arange(ranks, device=device) + 1.0).repeat_interleave(part)
    elif operation == "reduce_scatter":
        expected = torch.full_like(output, everyone)
    else:
        expected = (torch.arange(ranks, device=device) * ranks + rank).repeat_interleave(part)
    mine = torch.tensor([int(torch.equal(output, expected.to(output.dtype)))], device=device)
    dist.all_reduce(mine, op=dist.ReduceOp.MIN)
    return bool(mine.item())
