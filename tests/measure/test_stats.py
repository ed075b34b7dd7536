import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlbench.measure.stats import MAD_TO_STD, jitter, percentiles_ms, speed_stats


def test_statistics_match_a_hand_computation():
    # Batch 10; steps of 0.1, 0.2, 0.1, 0.4 s -> speeds 100, 50, 100, 25 img/s.
    stats = speed_stats([0.1, 0.2, 0.1, 0.4], [0.01, 0.0, 0.01, 0.0], batch_size=10)
    assert stats is not None
    assert stats.timed_steps == 4
    assert stats.mean_step_time_s == pytest.approx(0.2)
    assert stats.mean_speed == pytest.approx(10 / 0.2)  # 50, not mean(speeds) = 68.75
    # sample std of (100, 50, 100, 25): mean 68.75, squares 976.5625+351.5625+976.5625+1914.0625
    std = math.sqrt((976.5625 + 351.5625 + 976.5625 + 1914.0625) / 3)
    assert stats.speed_stderr == pytest.approx(std / 2)
    # median(speeds) = 75; |s - 75| = 25, 25, 25, 50 -> median 25
    assert stats.median_speed == pytest.approx(75)
    assert stats.speed_jitter == pytest.approx(1.4826 * 25)
    assert stats.p5_speed == pytest.approx(np.percentile([100, 50, 100, 25], 5))
    assert stats.p95_speed == pytest.approx(100)
    assert stats.mean_data_wait_s == pytest.approx(0.005)
    assert stats.data_wait_fraction == pytest.approx(0.02 / 0.8)


def test_one_step_has_no_standard_error_and_none_has_no_stats():
    one = speed_stats([0.5], [0.0], batch_size=4)
    assert one is not None and one.speed_stderr is None and one.mean_speed == pytest.approx(8)
    assert speed_stats([], [], batch_size=4) is None


def test_jitter_ignores_a_single_outlier_step():
    steady = np.full(99, 100.0)
    assert jitter(np.append(steady, 1.0)) == 0.0
    assert MAD_TO_STD == 1.4826


@given(st.lists(st.floats(0.001, 10.0), min_size=2, max_size=50), st.integers(1, 512))
def test_mean_speed_is_batch_over_mean_time_and_bounded_by_the_extremes(times, batch):
    stats = speed_stats(times, [0.0] * len(times), batch)
    assert stats is not None
    assert stats.mean_speed == pytest.approx(batch / np.mean(times))
    assert batch / max(times) * (1 - 1e-9) <= stats.mean_speed <= batch / min(times) * (1 + 1e-9)
    assert stats.p5_speed <= stats.median_speed <= stats.p95_speed


def test_percentiles_in_milliseconds():
    assert percentiles_ms([0.001, 0.002, 0.003], 50, 100) == pytest.approx((2.0, 3.0))


def test_the_speed_interval_is_a_t_interval_of_the_mean_step_time_by_hand():
    # Steps 0.1, 0.2, 0.1, 0.4 s: mean 0.2, sample std 0.14142, t(0.975, 3) = 3.18245.
    stats = speed_stats([0.1, 0.2, 0.1, 0.4], [0, 0, 0, 0], batch_size=10)
    half = 3.182446 * math.sqrt(0.06 / 3) / 2  # t x sqrt(sum of squared deviations / 3) / sqrt(4)
    low, high = stats.speed_ci95
    assert low == pytest.approx(10 / (0.2 + half), rel=1e-5)
    # 0.2 - half < 0: the mean step time is bounded below by the fastest step instead.
    assert 0.2 - half < 0.1 and high == pytest.approx(10 / 0.1)


def test_a_long_run_has_a_narrow_symmetric_interval():
    rng = np.random.default_rng(0)
    times = rng.normal(0.05, 0.001, 2000)
    low, high = speed_stats(times, np.zeros_like(times), 64).speed_ci95
    mean = 64 / times.mean()
    assert low < mean < high and (high - low) / mean < 0.002
    assert (mean - low) == pytest.approx(high - mean, rel=0.01)


@given(
    st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=2),
    st.floats(10.0, 1e4),
    st.integers(1, 512),
)
def test_the_interval_never_goes_below_zero_even_with_a_huge_outlier(steps, outlier, batch):
    # Two or three steps, one of them thousands of times slower: the case that printed
    # "127.5 ± 297.2" img/s and drew an error bar to -200.
    stats = speed_stats([*steps, outlier], [0.0] * (len(steps) + 1), batch)
    low, high = stats.speed_ci95
    assert 0 < low <= stats.mean_speed <= high
    assert math.isfinite(high)


def test_one_step_has_no_interval():
    assert speed_stats([0.1], [0.0], 10).speed_ci95 is None


def test_between_runs_by_hand():
    from dlbench.measure.stats import between_runs

    spread = between_runs([100.0, 110.0, 90.0])
    assert spread.runs == 3 and spread.mean_speed == pytest.approx(100)
    assert spread.std == pytest.approx(10) and spread.cv == pytest.approx(0.1)
    half = 4.302653 * 10 / math.sqrt(3)
    assert spread.ci95 == pytest.approx((100 - half, 100 + half), rel=1e-5)
    assert between_runs([5.0, 500.0]).ci95[0] == 0.0  # never below zero
    assert between_runs([50.0]).ci95 is None and between_runs([]) is None
