"""Each rank's own figures in a multi-process run: its steps, its host and its own pace.

Synchronised steps last as long as the slowest rank's, so each rank also times a few steps
without the gradient all-reduce (SYNC_FREE_STEPS, after validation): its own compute pace,
which shows a straggler and how much of a step the communication takes
(analysis/stragglers.py).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dlbench.config import RunSpec
from dlbench.engines import Engine
from dlbench.measure.stats import speed_stats
from dlbench.runner.result import Measured
from dlbench.sysinfo import node_name

SYNC_FREE_STEPS = 10


def gather_ranks(engine: Engine, measured: Measured, spec: RunSpec) -> tuple[dict[str, Any], ...]:
    """Each rank's step statistics, host and pace, collected on every rank (one process:
    nothing)."""
    if engine.world_size == 1:
        return ()
    steps = measured.timer.steps() if measured.timer else ()
    own = speed_stats(
        [s.step_time_s for s in steps], [s.data_wait_s for s in steps], int(spec.batch_size or 0)
    )
    mine = {
        "rank": engine.rank,
        "local_rank": int(os.environ.get("LOCAL_RANK", 0)),
        "host": node_name(),
        **(dataclasses.asdict(own) if own else {}),
        "sync_free_step_time_s": _sync_free_pace(engine, measured),
    }
    return tuple(engine.gather(mine))


def _sync_free_pace(engine: Engine, measured: Measured) -> float | None:
    """Mean seconds of this rank's steps timed without the gradient all-reduce."""
    timed = getattr(engine, "sync_free_steps", None)
    if timed is None or measured.stream is None:
        return None
    measured.enter("sync-free")
    times = timed((batch for _, batch in measured.stream), SYNC_FREE_STEPS)
    return sum(times) / len(times) if times else None
