"""Each bottleneck verdict from telemetry built to show it, and none from a healthy run."""

import numpy as np
import pytest

from dlbench.analysis.bottleneck import verdicts
from dlbench.records import TelemetrySample
from dlbench.store.stored import StoredRun
from dlbench.telemetry.summary import summarise


def _summary(series, wait=0.02, mfu=None, disk="sda"):
    """A stored run's summary with these train-phase telemetry series ({metric: values})."""
    samples = [
        TelemetrySample(i * 0.5, 1e9 + i, "train", metric, float(v))
        for metric, values in series.items()
        for i, v in enumerate(values)
    ]
    summary = {
        "run_id": "r",
        "kind": "train",
        "status": "ok",
        "data_wait_fraction": wait,
        "mfu": mfu,
        "hardware": {"storage": {"device": disk}},
        "telemetry": {"enabled": True, **summarise(samples)},
    }
    return StoredRun.from_summary(summary), samples


def _flat(value, n=40):
    return [value] * n


HEALTHY_GPU = {
    "cpu.util_percent": _flat(35),
    "gpu0.util_percent": _flat(97),
    "gpu0.sm_clock_mhz": _flat(1980),
    "gpu0.throttle_reasons": _flat(0),
    "disk.sda.util_percent": _flat(3),
    "swap.in_bytes_per_s": _flat(0),
}
HEALTHY_CPU = {
    "cpu.util_percent": _flat(99),
    "cpu.freq_mhz": _flat(3000),
    "cpu.temp_c": _flat(60),
    "disk.sda.util_percent": _flat(1),
}


@pytest.mark.parametrize("healthy", [HEALTHY_GPU, HEALTHY_CPU])
def test_a_healthy_run_has_no_verdict(healthy):
    summary, samples = _summary(healthy, mfu=0.45 if "gpu0.util_percent" in healthy else None)
    assert verdicts(summary, samples) == []


def _names(series, **kwargs):
    summary, samples = _summary({**HEALTHY_GPU, **series}, **kwargs)
    return {v.name: v.evidence for v in verdicts(summary, samples)}


def test_input_bound():
    found = _names({"gpu0.util_percent": _flat(40)}, wait=0.45, mfu=0.2)
    assert "steps waited for data 45%" in found["input-bound"]
    assert "GPU was busy 40%" in found["input-bound"]


def test_io_bound():
    found = _names({"disk.sda.util_percent": _flat(99)}, wait=0.3, mfu=0.3)
    assert "data disk sda 99% busy" in found["io-bound"]


def test_cpu_bound_on_a_gpu_run():
    found = _names({"cpu.util_percent": _flat(98), "gpu0.util_percent": _flat(55)}, mfu=0.3)
    assert "CPU 98% busy on average while the GPU was busy 55%" in found["cpu-bound"]


def test_gpu_thermal_and_power_throttling():
    clocks = list(np.linspace(1980, 1400, 40))
    found = _names({"gpu0.throttle_reasons": _flat(0x40), "gpu0.sm_clock_mhz": clocks}, mfu=0.4)
    assert "HW thermal" in found["thermal-throttling"] and "SM clock" in found["thermal-throttling"]
    power = _names({"gpu0.throttle_reasons": _flat(0x4)}, mfu=0.4)
    assert "SW power cap" in power["power-throttling"]


def test_cpu_thermal_throttling_from_frequency_falling_as_temperature_rises():
    series = {
        "cpu.util_percent": _flat(99),
        "cpu.freq_mhz": list(np.linspace(3500, 2600, 40)),
        "cpu.temp_c": list(np.linspace(62, 95, 40)),
    }
    summary, samples = _summary(series)
    (verdict,) = verdicts(summary, samples)
    assert verdict.name == "thermal-throttling" and "CPU frequency fell" in verdict.evidence
    # temperature steady: a falling frequency alone is not thermal
    series["cpu.temp_c"] = _flat(62)
    summary, samples = _summary(series)
    assert verdicts(summary, samples) == []


def test_memory_pressure():
    found = _names({"swap.in_bytes_per_s": _flat(8e6)}, mfu=0.4)
    assert "swapping 8.0 MB/s" in found["memory-pressure"]


def test_accelerator_underused_by_utilisation_or_mfu():
    assert "GPU busy 30%" in _names({"gpu0.util_percent": _flat(30)})["accelerator-underused"]
    assert "MFU 4.0%" in _names({}, mfu=0.04)["accelerator-underused"]
