"""Interference accounting: how much of the machine other work took while a run was measured.

Over a window (a run's timed phase, a monitored command), from counters read at its two ends:

- ``foreign_cpu_cores``: the busy time of the CPUs the run may use (its affinity) minus the CPU
  time of the run's own process tree (children that ended included), per second of the window;
- ``steal_percent``: hypervisor steal on those CPUs (None where the kernel does not report it);
- ``load_per_core``: the 1-minute load average at the end over the usable cores;
- other compute processes on the run's GPUs (NVML), with their memory.

Reading counters at the two ends, rather than averaging samples, makes the CPU figures exact
up to the counters' 10 ms ticks, whose effect (``resolution_cores``) is reported with them; and
it works with telemetry off. ``survey`` samples the machine for a second before a run starts,
naming the processes that keep it busy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from dlbench.records import GpuProcess, Interference
from dlbench.telemetry.base import SourceUnavailable
from dlbench.telemetry.cpu import affinity, steal_reported, usable_cores, window
from dlbench.telemetry.process import TreeAccount

CLOCK_TICK_S = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)
NAMESPACE_NOTE = (
    "NVML lists none of this run's processes: its process ids are another namespace's (a "
    "container?), so other processes on the GPU cannot be told from the run's own"
)


def _open_nvml(nvml: Any) -> Any:
    """An open NvmlSource, or None where NVML cannot work here."""
    from dlbench.telemetry.nvml import NvmlSource

    source = NvmlSource(nvml=nvml)
    try:
        source.open()
    except SourceUnavailable:
        return None
    return source


def _name(pid: int) -> str | None:
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None


def _parent(pid: int) -> int:
    try:
        return psutil.Process(pid).ppid()
    except psutil.Error:
        return pid


def gpu_processes(
    source: Any, gpus: Iterable[int], own: frozenset[int]
) -> tuple[dict[int, list[GpuProcess]], set[int], str | None]:
    """Per GPU, the compute processes not in ``own``; the GPUs where one of ``own`` computes;
    and, where the driver does not list processes, why."""
    others: dict[int, list[GpuProcess]] = {}
    used: set[int] = set()
    for gpu in gpus:
        if gpu >= source.gpu_count:
            continue
        listed = source.processes(gpu)
        if listed is None:
            return {}, set(), f"the driver does not list GPU {gpu}'s processes"
        others[gpu] = []
        for pid, memory in listed:
            if pid in own:
                used.add(gpu)
            else:
                others[gpu].append(GpuProcess(gpu, pid, _name(pid), memory))
    return others, used, None


@dataclass
class _Ends:
    at: float
    cpu_times: list[Any]


class InterferenceMeter:
    """Counts what other work took between ``start`` and ``stop``.

    ``pid`` is the run's process tree; ``gpus`` its GPUs as NVML indices (empty on the CPU;
    None: the GPUs the tree turns out to compute on, for a monitored command); ``nvml`` may be
    injected (tests use a fake module)."""

    def __init__(self, pid: int, gpus: tuple[int, ...] | None = (), nvml: Any = None) -> None:
        self.pid, self.gpus, self._nvml = pid, gpus, nvml
        self._start: _Ends | None = None

    def start(self) -> InterferenceMeter:
        self._cores = affinity(self.pid)
        self._usable = usable_cores(self.pid)
        self._tree = TreeAccount(self.pid)
        self._gpu_source = _open_nvml(self._nvml) if self.gpus != () else None
        self._others: dict[tuple[int, int], GpuProcess] = {}
        self._used: set[int] = set()
        self._gpu_note: str | None = None
        # The process that launched the run (dlbench's own) is not someone else's work either,
        # should it hold a CUDA context from checking the device.
        self._ours = frozenset({self.pid, _parent(self.pid)})
        now = time.monotonic()
        self._check_gpus(self._tree.read(now).pids | self._ours)
        self._start = _Ends(now, psutil.cpu_times(percpu=True))
        return self

    def _check_gpus(self, own: frozenset[int]) -> None:
        if self._gpu_source is None or self._gpu_note:
            return
        indices = range(self._gpu_source.gpu_count) if self.gpus is None else self.gpus
        others, used, note = gpu_processes(self._gpu_source, indices, own)
        self._gpu_note = note
        self._used |= used
        for found in others.values():
            self._others.update({(p.gpu, p.pid): p for p in found})

    def stop(self) -> Interference | None:
        """The accounting since ``start`` (None if it never started)."""
        if self._start is None:
            return None
        now = time.monotonic()
        reading = self._tree.read(now)
        after = psutil.cpu_times(percpu=True)
        self._check_gpus(reading.pids | self._ours)
        if self._gpu_source is not None:
            self._gpu_source.close()
        seconds = now - self._start.at
        found = window(self._start.cpu_times, after, self._cores)
        busy = found.busy_cores if found else 0.0
        own = reading.rises.get("cpu_s", 0.0) / seconds if seconds > 0 else 0.0
        # Each counter is read to the tick at each end: the machine's per CPU, the tree's per
        # process (user and system apart).
        ticks = 2 * len(self._cores) + 4 * max(1, reading.processes)
        gpus, others, note = self._gpu_result()
        return Interference(
            window_s=seconds,
            usable_cores=self._usable,
            busy_cores=busy,
            own_cpu_cores=own,
            foreign_cpu_cores=max(0.0, busy - own),
            resolution_cores=ticks * CLOCK_TICK_S / seconds if seconds > 0 else float("inf"),
            steal_percent=100.0 * found.steal_share if found and steal_reported() else None,
            load_per_core=os.getloadavg()[0] / self._usable if hasattr(os, "getloadavg") else None,
            gpus=gpus,
            other_gpu_processes=others,
            gpu_note=note,
        )

    def _gpu_result(self) -> tuple[tuple[int, ...], tuple[GpuProcess, ...] | None, str | None]:
        """(the run's GPUs, other processes on them, why those are unknown)."""
        gpus = tuple(sorted(self._used)) if self.gpus is None else self.gpus
        if not gpus:
            return (), None, None  # on the CPU (or a command that used no GPU)
        if self._gpu_source is None:
            return gpus, None, "NVML is not available here"
        if self._gpu_note:
            return gpus, None, self._gpu_note
        if not self._used:
            return gpus, None, NAMESPACE_NOTE
        others = tuple(p for (gpu, _), p in sorted(self._others.items()) if gpu in gpus)
        return gpus, others, None


@dataclass(frozen=True)
class ProcessUse:
    """Another process keeping the machine busy, seen by ``survey``."""

    pid: int
    name: str
    cpu_percent: float  # 100 = one core
    gpu_memory_bytes: int | None = None


@dataclass(frozen=True)
class Survey:
    """The machine over about a second, before a run starts."""

    seconds: float
    usable_cores: float
    foreign_cpu_cores: float
    resolution_cores: float
    steal_percent: float | None
    busiest: tuple[ProcessUse, ...]  # other processes, most CPU first
    gpu_processes: tuple[GpuProcess, ...] | None  # on the run's GPUs


def _cpu_by_pid(exclude: frozenset[int]) -> dict[int, tuple[str, float, float]]:
    """pid -> (name, create time, user + system seconds) of every visible process."""
    found = {}
    for proc in psutil.process_iter(["name", "cpu_times", "create_time"]):
        if proc.pid in exclude or proc.info["cpu_times"] is None:
            continue
        times = proc.info["cpu_times"]
        found[proc.pid] = (
            proc.info["name"] or "?",
            proc.info["create_time"] or 0.0,
            times.user + times.system,
        )
    return found


def survey(
    seconds: float = 1.0,
    gpus: tuple[int, ...] = (),
    nvml: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Survey:
    """Sample the machine for ``seconds``: other work's CPU and the busiest other processes.
    This process and its descendants are the run's side, not other work."""
    me = os.getpid()
    cores = affinity(me)
    tree = TreeAccount(me)
    start = time.monotonic()
    tree.read(start)
    before_times = psutil.cpu_times(percpu=True)
    exclude = frozenset({me})
    before = _cpu_by_pid(exclude)
    sleep(seconds)
    now = time.monotonic()
    reading = tree.read(now)
    after = _cpu_by_pid(exclude | reading.pids)
    after_times = psutil.cpu_times(percpu=True)
    elapsed = max(now - start, 1e-6)
    found = window(before_times, after_times, cores)
    busy = found.busy_cores if found else 0.0
    own = reading.rises.get("cpu_s", 0.0) / elapsed
    busiest = []
    for pid, (name, created, cpu_s) in after.items():
        old = before.get(pid)
        used = cpu_s - old[2] if old and old[1] == created else cpu_s if created >= start else 0
        if used > 0:
            busiest.append(ProcessUse(pid, name, 100.0 * used / elapsed))
    busiest.sort(key=lambda p: -p.cpu_percent)
    gpu_found: tuple[GpuProcess, ...] | None = None
    source = _open_nvml(nvml) if gpus else None
    if source is not None:
        others, _, note = gpu_processes(source, gpus, reading.pids | {me})
        gpu_found = None if note else tuple(p for found in others.values() for p in found)
        source.close()
    memory = {p.pid: p.memory_bytes for p in gpu_found or ()}
    busiest = [ProcessUse(p.pid, p.name, p.cpu_percent, memory.get(p.pid)) for p in busiest]
    return Survey(
        seconds=elapsed,
        usable_cores=usable_cores(me),
        foreign_cpu_cores=max(0.0, busy - own),
        resolution_cores=(2 * len(cores) + 4) * CLOCK_TICK_S / elapsed,
        steal_percent=100.0 * found.steal_share if found and steal_reported() else None,
        busiest=tuple(busiest),
        gpu_processes=gpu_found,
    )
