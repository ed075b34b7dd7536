"""The statistics of dlbench compare, against SciPy and hand-computed cases."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from dlbench.analysis import stats


def test_cliffs_delta_by_hand():
    # of the 9 pairs (a, b): a > b in 6, a < b in 1, ties in 2
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 0.0])
    greater = sum(x > y for x in a for y in b)
    less = sum(x < y for x in a for y in b)
    assert stats.cliffs_delta(a, b) == pytest.approx((greater - less) / 9) == pytest.approx(5 / 9)
    assert stats.cliffs_delta(np.arange(5.0), np.arange(5.0) + 10) == -1.0
    assert stats.magnitude(0.1) == "negligible" and stats.magnitude(-0.5) == "large"


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> 3 x 0.01, 2 x 0.02, 1 x 0.04, made monotone
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_tests_agree_with_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 1, 200), rng.normal(10.4, 2, 150)
    assert stats.welch_p(a, b) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert stats.mann_whitney_p(a, b) == pytest.approx(scipy_stats.mannwhitneyu(a, b).pvalue)
    d, p = stats.ks_test(a, b)
    reference = scipy_stats.ks_2samp(a, b)
    assert (d, p) == pytest.approx((reference.statistic, reference.pvalue))


def test_bootstrap_speedup_is_the_ratio_of_speeds_with_an_interval_around_it():
    rng = np.random.default_rng(0)
    slow = rng.normal(0.100, 0.004, 300)  # 64 images per step
    fast = rng.normal(0.010, 0.0005, 300)
    interval = stats.speedup_over_steps(fast, 64, slow, 64)
    assert interval.estimate == pytest.approx(slow.mean() / fast.mean())
    assert interval.low < interval.estimate < interval.high
    assert 9.5 < interval.low and interval.high < 10.5
    same = stats.speedup_over_steps(slow, 64, rng.permutation(slow), 64)
    assert same.low < 1 < same.high


def test_bootstrap_over_repeats():
    interval = stats.speedup_over_repeats(np.array([200.0, 210, 190]), np.array([100.0, 98, 102]))
    assert interval.estimate == pytest.approx(2.0)
    assert 1.8 < interval.low <= 2.0 <= interval.high < 2.2


def test_p_values_are_written_for_people():
    assert stats.format_p(1e-12) == "p < 1e-9"
    assert stats.format_p(0.0004) == "p = 4.0e-04" and stats.format_p(0.2) == "p = 0.200"


@pytest.mark.parametrize(
    ("low", "high", "welch", "said"),
    [
        (1.1, 1.3, 1e-8, "supported."),
        (0.7, 0.9, 1e-8, "rejected: it is slower."),
        (0.9, 1.4, 2.1e-8, "the step speeds differ, but the speed-up's interval includes 1"),
        (1.1, 1.3, 0.3, "the interval excludes 1, but Welch's test is not significant"),
        (0.9, 1.1, 0.3, "no clear difference"),
    ],
)
def test_hypothesis_b_never_contradicts_its_own_figures(low, high, welch, said):
    from dlbench.analysis.compare import _hypothesis_b

    text = _hypothesis_b("device=cuda", "device=cpu", stats.Interval(1.2, low, high), welch)
    assert said in text


def test_whole_machine_memory_is_not_called_an_effect_of_the_workload():
    from dlbench.analysis.compare import Group, _metric_tests

    rng = np.random.default_rng(0)

    def group(memory):
        samples = {
            "mem.used_bytes": rng.normal(memory, 1e6, 100),
            "proc.rss_bytes": rng.normal(2e9, 1e6, 100),
        }
        return Group("x", [], np.ones(3), np.ones(3), 1.0, samples)

    tested = [m.metric for m in _metric_tests(group(20e9), group(10e9))]
    assert tested == ["proc.rss_bytes"]
