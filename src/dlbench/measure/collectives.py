"""Collective operations measured as nccl-tests measures them: sizes, bandwidths, verdicts.

A size is the whole buffer the operation moves, as nccl-tests counts it: the tensor of an
all-reduce or a broadcast, the gathered output of an all-gather, the input of a reduce-scatter,
one rank's send buffer of an all-to-all. Algorithm bandwidth is that size over the time of one
call; bus bandwidth multiplies it by the factor that makes it comparable with the link's own
speed whatever the number of ranks (nccl-tests' doc/PERFORMANCE.md):

    all_reduce 2(n-1)/n    all_gather, reduce_scatter, all_to_all (n-1)/n    broadcast 1

The time of a round is the slowest rank's (a collective ends when its last rank is done),
averaged over the round's calls; rounds give the interval.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlbench.errors import ConfigError
from dlbench.measure.stats import half_width

OPERATIONS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all")
ELEMENT_BYTES = 4  # float32, nccl-tests' default type, which gloo and NCCL both reduce
DEFAULT_SIZES = "8B:64MiB"
MAX_SIZE_BYTES = 2**36  # 64 GiB: beyond any device's memory for one buffer
MAX_SIZES = 64  # sizes in one measurement
_SCALE = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}
_SIZE = re.compile(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*")


def bus_factor(operation: str, ranks: int) -> float:
    """nccl-tests' bus bandwidth factor of ``operation`` over ``ranks`` processes."""
    if operation == "all_reduce":
        return 2 * (ranks - 1) / ranks
    if operation in ("all_gather", "reduce_scatter", "all_to_all"):
        return (ranks - 1) / ranks
    if operation == "broadcast":
        return 1.0
    raise ValueError(f"unknown collective {operation!r}")


def parse_operations(text: str) -> tuple[str, ...]:
    """``all`` or a comma list of OPERATIONS, in the order given, each once."""
    names = (
        OPERATIONS
        if text.strip() == "all"
        else tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    )
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown or not names:
        raise ConfigError(
            f"--ops {text[:80]!r}: {', '.join(unknown) or 'no operation'} is not a collective",
            f"give all or some of {','.join(OPERATIONS)}",
        )
    return names


def parse_size(text: str) -> int:
    """``8B``, ``4KiB``, ``64M``, ``1GiB``, ``1024`` -> bytes (K, M, G are powers of 1024)."""
    match = _SIZE.fullmatch(text.lower())
    if not match:
        raise ConfigError(f"--sizes: {text[:40]!r} is not a size", "e.g. --sizes 8B:1GiB")
    value = int(match.group(1)) * _SCALE[match.group(2)]
    if not ELEMENT_BYTES <= value <= MAX_SIZE_BYTES:
        raise ConfigError(f"--sizes: {text.strip()} is not between 4 bytes and 64 GiB")
    return value


def parse_sizes(text: str) -> tuple[int, ...]:
    """``MIN:MAX`` (doubling from MIN, as nccl-tests' -b MIN -e MAX -f 2) or a comma list."""
    if ":" in text:
        low_text, _, high_text = text.partition(":")
        low, high = parse_size(low_text), parse_size(high_text)
        if low > high:
            raise ConfigError(
                f"--sizes {text.strip()}: the first size is larger than the last",
                "give the smallest first, e.g. --sizes 8B:1GiB",
            )
        sizes = [low]
        while sizes[-1] * 2 <= high:
            sizes.append(sizes[-1] * 2)
    else:
        sizes = sorted({parse_size(part) for part in text.split(",") if part.strip()})
    if not sizes:
        raise ConfigError("--sizes is empty", "e.g. --sizes 8B:1GiB")
    if len(sizes) > MAX_SIZES:
        raise ConfigError(f"--sizes {text.strip()} gives {len(sizes)} sizes; at most {MAX_SIZES}")
    return tuple(sizes)


def elements_for(operation: str, size_bytes: int, ranks: int) -> int:
    """Float32 elements of the operation's counted buffer: at least one per rank where the
    buffer is split between ranks, rounded down to whole parts."""
    elements = max(1, size_bytes // ELEMENT_BYTES)
    if operation in ("all_gather", "reduce_scatter", "all_to_all"):
        elements = max(ranks, elements // ranks * ranks)
    return elements


@dataclass(frozen=True)
class CollectiveResult:
    """One operation at one size: its timing over rounds and the bandwidths it gives."""

    operation: str
    size_bytes: int  # the counted buffer, after rounding to whole elements per rank
    ranks: int
    calls: int  # timed calls per round
    round_times_s: tuple[float, ...]  # per call, slowest rank, one per round
    correct: bool | None  # the result checked against the expected values; None: not checked

    @property
    def time_s(self) -> float:
        return float(np.mean(self.round_times_s))

    @property
    def time_ci95_s(self) -> tuple[float, float] | None:
        times = np.asarray(self.round_times_s)
        if times.size < 2:
            return None
        h = half_width(times)
        return max(float(times.min()), self.time_s - h), self.time_s + h

    @property
    def algbw_gb_s(self) -> float:
        return self.size_bytes / self.time_s / 1e9

    @property
    def busbw_gb_s(self) -> float:
        return self.algbw_gb_s * bus_factor(self.operation, self.ranks)

    @property
    def busbw_ci95_gb_s(self) -> tuple[float, float] | None:
        """The interval of the mean time mapped through size / t (low from the slow end)."""
        interval = self.time_ci95_s
        if interval is None:
            return None
        scale = self.size_bytes * bus_factor(self.operation, self.ranks) / 1e9
        return scale / interval[1], scale / interval[0]

    def as_dict(self) -> dict[str, object]:
        return {
            "operation": self.operation,
            "size_bytes": self.size_bytes,
            "ranks": self.ranks,
            "calls": self.calls,
            "round_times_s": list(self.round_times_s),
            "correct": self.correct,
            "time_s": self.time_s,
            "algbw_gb_s": self.algbw_gb_s,
            "busbw_gb_s": self.busbw_gb_s,
            "busbw_ci95_gb_s": self.busbw_ci95_gb_s,
        }


def result_from(value: dict[str, object]) -> CollectiveResult | None:
    """A stored result back (None where a stored document lacks what it needs)."""
    try:
        times = tuple(float(t) for t in value["round_times_s"])  # type: ignore[attr-defined]
        result = CollectiveResult(
            str(value["operation"]),
            int(value["size_bytes"]),  # type: ignore[call-overload]
            int(value["ranks"]),  # type: ignore[call-overload]
            int(value["calls"]),  # type: ignore[call-overload]
            times,
            None if value.get("correct") is None else bool(value["correct"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    if not times or min(times) <= 0 or result.operation not in OPERATIONS or result.ranks < 2:
        return None
    return result


def calls_for(size_bytes: int, requested: int | None) -> int:
    """Timed calls per round: --iters when given; else more for small messages, whose calls
    last microseconds, fewer for large ones (nccl-tests times 20)."""
    if requested is not None:
        return requested
    if size_bytes <= 2**16:
        return 50
    if size_bytes <= 2**24:
        return 20
    return 5


def slowest(per_rank_times_s: Sequence[float]) -> float:
    """A round's time: its slowest rank's."""
    return max(per_rank_times_s)
