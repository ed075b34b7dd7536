"""Pure statistics over per-step times. The definitions are those of
docs/concepts/phases-and-timing.md, word for word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlbench.records import SpeedStats

MAD_TO_STD = 1.4826  # median absolute deviation x this = std, for normally distributed data
CONFIDENCE = 0.95
MIN_RELIABLE_STEPS = 10  # fewer timed steps: the interval is printed as unreliable


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
    return SpeedStats(
        timed_steps=int(times.size),
        mean_step_time_s=mean_step,
        median_step_time_s=float(np.median(times)),
        p95_step_time_s=float(np.percentile(times, 95)),
        mean_speed=batch_size / mean_step,
        median_speed=float(np.median(speeds)),
        p5_speed=float(np.percentile(speeds, 5)),
        p95_speed=float(np.percentile(speeds, 95)),
        speed_stderr=standard_error(speeds),
        speed_jitter=jitter(speeds),
        mean_data_wait_s=float(waits.mean()) if waits.size else 0.0,
        data_wait_fraction=float(waits.sum() / times.sum()) if waits.size else 0.0,
        speed_ci95=speed_interval(times, batch_size),
    )


def standard_error(values: np.ndarray) -> float | None:
    """The standard error of the mean of ``values`` (None below 2)."""
    if values.size < 2:
        return None
    return float(values.std(ddof=1) / np.sqrt(values.size))  # scipy.stats.sem's definition


def half_width(values: np.ndarray) -> float:
    """Half-width of the 95% Student-t interval of the mean of ``values`` (inf below 2)."""
    stderr = standard_error(values)
    if stderr is None:
        return float("inf")
    return t_quantile((1 + CONFIDENCE) / 2, values.size - 1) * stderr


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """Student's t quantile, as scipy.stats.t.ppf gives it (it calls the same function).
    scipy.special imports in a quarter of the time scipy.stats takes, and every run's
    process pays that import."""
    from scipy import special

    return float(special.stdtrit(degrees_of_freedom, probability))


def speed_interval(times: np.ndarray, batch_size: int) -> tuple[float, float] | None:
    """95% interval of mean_speed = B / mean(t): the t-interval of the mean step time, mapped
    through B / t. Its upper end takes the mean step time to be at least the fastest step
    measured: noise only adds time to a step (Chen & Revels 2016), and without that floor a few
    wild steps would bound nothing. So 0 < low <= mean_speed <= high, always."""
    if times.size < 2:
        return None
    mean, h = float(times.mean()), half_width(times)
    floor = max(mean - h, float(times.min()))
    return batch_size / (mean + h), batch_size / floor


def relative_half_width(times: np.ndarray) -> float:
    """The 95% interval's half-width of the mean step time, over the mean (0.02 = 2%)."""
    mean = float(times.mean()) if times.size else 0.0
    return half_width(times) / mean if mean > 0 else float("inf")


@dataclass(frozen=True)
class BetweenRuns:
    """Repeats of one configuration: how much their mean speeds vary from run to run."""

    runs: int
    mean_speed: float
    std: float | None  # sample standard deviation of the runs' speeds
    cv: float | None  # std / mean
    ci95: tuple[float, float] | None  # t-interval of the mean over runs, never below 0
    low: float
    high: float


def between_runs(speeds: Sequence[float]) -> BetweenRuns | None:
    values = np.asarray([s for s in speeds if s], dtype=np.float64)
    if values.size == 0:
        return None
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else None
    h = half_width(values)
    return BetweenRuns(
        runs=int(values.size),
        mean_speed=mean,
        std=std,
        cv=std / mean if std is not None and mean > 0 else None,
        ci95=(max(0.0, mean - h), mean + h) if values.size > 1 else None,
        low=float(values.min()),
        high=float(values.max()),
    )


def jitter(values: np.ndarray) -> float:
    """1.4826 x median(|v - median(v)|): a standard deviation robust to outlier steps."""
    return float(MAD_TO_STD * np.median(np.abs(values - np.median(values))))


def percentiles_ms(durations_s: Sequence[float], *qs: float) -> tuple[float, ...]:
    values = np.asarray(durations_s, dtype=np.float64) * 1e3
    return tuple(float(np.percentile(values, q)) for q in qs)
