"""The statistics behind ``dlbench compare`` (SciPy for the tests, numpy for the bootstrap)."""

from __future__ import annotations

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


def _bootstrap_means(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    means = np.empty(resamples)
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        picks = rng.integers(0, values.size, (size, values.size))
        means[start : start + size] = values[picks].mean(axis=1)
    return means


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
    rng = np.random.default_rng(seed)
    estimate = (batch_a / times_a.mean()) / (batch_b / times_b.mean())
    ratios = (batch_a / _bootstrap_means(times_a, rng, resamples)) / (
        batch_b / _bootstrap_means(times_b, rng, resamples)
    )
    return _interval(estimate, ratios)


def speedup_over_repeats(
    speeds_a: np.ndarray, speeds_b: np.ndarray, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> Interval:
    """Mean speed of A's repeats over B's, bootstrap over the repeats (runs) themselves."""
    rng = np.random.default_rng(seed)
    estimate = speeds_a.mean() / speeds_b.mean()
    ratios = _bootstrap_means(speeds_a, rng, resamples) / _bootstrap_means(speeds_b, rng, resamples)
    return _interval(estimate, ratios)


def _interval(estimate: float, samples: np.ndarray) -> Interval:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


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
