"""Pure statistics over per-step times. The definitions are the README's, word for word."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlbench.records import SpeedStats

MAD_TO_STD = 1.4826  # median absolute deviation x this = std, for normally distributed data


def speed_stats(
    step_times_s: Sequence[float], data_waits_s: Sequence[float], batch_size: int
) -> SpeedStats | None:
    """Statistics over timed steps; None when no step was timed."""
    times = np.asarray(step_times_s, dtype=np.float64)
    if times.size == 0:
        return None
    waits = np.asarray(data_waits_s, dtype=np.float64)
    speeds = batch_size / times
    mean_step = float(times.mean())
    stderr = float(speeds.std(ddof=1) / np.sqrt(speeds.size)) if speeds.size > 1 else None
    return SpeedStats(
        timed_steps=int(times.size),
        mean_step_time_s=mean_step,
        median_step_time_s=float(np.median(times)),
        p95_step_time_s=float(np.percentile(times, 95)),
        mean_speed=batch_size / mean_step,
        median_speed=float(np.median(speeds)),
        p5_speed=float(np.percentile(speeds, 5)),
        p95_speed=float(np.percentile(speeds, 95)),
        speed_stderr=stderr,
        speed_jitter=jitter(speeds),
        mean_data_wait_s=float(waits.mean()) if waits.size else 0.0,
        data_wait_fraction=float(waits.sum() / times.sum()) if waits.size else 0.0,
    )


def jitter(values: np.ndarray) -> float:
    """1.4826 x median(|v - median(v)|): a standard deviation robust to outlier steps."""
    return float(MAD_TO_STD * np.median(np.abs(values - np.median(values))))


def percentiles_ms(durations_s: Sequence[float], *qs: float) -> tuple[float, ...]:
    values = np.asarray(durations_s, dtype=np.float64) * 1e3
    return tuple(float(np.percentile(values, q)) for q in qs)
