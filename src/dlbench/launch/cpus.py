"""``--cpus auto|LIST``: measure on the CPUs that are free, on a machine that is never quiet.

Other work on a shared machine takes some cores and leaves others. Pinning the run (its process,
its input workers, its framework's threads) to the idle ones measures those cores cleanly, and
the run's quality verdict then counts other work on them only. ``auto`` looks at each CPU for a
second before the run and keeps those under ``IDLE_PERCENT`` busy; a list (``0,2-3``) is taken
as given. The launcher pins itself for the run's launch (a child inherits its affinity) and
restores its own CPUs after, so a series of runs chooses again for each.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil

from dlbench.config.limits import CPUS_PATTERN
from dlbench.errors import ConfigError
from dlbench.telemetry.cpu import shown

IDLE_PERCENT = 20.0  # a CPU busier than this over the look is taken by other work
LOOK_S = 1.0
CPU_LIST = re.compile(CPUS_PATTERN)


def parse_list(text: str) -> list[int]:
    """``0,2-3`` -> [0, 2, 3]; one ConfigError line for anything else."""
    if not CPU_LIST.match(text) or text == "auto":
        raise ConfigError(f"--cpus {text!r} is not auto or a list like 0,2-3", option="--cpus")
    found: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first or last - first > 65_536:
            raise ConfigError(f"--cpus {text!r}: {part} is not a range of CPUs", option="--cpus")
        found.update(range(first, last + 1))
    return sorted(found)


def allowed() -> list[int]:
    """The CPUs this process may run on now."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def check(request: str | None) -> None:
    """Before a run: a list names CPUs this process may use (``auto`` always can)."""
    if request is None or request == "auto":
        return
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("--cpus needs CPU affinity, which this platform lacks", option="--cpus")
    missing = sorted(set(parse_list(request)) - set(allowed()))
    if missing:
        raise ConfigError(
            f"--cpus {request}: CPU(s) {', '.join(map(str, missing))} are not this machine's "
            f"usable CPUs ({shown(allowed())})",
            option="--cpus",
        )


def idle(cpus: list[int], look_s: float = LOOK_S) -> list[int]:
    """Those of ``cpus`` under ``IDLE_PERCENT`` busy over ``look_s`` seconds."""
    busy = psutil.cpu_percent(interval=look_s, percpu=True)
    return [c for c in cpus if c < len(busy) and busy[c] < IDLE_PERCENT]


def choose(request: str, warn: Callable[[str], None], look_s: float = LOOK_S) -> list[int]:
    """The CPUs a run asked for with ``request`` measures on."""
    mine = allowed()
    if request != "auto":
        return parse_list(request)
    free = idle(mine, look_s)
    if not free:
        warn(
            f"--cpus auto: none of the CPUs {shown(mine)} is idle (each is over "
            f"{IDLE_PERCENT:g}% busy); measuring on all of them"
        )
        return mine
    return free


@contextmanager
def pinned(
    request: str | None, warn: Callable[[str], None], look_s: float = LOOK_S
) -> Iterator[list[int] | None]:
    """This process (and so the run it launches) on the CPUs ``request`` names, until the
    block ends; None without a request."""
    if request is None:
        yield None
        return
    before = allowed()
    chosen = choose(request, warn, look_s)
    os.sched_setaffinity(0, chosen)
    try:
        yield chosen
    finally:
        os.sched_setaffinity(0, before)
