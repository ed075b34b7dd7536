"""What the PyTorch engine can name and check without importing torch: the CPU, and a
precision the CPU cannot run. A run on the CPU is then checked by its launcher in a fraction of
a second, and torch is imported by the run's own process alone."""

from __future__ import annotations

from dlbench.engines import DeviceInfo
from dlbench.errors import EngineUnavailable
from dlbench.sysinfo import cpu_model


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
