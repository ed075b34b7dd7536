"""Peak dense FLOP/s of devices per precision, for model-FLOPs utilisation (MFU).

GPU figures are the vendors' published dense peaks (sparsity figures halved), boost clock,
for the precision a PyTorch run actually uses: ``fp32`` on the CUDA cores, ``tf32`` and the
AMP precisions on the tensor cores with FP32 accumulation (autocast accumulates in fp32, which
GeForce cards run at half their FP16-accumulate rate). ``None`` means the device has no such
path (V100 has no TF32 and no bf16 tensor cores). CPU peaks are estimated from cores x clock x
FLOPs per cycle of the widest FMA units the CPU reports; they are upper bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PRECISION_KEYS = {"fp32": "fp32", "tf32": "tf32", "amp-fp16": "fp16", "amp-bf16": "bf16"}


@dataclass(frozen=True)
class DevicePeak:
    pattern: str  # regex on torch.cuda.get_device_name(), first match wins
    tflops: dict[str, float | None]  # fp32, tf32, fp16, bf16
    source: str


_H100_SXM = "NVIDIA H100 Tensor Core GPU datasheet (SXM5; dense = sparse / 2)"
_H200 = "NVIDIA H200 Tensor Core GPU datasheet (dense = sparse / 2)"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (SXM4 and PCIe; dense)"
_TURING = "NVIDIA Turing architecture whitepaper (FP16 tensor, FP32 accumulate)"

GPU_PEAKS: tuple[DevicePeak, ...] = (
    DevicePeak(
        r"H100.*(PCIe|PCI-E)",
        {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0},
        "NVIDIA H100 datasheet (PCIe; dense = sparse / 2)",
    ),
    DevicePeak(
        r"H100.*NVL",
        {"fp32": 60.0, "tf32": 417.5, "fp16": 835.5, "bf16": 835.5},
        "NVIDIA H100 NVL datasheet (dense = sparse / 2)",
    ),
    DevicePeak(r"H100", {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4}, _H100_SXM),
    DevicePeak(
        r"H200.*NVL",
        {"fp32": 60.0, "tf32": 417.5, "fp16": 835.5, "bf16": 835.5},
        "NVIDIA H200 NVL datasheet (dense = sparse / 2)",
    ),
    DevicePeak(r"H200", {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4}, _H200),
    DevicePeak(r"A100", {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0}, _A100),
    DevicePeak(
        r"L40S",
        {"fp32": 91.6, "tf32": 183.0, "fp16": 362.05, "bf16": 362.05},
        "NVIDIA L40S datasheet (dense = sparse / 2)",
    ),
    DevicePeak(
        r"\bL4\b",
        {"fp32": 30.3, "tf32": 60.0, "fp16": 121.0, "bf16": 121.0},
        "NVIDIA L4 datasheet (dense = sparse / 2)",
    ),
    DevicePeak(
        r"A10\b",
        {"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0},
        "NVIDIA A10 datasheet (dense)",
    ),
    DevicePeak(
        r"V100S",
        {"fp32": 16.4, "tf32": None, "fp16": 130.0, "bf16": None},
        "NVIDIA V100S datasheet (PCIe)",
    ),
    DevicePeak(
        r"V100.*(PCIE|PCIe)",
        {"fp32": 14.0, "tf32": None, "fp16": 112.0, "bf16": None},
        "NVIDIA V100 datasheet (PCIe)",
    ),
    DevicePeak(
        r"V100",
        {"fp32": 15.7, "tf32": None, "fp16": 125.0, "bf16": None},
        "NVIDIA V100 datasheet (SXM2)",
    ),
    DevicePeak(
        r"P100.*(PCIE|PCIe)",
        {"fp32": 9.3, "tf32": None, "fp16": 18.7, "bf16": None},
        "NVIDIA Tesla P100 datasheet (PCIe; FP16 at twice the FP32 rate, no tensor cores)",
    ),
    DevicePeak(
        r"P100",
        {"fp32": 10.6, "tf32": None, "fp16": 21.2, "bf16": None},
        "NVIDIA Tesla P100 datasheet (SXM2; FP16 at twice the FP32 rate)",
    ),
    DevicePeak(
        r"K80",
        {"fp32": 4.37, "tf32": None, "fp16": None, "bf16": None},
        "NVIDIA Tesla K80 datasheet: 8.73 TFLOP/s per board at boost, two GPUs per board",
    ),
    DevicePeak(
        r"\bT4\b",
        {"fp32": 8.1, "tf32": None, "fp16": 65.0, "bf16": None},
        "NVIDIA T4 datasheet (FP16 tensor, mixed precision)",
    ),
    DevicePeak(
        r"RTX 4090",
        {"fp32": 82.6, "tf32": 82.6, "fp16": 165.2, "bf16": 165.2},
        "NVIDIA Ada Lovelace architecture whitepaper (FP32 accumulate; dense)",
    ),
    DevicePeak(
        r"RTX 3090",
        {"fp32": 35.6, "tf32": 35.6, "fp16": 71.0, "bf16": 71.0},
        "NVIDIA Ampere GA102 whitepaper (RTX 3090, FP32 accumulate; dense)",
    ),
    DevicePeak(r"RTX 2080 Ti", {"fp32": 13.4, "tf32": None, "fp16": 53.8, "bf16": None}, _TURING),
    DevicePeak(
        r"RTX 2060",
        {"fp32": 6.45, "tf32": None, "fp16": 25.8, "bf16": None},
        _TURING + ": 240 tensor cores x 1.68 GHz x 64 FMA, half rate",
    ),
    DevicePeak(
        r"GTX 1080 Ti",
        {"fp32": 11.34, "tf32": None, "fp16": None, "bf16": None},
        "NVIDIA GeForce GTX 1080 Ti specifications (3584 cores x 1.582 GHz x 2)",
    ),
    DevicePeak(
        r"GTX 1050",
        {"fp32": 1.862, "tf32": None, "fp16": None, "bf16": None},
        "NVIDIA GeForce GTX 1050 specifications (640 cores x 1.455 GHz x 2)",
    ),
)


@dataclass(frozen=True)
class Peak:
    tflops: float | None
    source: str  # where the figure comes from, or why there is none


def gpu_peak(device_name: str, precision: str) -> Peak:
    key = PRECISION_KEYS[precision]
    for entry in GPU_PEAKS:
        if re.search(entry.pattern, device_name, flags=re.IGNORECASE):
            value = entry.tflops.get(key)
            if value is None:
                return Peak(None, f"{device_name} has no {key} peak (no such hardware path)")
            return Peak(value, entry.source)
    return Peak(None, f"no published peak for {device_name!r} in dlbench's table")


def cpu_flops_per_cycle(isa: dict[str, Any], precision: str) -> tuple[int, str]:
    """FLOPs per cycle per core: 2 (FMA) x lanes x FMA units, from the CPU's flags."""
    vendor, family = isa.get("vendor"), isa.get("family")
    if isa.get("avx512f"):
        # Zen 4 (AMD family 25) runs 512-bit FMAs on two 256-bit pipes; Zen 5 and Xeon
        # Gold/Platinum have two full 512-bit FMA units (Xeon Silver/Bronze one: half this).
        if vendor == "AuthenticAMD" and family == 25:
            fp32, why = 32, "AVX-512 on two 256-bit FMA pipes (Zen 4)"
        else:
            fp32, why = 64, "AVX-512, two 512-bit FMA units"
    elif isa.get("avx2") and isa.get("fma"):
        fp32, why = 32, "AVX2, two 256-bit FMA units"
    elif isa.get("neon") or isa.get("asimd"):
        fp32, why = 16, "NEON, two 128-bit FMA units"
    else:
        fp32, why = 8, "SSE, 128-bit without FMA"
    if precision == "amp-bf16":
        if isa.get("amx_bf16"):
            return 1024, "AMX-BF16 tiles, 1024 bf16 FLOPs per cycle"
        if isa.get("avx512_bf16"):
            return fp32 * 2, why + ", AVX512-BF16 dot products (twice fp32)"
        return fp32, why + ", no bf16 instructions (bf16 computed at the fp32 rate at best)"
    return fp32, why


def cpu_peak(cpu: dict[str, Any], precision: str) -> Peak:
    """cores x clock x FLOPs per cycle for this process's CPUs, or None with the reason."""
    if precision == "tf32":
        return Peak(None, "TF32 is a GPU tensor-core format")
    isa = cpu.get("isa") or {}
    mhz = cpu.get("max_mhz") or cpu.get("clock_mhz")
    cores = cpu.get("usable_cpus")
    physical = cpu.get("physical_cores")
    if not isa or not mhz or not cores:
        return Peak(None, "CPU clock, cores or instruction set unknown on this machine")
    cores = min(int(cores), int(physical or cores))  # SMT siblings share the FMA units
    per_cycle, why = cpu_flops_per_cycle(isa, precision)
    tflops = cores * float(mhz) * 1e6 * per_cycle / 1e12
    clock = "max" if cpu.get("max_mhz") else "current"
    return Peak(
        round(tflops, 4),
        f"estimate: {cores} cores x {float(mhz) / 1000:.2f} GHz ({clock} clock) x "
        f"{per_cycle} FLOPs/cycle ({why}); an upper bound",
    )


# Memory bandwidth, GB/s, from the same datasheets (K80: per GPU, half the board's).
GPU_BANDWIDTH_GB_S: tuple[tuple[str, float], ...] = (
    (r"H100.*(PCIe|PCI-E)", 2000.0),
    (r"H100.*NVL", 3900.0),
    (r"H100", 3350.0),
    (r"H200", 4800.0),
    (r"A100.*80GB", 2039.0),
    (r"A100", 1555.0),
    (r"L40S", 864.0),
    (r"\bL4\b", 300.0),
    (r"A10\b", 600.0),
    (r"V100", 900.0),
    (r"P100", 732.0),
    (r"K80", 240.0),
    (r"\bT4\b", 320.0),
    (r"RTX 4090", 1008.0),
    (r"RTX 3090", 936.0),
    (r"RTX 2080 Ti", 616.0),
    (r"RTX 2060", 336.0),
    (r"GTX 1080 Ti", 484.0),
    (r"GTX 1050", 112.0),
)


def gpu_bandwidth(device_name: str) -> float | None:
    for pattern, value in GPU_BANDWIDTH_GB_S:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return value
    return None


def device_peak(kind: str, device_name: str, precision: str, hardware: dict[str, Any]) -> Peak:
    if kind == "cuda":
        return gpu_peak(device_name, precision)
    if kind == "cpu":
        return cpu_peak(hardware.get("cpu") or {}, precision)
    return Peak(None, f"no peak table for {kind} devices")


def mfu(
    flops_per_step: int | None, mean_step_time_s: float | None, peak: Peak
) -> tuple[float | None, float | None]:
    """(achieved TFLOP/s, MFU) for a step's FLOPs and mean time; None where either is unknown."""
    if not flops_per_step or not mean_step_time_s:
        return None, None
    achieved = flops_per_step / mean_step_time_s / 1e12
    return achieved, (achieved / peak.tflops if peak.tflops else None)
