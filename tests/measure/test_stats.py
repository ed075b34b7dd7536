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
