"""The statistics behind ``dlbench compare``: SciPy's tests and percentile bootstrap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 4000
CONFIDENCE = 0.95
CHUNK = 250  # resamples drawn at once: bounded memory with long runs
# Cliff's delta magnitudes (Romano et al. 2006).
CLIFF_SMALL, CLIFF_MEDIUM, CLIFF_LARGE = 0.147, 0.33, 0.474


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def speedup_over_steps(
    times_a: np.ndarray,
    batch_a: float,
    times_b: np.ndarray,
    batch_b: float,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval:
    """Speed of A over speed of B, speed = batch / mean step time, with a percentile bootstrap
    interval from resampling each run's step times."""

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray((batch_a / a.mean(axis=axis)) / (batch_b / b.mean(axis=axis)))

    return _bootstrap(ratio, times_a, times_b, seed, resamples)


def speedup_over_repeats(
    speeds_a: np.ndarray, speeds_b: np.ndarray, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> Interval:
    """Mean speed of A's repeats over B's, bootstrap over the repeats (runs) themselves."""

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(a.mean(axis=axis) / b.mean(axis=axis))

    return _bootstrap(ratio, speeds_a, speeds_b, seed, resamples)


def _bootstrap(
    statistic: Callable[..., np.ndarray], a: np.ndarray, b: np.ndarray, seed: int, resamples: int
) -> Interval:
    """The statistic of (a, b) with its percentile-bootstrap interval, each sample resampled
    on its own (SciPy's bootstrap; CHUNK resamples at a time bound the memory)."""
    found = stats.bootstrap(
        (a, b),
        statistic,
        n_resamples=resamples,
        batch=CHUNK,
        vectorized=True,
        paired=False,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = found.confidence_interval
    return Interval(float(statistic(a, b)), float(interval.low), float(interval.high))


def welch_p(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 2 or b.size < 2:
        return None
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 0.0 if a[0] != b[0] else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 1 or b.size < 1:
        return None
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def ks_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    """(statistic, p) of the two-sample Kolmogorov-Smirnov test."""
    if a.size < 2 or b.size < 2:
        return None
    result = stats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) - P(a < b): an effect size for two samples, -1..1, robust to outliers."""
    if a.size == 0 or b.size == 0:
        return 0.0
    b_sorted = np.sort(b)
    greater = np.searchsorted(b_sorted, a, side="left").sum()
    less = (b.size - np.searchsorted(b_sorted, a, side="right")).sum()
    return float((greater - less) / (a.size * b.size))


def magnitude(delta: float) -> str:
    size = abs(delta)
    if size < CLIFF_SMALL:
        return "negligible"
    if size < CLIFF_MEDIUM:
        return "small"
    if size < CLIFF_LARGE:
        return "medium"
    return "large"


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def format_p(p: float | None) -> str:
    if p is None:
        return "p n/a"
    if p < 1e-9:
        return "p < 1e-9"
    if p < 0.001:
        return f"p = {p:.1e}"
    return f"p = {p:.3f}"
