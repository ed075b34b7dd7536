"""What the PyTorch engine can name and check without importing torch: the CPU, a precision
the CPU cannot run, and a Linux machine with no GPU driver at all (where ``--device auto`` can
only be the CPU). A run on the CPU is then checked by its launcher in a fraction of a second,
and torch is imported by the run's own process alone."""

from __future__ import annotations

import sys
from pathlib import Path

from dlbench.engines import DeviceInfo
from dlbench.errors import EngineUnavailable
from dlbench.sysinfo import cpu_model

# What a GPU torch could use leaves on Linux: NVIDIA's kernel driver (also inside containers
# given a GPU), AMD's ROCm compute device, WSL2's GPU paravirtualisation.
GPU_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def no_gpu_driver() -> bool:
    """True on a Linux machine without any GPU driver torch could use: ``--device auto`` is
    the CPU there, known without importing torch (2 s)."""
    return sys.platform.startswith("linux") and not any(
        Path(path).exists() for path in GPU_DRIVER_PATHS
    )


def cpu_device() -> DeviceInfo:
    return DeviceInfo("cpu", "cpu", cpu_model(), 0)


def no_tf32(device: DeviceInfo) -> EngineUnavailable:
    return EngineUnavailable(
        f"--precision tf32 needs an NVIDIA GPU of compute capability 8.0 or newer "
        f"(Ampere+); {device.device} ({device.device_name}) has no TF32",
        "use --precision fp32 or amp-bf16",
    )


def checked_cpu(precision: str) -> DeviceInfo:
    """The CPU, for a run at ``precision`` (tf32 refused: it is an NVIDIA GPU's)."""
    device = cpu_device()
    if precision == "tf32":
        raise no_tf32(device)
    return device
