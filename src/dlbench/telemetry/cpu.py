"""CPU utilisation (total and per core), hypervisor steal, load, frequency and temperature.

Utilisation comes from the kernel's cumulative CPU times (``/proc/stat`` through psutil) between
two reads, as mpstat computes it: busy = user + nice + system + irq + softirq (guest time is
inside user) over busy + idle + iowait + steal. Steal, the time a virtual CPU was ready to run
while the hypervisor ran something else, is reported apart (``cpu.steal_percent``), not as busy.
The counters tick 100 times a second, so a window shorter than ``MIN_WINDOW_S`` is not reported:
read twice back to back they give a fake 0 (or 100). The first reading after ``open`` is
therefore started by ``open``, and a read too soon after it leaves the window to grow.

``cpu.busy_cores`` is the busy time of the CPUs the followed process may run on (its affinity),
in cores: the machine side of the interference accounting (``telemetry/interference.py``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

THERMAL_ZONES = Path("/sys/class/thermal")
CPU_SENSOR_NAMES = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "acpitz")
MIN_WINDOW_S = 0.05  # 5 ticks of the kernel's 100 Hz CPU accounting


@dataclass(frozen=True)
class CoreTimes:
    """One CPU's cumulative seconds, split the way utilisation needs them."""

    busy: float
    idle: float  # idle and iowait
    steal: float

    @property
    def total(self) -> float:
        return self.busy + self.idle + self.steal


def core_times(times: Any) -> CoreTimes:
    """A psutil ``scputimes`` as busy / idle / steal seconds (fields a platform lacks are 0)."""

    def get(name: str) -> float:
        return float(getattr(times, name, 0.0))

    busy = get("user") + get("nice") + get("system") + get("irq") + get("softirq")
    return CoreTimes(busy=busy, idle=get("idle") + get("iowait"), steal=get("steal"))


def steal_reported() -> bool:
    """Whether this kernel reports steal time at all (Linux does; macOS and Windows do not)."""
    return hasattr(psutil.cpu_times(), "steal")


def affinity(pid: int) -> list[int]:
    """The CPUs ``pid`` may run on (all of them where the platform has no affinity)."""
    try:
        return sorted(psutil.Process(pid).cpu_affinity() or [])
    except (AttributeError, psutil.Error):
        return list(range(psutil.cpu_count() or 1))


def shown(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and cpu == runs[-1][-1] + 1:
            runs[-1].append(cpu)
        else:
            runs.append([cpu])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def cgroup_cpu_limit(pid: int, root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPUs a cgroup v2 quota (cpu.max) allows ``pid``'s group, along its path; None
    without a quota."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    if path is None:
        return None
    limits = []
    folder = root / path.lstrip("/")
    while True:
        try:
            quota, period = (folder / "cpu.max").read_text().split()
            if quota != "max":
                limits.append(int(quota) / int(period))
        except (OSError, ValueError):
            pass
        if folder == root or root not in folder.parents:
            break
        folder = folder.parent
    return min(limits) if limits else None


def usable_cores(pid: int) -> float:
    """How many CPUs ``pid`` can use at once: its affinity, or its cgroup quota if smaller."""
    cores = float(len(affinity(pid)))
    limit = cgroup_cpu_limit(pid)
    return min(cores, limit) if limit else cores


@dataclass(frozen=True)
class Window:
    """CPU time spent between two snapshots of the per-core counters."""

    per_core_util: list[float]  # percent busy, per CPU
    busy_cores: float  # busy time of the chosen CPUs, in cores
    steal_share: float  # steal / total time of the chosen CPUs, 0..1
    seconds: float  # the window's length by the counters themselves


def window(before: list[Any], after: list[Any], cores: list[int]) -> Window | None:
    """Utilisation between two ``psutil.cpu_times(percpu=True)`` lists (None: the CPUs changed
    or no time passed on the counters)."""
    if len(before) != len(after):
        return None  # a CPU went on or offline: start again
    deltas = []
    for old, new in zip(before, after, strict=True):
        a, b = core_times(old), core_times(new)
        # Counters may step back by a tick on some kernels: never a negative share.
        deltas.append(
            CoreTimes(
                max(0.0, b.busy - a.busy), max(0.0, b.idle - a.idle), max(0.0, b.steal - a.steal)
            )
        )
    chosen = [deltas[c] for c in cores if c < len(deltas)] or deltas
    total = sum(d.total for d in chosen)
    if total <= 0:
        return None
    return Window(
        per_core_util=[100.0 * d.busy / d.total if d.total > 0 else 0.0 for d in deltas],
        busy_cores=len(chosen) * sum(d.busy for d in chosen) / total,
        steal_share=sum(d.steal for d in chosen) / total,
        seconds=total / len(chosen),
    )


class CpuSource:
    name = "cpu"

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()

    def open(self) -> None:
        self._cores = affinity(self.pid)
        self._steal = steal_reported()
        # The counters' starting point: the first read that is MIN_WINDOW_S later is real.
        self._last: list[Any] = psutil.cpu_times(percpu=True)
        self._last_t: float | None = time.monotonic()
        self._temperature = find_cpu_temperature()
        self.notes = (
            []
            if self._temperature
            else [
                "no CPU temperature sensor (psutil finds none, no CPU zone in /sys/class/thermal)"
            ]
        )

    def read(self, now: float) -> dict[str, float]:
        out = self._utilisation(now)
        freq = psutil.cpu_freq()
        if freq and freq.current:
            out["cpu.freq_mhz"] = freq.current
        if hasattr(os, "getloadavg"):
            out["cpu.load1"] = os.getloadavg()[0]
        if self._temperature is not None:
            celsius = self._temperature()
            if celsius is not None:
                out["cpu.temp_c"] = celsius
        return out

    def _utilisation(self, now: float) -> dict[str, float]:
        if self._last_t is None or now - self._last_t < MIN_WINDOW_S:
            return {}  # keep the window open until it can be resolved
        current = psutil.cpu_times(percpu=True)
        found = window(self._last, current, self._cores)
        self._last, self._last_t = current, now
        if found is None:
            return {}
        out = {f"cpu.core{i}.util_percent": value for i, value in enumerate(found.per_core_util)}
        out["cpu.util_percent"] = sum(found.per_core_util) / len(found.per_core_util)
        out["cpu.busy_cores"] = found.busy_cores
        if self._steal:
            out["cpu.steal_percent"] = 100.0 * found.steal_share
        return out

    def close(self) -> None:
        pass


def find_cpu_temperature() -> TemperatureReader | None:
    """A reader of the CPU temperature: psutil's sensors, else /sys/class/thermal, else None."""
    sensors = getattr(psutil, "sensors_temperatures", None)
    found = sensors() if sensors else {}
    for name in CPU_SENSOR_NAMES:
        if found.get(name):
            return TemperatureReader(sensor=name)
    zones = sorted(THERMAL_ZONES.glob("thermal_zone*/temp")) if THERMAL_ZONES.exists() else []
    for zone in zones:
        kind = (zone.parent / "type").read_text().strip() if (zone.parent / "type").exists() else ""
        if any(word in kind.lower() for word in ("cpu", "x86_pkg", "soc", "acpitz")):
            return TemperatureReader(path=zone)
    return None


class TemperatureReader:
    def __init__(self, sensor: str | None = None, path: Path | None = None) -> None:
        self.sensor, self.path = sensor, path

    def __call__(self) -> float | None:
        if self.sensor:
            readings = psutil.sensors_temperatures().get(self.sensor) or []
            values = [r.current for r in readings if r.current]
            return max(values) if values else None
        try:
            return int(self.path.read_text()) / 1000.0 if self.path else None
        except (OSError, ValueError):
            return None
