"""A stand-in for the pynvml module with the calls NvmlSource uses, injected by the tests.

Like many real GPUs, it raises NVMLError(NOT_SUPPORTED) for the fields it is told to lack.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2
NVML_PCIE_UTIL_TX_BYTES, NVML_PCIE_UTIL_RX_BYTES = 0, 1


class NVMLError(Exception):
    pass


class FakeNvml:
    NVMLError = NVMLError
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVML_CLOCK_SM, NVML_CLOCK_MEM = NVML_CLOCK_SM, NVML_CLOCK_MEM
    NVML_PCIE_UTIL_TX_BYTES, NVML_PCIE_UTIL_RX_BYTES = (
        NVML_PCIE_UTIL_TX_BYTES,
        NVML_PCIE_UTIL_RX_BYTES,
    )

    def __init__(self, gpus=1, unsupported=(), fail_init=False):
        self.gpus, self.unsupported, self.fail_init = gpus, set(unsupported), fail_init
        self.calls: Counter[str] = Counter()
        self.energy_mj = [1_000_000.0] * gpus
        self.throttle = 0x4 | 0x20  # software power cap + software thermal slowdown
        self.shutdown = False
        self.processes: dict[int, list[tuple[int, int | None]]] = {}  # gpu -> (pid, memory)

    def _call(self, name, handle):
        self.calls[name] += 1
        if name in self.unsupported:
            raise NVMLError("Not Supported")
        return handle

    def nvmlInit(self):
        if self.fail_init:
            raise NVMLError("Driver Not Loaded")

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlDeviceGetCount(self):
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetUtilizationRates(self, h):
        self._call("util", h)
        return SimpleNamespace(gpu=87, memory=41)

    def nvmlDeviceGetMemoryInfo(self, h):
        self._call("memory", h)
        return SimpleNamespace(used=30 * 2**30, total=80 * 2**30)

    def nvmlDeviceGetTemperature(self, h, sensor):
        self._call("temp", h)
        return 71

    def nvmlDeviceGetPowerUsage(self, h):
        self._call("power", h)
        return 312_500  # milliwatts

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self._call("energy", h)
        self.energy_mj[h] += 50_000.0  # 50 J between reads
        return self.energy_mj[h]

    def nvmlDeviceGetClockInfo(self, h, clock):
        self._call("clock", h)
        return 1980 if clock == NVML_CLOCK_SM else 2619

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        self._call("reasons", h)
        return self.throttle

    def nvmlDeviceGetPcieThroughput(self, h, counter):
        self._call("pcie", h)
        return 2048  # KB/s

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        self._call("processes", h)
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=memory)
            for pid, memory in self.processes.get(h, [])
        ]
