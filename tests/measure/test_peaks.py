"""Device peaks: the table's matching, the CPU estimate's arithmetic, MFU."""

import pytest

from dlbench.measure import peaks


@pytest.mark.parametrize(
    ("name", "precision", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", "amp-bf16", 989.4),
        ("NVIDIA H100 PCIe", "amp-bf16", 756.0),
        ("NVIDIA H100 NVL", "fp32", 60.0),
        ("NVIDIA H200", "tf32", 494.7),
        ("NVIDIA A100-SXM4-80GB", "tf32", 156.0),
        ("Tesla V100-SXM2-16GB", "amp-fp16", 125.0),
        ("Tesla V100-PCIE-32GB", "fp32", 14.0),
        ("Tesla P100-PCIE-16GB", "amp-fp16", 18.7),
        ("Tesla K80", "fp32", 4.37),
        ("Tesla T4", "amp-fp16", 65.0),
        ("NVIDIA L4", "amp-bf16", 121.0),
        ("NVIDIA GeForce RTX 4090", "amp-bf16", 165.2),
        ("NVIDIA GeForce GTX 1080 Ti", "fp32", 11.34),
    ],
)
def test_gpu_peaks_by_name_and_precision(name, precision, tflops):
    peak = peaks.gpu_peak(name, precision)
    assert peak.tflops == tflops and peak.source


def test_a_missing_hardware_path_or_an_unknown_gpu_has_no_peak_and_says_why():
    assert peaks.gpu_peak("Tesla V100-SXM2-16GB", "tf32").tflops is None
    assert "no tf32 peak" in peaks.gpu_peak("Tesla V100-SXM2-16GB", "tf32").source
    unknown = peaks.gpu_peak("Imaginary X1", "fp32")
    assert unknown.tflops is None and "no published peak" in unknown.source


def test_cpu_estimate_is_cores_times_clock_times_flops_per_cycle():
    cpu = {
        "usable_cpus": 8,
        "physical_cores": 4,
        "max_mhz": 3000.0,
        "isa": {
            "vendor": "GenuineIntel",
            "family": 6,
            "avx2": True,
            "fma": True,
            "avx512f": True,
            "avx512_bf16": False,
            "amx_bf16": False,
        },
    }
    fp32 = peaks.cpu_peak(cpu, "fp32")
    assert fp32.tflops == pytest.approx(4 * 3.0e9 * 64 / 1e12)  # SMT siblings do not count
    assert "upper bound" in fp32.source
    bf16 = peaks.cpu_peak(cpu, "amp-bf16")
    assert bf16.tflops == fp32.tflops and "no bf16 instructions" in bf16.source
    zen4 = dict(cpu, isa=dict(cpu["isa"], vendor="AuthenticAMD", family=25))
    assert peaks.cpu_peak(zen4, "fp32").tflops == pytest.approx(4 * 3.0e9 * 32 / 1e12)
    assert peaks.cpu_peak(cpu, "tf32").tflops is None
    assert peaks.cpu_peak({}, "fp32").tflops is None


def test_mfu_arithmetic():
    achieved, mfu = peaks.mfu(2e12, 0.5, peaks.Peak(8.0, "x"))
    assert achieved == pytest.approx(4.0) and mfu == pytest.approx(0.5)
    assert peaks.mfu(None, 0.5, peaks.Peak(8.0, "x")) == (None, None)
    assert peaks.mfu(2e12, 0.5, peaks.Peak(None, "why")) == (pytest.approx(4.0), None)


def test_memory_bandwidth_table():
    assert peaks.gpu_bandwidth("NVIDIA H100 80GB HBM3") == 3350.0
    assert peaks.gpu_bandwidth("NVIDIA A100-SXM4-80GB") == 2039.0
    assert peaks.gpu_bandwidth("Tesla K80") == 240.0
    assert peaks.gpu_bandwidth("AMD EPYC") is None
