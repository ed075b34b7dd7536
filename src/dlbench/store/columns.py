"""How a run becomes row values: the ``runs`` columns of a finished result, JSON that every
database accepts, and the timestamps the store writes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from dlbench.records import RunResult


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def result_columns(result: RunResult) -> dict[str, Any]:
    """The ``runs`` columns a finished run's result sets."""
    speed = result.speed
    return {
        "status": result.status,
        "error": result.error,
        "phase_reached": result.phase_reached,
        "finished_at": utc_now(),
        "mean_speed": speed.mean_speed if speed else None,
        "mean_step_time_s": speed.mean_step_time_s if speed else None,
        "speed_stderr": speed.speed_stderr if speed else None,
        "speed_jitter": speed.speed_jitter if speed else None,
        "timed_steps": speed.timed_steps if speed else 0,
        "throughput_e2e": result.throughput_e2e,
        "train_time_s": result.train_time_s,
        "val_time_s": result.val_time_s,
        "accuracy": result.accuracy,
        "peak_memory_bytes": result.peak_memory_bytes,
        "quality_verdict": result.quality.verdict if result.quality else None,
        "foreign_cpu_cores": result.quality.foreign_cpu_cores if result.quality else None,
        "total_time_s": result.total_time_s if result.total_time_s else result.wall_time_s,
        "result": json_safe(result.to_dict()),
    }


def json_safe(value: Any) -> Any:
    """Plain JSON values: tuples become lists, NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
