"""dlbench check's statistics: the speed ratio's interval and the verdict against tolerance."""

import math

import numpy as np
import pytest
from scipy import stats

from dlbench.analysis.regression import (
    RunFigures,
    decide,
    hardware_differences,
    speed_ratio,
)


def _runs(speeds, status="ok", verdict="clean", cv=0.02, steps=100):
    return [RunFigures(f"r{i}-{s}", status, s, steps, cv, verdict) for i, s in enumerate(speeds)]


def test_the_ratio_interval_is_welchs_on_log_speeds_by_hand():
    ref, new = [100.0, 104.0, 96.0], [90.0, 93.0, 88.0, 91.0]
    ratio = speed_ratio(_runs(ref), _runs(new))
    a, b = np.log(new), np.log(ref)
    diff = a.mean() - b.mean()
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert ratio.estimate == pytest.approx(math.exp(diff))
    assert ratio.p_value == pytest.approx(welch.pvalue)
    interval = welch.confidence_interval(0.95)
    assert (ratio.low, ratio.high) == pytest.approx(
        (math.exp(interval.low), math.exp(interval.high))
    )


def test_one_reference_run_borrows_the_checks_between_run_variance():
    ratio = speed_ratio(_runs([100.0]), _runs([98.0, 102.0, 100.0]))
    assert ratio.low < 1 < ratio.high and "other side's between-run variance" in ratio.method


def test_one_run_a_side_says_its_interval_is_too_narrow():
    ratio = speed_ratio(_runs([100.0]), _runs([90.0]))
    assert ratio.estimate == pytest.approx(0.9) and ratio.high < 1
    assert "too narrow" in ratio.method


@pytest.mark.parametrize(
    ("new", "verdict"),
    [
        ([100.5, 99.0, 101.0], "pass"),
        ([80.0, 81.0, 79.5], "regression"),
        ([130.0, 131.0, 129.0], "improvement"),
        ([93.0, 99.0, 90.0], "inconclusive"),  # the interval straddles 0.95
    ],
)
def test_verdicts_against_a_5_percent_tolerance(new, verdict):
    found = decide("node", _runs([100.0, 101.0, 99.0]), _runs(new), 0.05)
    assert found.verdict == verdict, found.reasons
    assert found.ratio == pytest.approx(np.exp(np.log(new).mean() - np.log([100, 101, 99]).mean()))
    assert found.ci95[0] <= found.ratio <= found.ci95[1]
    assert found.exit_code == {"pass": 0, "improvement": 0, "regression": 1}.get(verdict, 3)


def test_a_contended_check_run_makes_the_check_inconclusive_whatever_the_speed():
    found = decide("node", _runs([100, 101, 99]), _runs([50, 51], verdict="contended"), 0.05)
    assert found.verdict == "inconclusive" and found.exit_code == 3
    assert "measured under contention" in found.reasons[0]


def test_a_check_run_that_does_not_train_is_a_regression():
    new = [*_runs([100.0, 101.0]), RunFigures("x", "oom", None, 0, None, None)]
    found = decide("node", _runs([100, 101, 99]), new, 0.05)
    assert found.verdict == "regression" and "x oom" in found.reasons[0]
    assert found.ratio is not None  # the runs that trained are still compared


def test_a_different_fingerprint_is_named():
    base = {"hostname": "n1", "cpu": {"model": "EPYC", "usable_cpus": 2}, "memory_bytes": 2**34,
            "torch": "2.11", "gpus": [{"name": "H100"}]}  # fmt: skip
    now = {**base, "hostname": "n2", "torch": "2.14", "gpus": [{"name": "A100"}]}
    found = hardware_differences(base, now)
    assert found == [
        "host: n1 (baseline) vs n2 (now)",
        "torch: 2.11 (baseline) vs 2.14 (now)",
        "GPUs: ['H100'] (baseline) vs ['A100'] (now)",
    ]
    assert hardware_differences(base, base) == []
