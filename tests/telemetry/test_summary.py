import numpy as np
import pytest

from dlbench.records import TelemetrySample
from dlbench.telemetry.summary import summarise, time_mean


def _samples(metric, points):
    return [TelemetrySample(t, 1e9 + t, phase, metric, v) for t, phase, v in points]


def test_time_weighted_mean_on_an_uneven_grid():
    t, v = np.array([0.0, 1.0, 3.0]), np.array([0.0, 10.0, 10.0])
    # Trapezoids: (0+10)/2*1 + (10+10)/2*2 = 25 over 3 s.
    assert time_mean(t, v) == pytest.approx(25 / 3)
    assert time_mean(np.array([5.0]), np.array([7.0])) == 7.0


def test_per_phase_statistics():
    points = [
        (0, "warmup", 10),
        (1, "warmup", 20),
        (2, "train", 90),
        (3, "train", 100),
        (4, "train", 80),
    ]
    summary = summarise(_samples("cpu.util_percent", points))
    assert list(summary["phases"]) == ["warmup", "train"]
    train = summary["phases"]["train"]["metrics"]["cpu.util_percent"]
    assert train["mean"] == pytest.approx(92.5) and train["max"] == 100
    assert train["p95"] == pytest.approx(np.percentile([90, 100, 80], 95))
    assert summary["run"]["metrics"]["cpu.util_percent"]["max"] == 100
    assert summary["phases"]["train"]["duration_s"] == 2


def test_energy_from_a_counter_counts_from_the_reading_before_the_phase():
    counter = _samples(
        "gpu0.energy_j",
        [(0, "warmup", 0), (1, "warmup", 100), (2, "train", 400), (3, "train", 700)],
    )
    power = _samples(
        "gpu0.power_w", [(0, "warmup", 1), (1, "warmup", 1), (2, "train", 1), (3, "train", 1)]
    )  # ignored: the counter is exact
    summary = summarise(counter + power, {"train": 1200})
    train = summary["phases"]["train"]
    assert train["energy_j"] == {"gpu0": 600.0}
    assert train["images_per_joule"] == pytest.approx(2.0)
    assert summary["phases"]["warmup"]["total_energy_j"] == 100.0
    assert summary["run"]["total_energy_j"] == 700.0
    assert "gpu0.energy_j" not in train["metrics"]


def test_energy_from_power_when_there_is_no_counter():
    power = _samples("cpu.package0.power_w", [(0, "train", 50), (2, "train", 70)])
    assert summarise(power)["phases"]["train"]["energy_j"] == {"cpu.package0": 120.0}


def test_throttle_reasons_are_decoded_over_the_phase():
    masks = _samples(
        "gpu0.throttle_reasons", [(0, "train", 0x0), (1, "train", 0x40), (2, "train", 0x4)]
    )
    stats = summarise(masks)["phases"]["train"]["metrics"]["gpu0.throttle_reasons"]
    assert stats["reasons"] == ["software power cap", "hardware thermal slowdown"]


def test_no_samples():
    assert summarise([]) == {"phases": {}, "run": None}
