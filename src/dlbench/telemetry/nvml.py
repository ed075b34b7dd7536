"""NVIDIA GPUs through NVML (nvidia-ml-py): utilisation, memory, temperature, power, energy,
clocks, throttle reasons, PCIe traffic and the compute processes on each device.

Given the followed process tree's pids (``own_pids``), each GPU also reports how many of its
compute processes are someone else's (``gpuN.other_processes``, ``other_mem_bytes``): another
job training on the same GPU. NVML lists processes by their pid in the host's namespace; in a
container those are not this namespace's pids, so the count is given only while at least one of
the tree's own processes is found in NVML's lists (on any GPU), which proves the two agree.

Every NVML call goes through ``_query``: a field the GPU does not support (NVMLError) is left
out, remembered, and not asked again, so one missing sensor never stops the sampler.
``nvml`` may be injected (tests use a fake module); by default it is ``pynvml``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dlbench.telemetry.base import Rates, SourceUnavailable

# nvmlDeviceGetCurrentClocksEventReasons bits (NVIDIA's nvml.h).
THROTTLE_REASONS: dict[int, str] = {
    0x1: "idle",
    0x2: "application clocks setting",
    0x4: "software power cap",
    0x8: "hardware slowdown",
    0x10: "sync boost",
    0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown",
    0x80: "hardware power brake",
    0x100: "display clock setting",
}
NOT_SUPPORTED = object()


def nvml_indices(cuda_indices: list[int], visible: str | None = None) -> tuple[int, ...]:
    """NVML's indices of CUDA devices ``cuda_indices``: CUDA numbers only the devices in
    CUDA_VISIBLE_DEVICES, NVML all of them. Entries given as UUIDs or MIG names cannot be
    mapped without NVML and are taken as the identity."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    if not visible:
        return tuple(cuda_indices)
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if not all(e.isdigit() for e in entries):
        return tuple(cuda_indices)
    return tuple(int(entries[i]) for i in cuda_indices if i < len(entries))


def decode_throttle(mask: int) -> list[str]:
    """The words for a throttle-reason bitmask; 0 means the clocks are not held back."""
    return [word for bit, word in THROTTLE_REASONS.items() if mask & bit]


class NvmlSource:
    name = "gpu"

    def __init__(
        self, nvml: Any = None, own_pids: Callable[[], frozenset[int]] | None = None
    ) -> None:
        self._nvml = nvml
        self._own_pids = own_pids

    def open(self) -> None:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError as exc:
                raise SourceUnavailable("nvidia-ml-py is not installed") from exc
            self._nvml = pynvml
        nv = self._nvml
        try:
            nv.nvmlInit()
            count = nv.nvmlDeviceGetCount()
        except nv.NVMLError as exc:
            raise SourceUnavailable(f"NVML cannot start ({exc}): no NVIDIA GPU or driver") from exc
        if count == 0:
            raise SourceUnavailable("NVML sees no GPU")
        self._handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self.gpu_count = count
        self._unsupported: set[tuple[int, str]] = set()
        self._energy_start = [
            self._query(i, "energy", nv.nvmlDeviceGetTotalEnergyConsumption) for i in range(count)
        ]
        self._rates = Rates()
        reasons = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
        self._reasons: Callable[..., int] = reasons or nv.nvmlDeviceGetCurrentClocksThrottleReasons

    def _query(self, index: int, field: str, call: Callable[..., Any], *args: Any) -> Any:
        if (index, field) in self._unsupported:
            return NOT_SUPPORTED
        try:
            return call(self._handles[index], *args)
        except self._nvml.NVMLError:
            self._unsupported.add((index, field))
            return NOT_SUPPORTED

    def read(self, now: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for index in range(len(self._handles)):
            out.update(self._read_device(index))
        if self._own_pids is not None:
            out.update(self._others(self._own_pids()))
        return out

    def processes(self, index: int) -> list[tuple[int, int | None]] | None:
        """(pid, GPU memory bytes or None) of each compute process on GPU ``index``; None
        where the driver does not say."""
        found = self._query(index, "processes", self._nvml.nvmlDeviceGetComputeRunningProcesses)
        if found is NOT_SUPPORTED:
            return None
        return [(int(p.pid), _memory(p)) for p in found]

    def _others(self, own: frozenset[int]) -> dict[str, float]:
        listed = {i: self.processes(i) for i in range(len(self._handles))}
        if not any(pid in own for found in listed.values() for pid, _ in found or []):
            return {}  # none of ours listed: a CPU run, or pids from another namespace
        out: dict[str, float] = {}
        for i, found in listed.items():
            if found is None:
                continue
            others = [(pid, mem) for pid, mem in found if pid not in own]
            out[f"gpu{i}.other_processes"] = float(len(others))
            out[f"gpu{i}.other_mem_bytes"] = float(sum(mem or 0 for _, mem in others))
        return out

    def _read_device(self, i: int) -> dict[str, float]:
        nv, q, p = self._nvml, self._query, f"gpu{i}."
        fields: dict[str, Any] = {}
        util = q(i, "util", nv.nvmlDeviceGetUtilizationRates)
        if util is not NOT_SUPPORTED:
            fields["util_percent"], fields["mem_util_percent"] = util.gpu, util.memory
        memory = q(i, "memory", nv.nvmlDeviceGetMemoryInfo)
        if memory is not NOT_SUPPORTED:
            fields["mem_used_bytes"], fields["mem_total_bytes"] = memory.used, memory.total
        fields["temp_c"] = q(i, "temp", nv.nvmlDeviceGetTemperature, nv.NVML_TEMPERATURE_GPU)
        power_mw = q(i, "power", nv.nvmlDeviceGetPowerUsage)
        fields["power_w"] = NOT_SUPPORTED if power_mw is NOT_SUPPORTED else power_mw / 1000.0
        energy_mj = q(i, "energy", nv.nvmlDeviceGetTotalEnergyConsumption)
        start = self._energy_start[i]
        if energy_mj is not NOT_SUPPORTED and start is not NOT_SUPPORTED:
            fields["energy_j"] = (energy_mj - start) / 1000.0
        fields["sm_clock_mhz"] = q(i, "sm_clock", nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_SM)
        fields["mem_clock_mhz"] = q(i, "mem_clock", nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_MEM)
        fields["throttle_reasons"] = q(i, "reasons", self._reasons)
        for direction, counter in (
            ("tx", "NVML_PCIE_UTIL_TX_BYTES"),
            ("rx", "NVML_PCIE_UTIL_RX_BYTES"),
        ):
            kib_s = q(i, f"pcie_{direction}", nv.nvmlDeviceGetPcieThroughput, getattr(nv, counter))
            if kib_s is not NOT_SUPPORTED:
                fields[f"pcie_{direction}_bytes_per_s"] = kib_s * 1024.0
        return {p + k: float(v) for k, v in fields.items() if v is not NOT_SUPPORTED}

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a broken NVML must not fail a run
            pass


def _memory(process: Any) -> int | None:
    """A process's GPU memory; NVML gives None (or a sentinel) where it cannot tell."""
    used = getattr(process, "usedGpuMemory", None)
    if used is None or used >= 2**63 - 1 or used < 0:  # NVML_VALUE_NOT_AVAILABLE
        return None
    return int(used)
