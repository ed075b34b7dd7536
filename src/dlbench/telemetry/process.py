"""The benchmarked process and all its descendants: CPU, RSS, threads, I/O.

CPU and I/O come from cumulative counters, not per-process percentages, so nothing the tree did
is missed: a new child's whole life counts from its first sight (psutil's ``cpu_percent`` gives
0 on a process's first read, which lost the first second of every child), and a child that
started and ended between two reads is counted too, because the kernel adds a reaped child's
CPU time and I/O to its parent's counters (``cutime``/``cstime`` in /proc/PID/stat, the
parent's /proc/PID/io). So the tree's work between two reads is: the rise of every process
seen both times, plus the whole count of each new one, minus the last count of each one that
ended (its totals moved into an ancestor's). A process that leaves the tree alive (re-parented
to init when its parent exits) keeps what was counted, and its later work is not the run's.

CPU is ``proc.cpu_percent`` (100 = one core, summed over the tree). I/O is reported twice:
``proc.read_chars_per_s``/``write_chars_per_s`` are every byte passed to read/write calls
(pipes, sockets, the page cache included); ``proc.disk_read_bytes_per_s``/
``disk_write_bytes_per_s`` are the bytes the tree made the block layer fetch or write.

Descendants are looked up again at each read, so input workers started mid-run are followed.
Where the kernel has /proc/PID/task/TID/children they are read there at every tick, at a cost
in proportion to the tree; otherwise psutil's ``children(recursive=True)``, which reads every
process on the machine (0.8 ms with 64 processes here, far more on a busy node), runs at most
once a second.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from dlbench.telemetry.base import SourceUnavailable
from dlbench.telemetry.cpu import MIN_WINDOW_S

PROC = Path("/proc")
FALLBACK_RESCAN_S = 1.0
# Cumulative counters per process, children that ended included: CPU seconds, then I/O bytes.
COUNTERS = ("cpu_s", "read_chars", "write_chars", "disk_read_bytes", "disk_write_bytes")


@dataclass
class Seen:
    """A process of the tree at its last reading."""

    create_time: float
    counters: tuple[float, ...]


@dataclass
class TreeReading:
    """One read of the tree: how much each counter rose since the previous read, and gauges."""

    seconds: float | None  # since the previous read; None on the first
    rises: dict[str, float] = field(default_factory=dict)  # counter -> rise
    rss_bytes: float = 0.0
    threads: float = 0.0
    processes: int = 0
    pids: frozenset[int] = frozenset()


class TreeAccount:
    """Cumulative CPU and I/O of a process and all its descendants, however short-lived."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._root = psutil.Process(pid)
        except psutil.Error as exc:
            raise SourceUnavailable(f"process {pid} is gone") from exc
        self._known: dict[int, psutil.Process] = {pid: self._root}
        self._seen: dict[int, Seen] = {}
        self._last_t: float | None = None
        self._fast = any((PROC / str(pid) / "task").glob("*/children"))
        self._fallback_pids: list[int] = []
        self._fallback_at = -FALLBACK_RESCAN_S

    def _descendants(self) -> list[int]:
        if self._fast:
            return proc_descendants(self.pid)
        now = time.monotonic()
        if now - self._fallback_at >= FALLBACK_RESCAN_S:
            self._fallback_at = now
            try:
                self._fallback_pids = [p.pid for p in self._root.children(recursive=True)]
            except psutil.Error:
                self._fallback_pids = []
        return self._fallback_pids

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._known.get(pid)
        if proc is None:
            try:
                proc = self._known[pid] = psutil.Process(pid)
            except psutil.Error:
                return None
        return proc

    def read(self, now: float) -> TreeReading:
        """Read every process of the tree now; the rises since the previous read."""
        seen: dict[int, Seen] = {}
        rss = threads = 0.0
        for pid in [self.pid, *self._descendants()]:
            proc = self._process(pid)
            if proc is None:
                continue
            try:
                with proc.oneshot():
                    counters = _counters(proc)
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    created = proc.create_time()
            except psutil.Error:
                # Ended between listing and reading, or a zombie not yet reaped: hold its last
                # count, which moves to its parent's when it is reaped.
                if pid in self._seen and _alive(pid, self._seen[pid].create_time):
                    seen[pid] = self._seen[pid]
                continue
            seen[pid] = Seen(created, counters)
        reading = TreeReading(
            seconds=None if self._last_t is None else now - self._last_t,
            rss_bytes=rss,
            threads=threads,
            processes=len(seen),
            pids=frozenset(seen),
        )
        if self._last_t is not None:
            reading.rises = self._rises(seen)
        self._seen, self._last_t = seen, now
        self._known = {pid: p for pid, p in self._known.items() if pid in seen or pid == self.pid}
        return reading

    def _rises(self, seen: dict[int, Seen]) -> dict[str, float]:
        rises = [0.0] * len(COUNTERS)
        for pid, now_seen in seen.items():
            before = self._seen.get(pid)
            if before is not None and before.create_time != now_seen.create_time:
                before = None  # the pid was reused by a new process
            for i, value in enumerate(now_seen.counters):
                rises[i] += value - (before.counters[i] if before else 0.0)
        for pid, gone in self._seen.items():
            if pid in seen or _alive(pid, gone.create_time):
                continue  # still in the tree, or left it alive: what it did stays counted
            for i, value in enumerate(gone.counters):
                rises[i] -= value  # reaped: its totals are now inside an ancestor's
        return {name: max(0.0, rise) for name, rise in zip(COUNTERS, rises, strict=True)}


def _counters(proc: psutil.Process) -> tuple[float, ...]:
    cpu = proc.cpu_times()
    cpu_s = cpu.user + cpu.system + getattr(cpu, "children_user", 0.0)
    cpu_s += getattr(cpu, "children_system", 0.0)
    io = proc.io_counters() if hasattr(proc, "io_counters") else None
    if io is None:
        return (cpu_s, 0.0, 0.0, 0.0, 0.0)
    return (
        cpu_s,
        float(getattr(io, "read_chars", 0)),
        float(getattr(io, "write_chars", 0)),
        float(io.read_bytes),
        float(io.write_bytes),
    )


def _alive(pid: int, create_time: float) -> bool:
    """The same process (not a reused pid) still exists."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == create_time and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class ProcessTreeSource:
    name = "process"

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()
        self._pids: frozenset[int] = frozenset()

    def open(self) -> None:
        self._account = TreeAccount(self.pid)
        self._account.read(time.monotonic())  # the counters' starting point
        self._window: dict[str, float] = {}
        self._window_s = 0.0

    def pids(self) -> frozenset[int]:
        """The tree's processes at the last read (for telling its GPU processes apart)."""
        return self._pids

    def read(self, now: float) -> dict[str, float]:
        reading = self._account.read(now)
        self._pids = reading.pids
        if not reading.processes:
            return {}
        out = {
            "proc.rss_bytes": reading.rss_bytes,
            "proc.threads": reading.threads,
            "proc.count": float(reading.processes),
        }
        if reading.seconds is None:
            return out
        for name, rise in reading.rises.items():
            self._window[name] = self._window.get(name, 0.0) + rise
        self._window_s += reading.seconds
        if self._window_s < MIN_WINDOW_S:
            return out  # too short to resolve the CPU counters' 10 ms ticks: keep adding
        rates = {name: rise / self._window_s for name, rise in self._window.items()}
        self._window, self._window_s = {}, 0.0
        out["proc.cpu_percent"] = 100.0 * rates["cpu_s"]
        out["proc.read_chars_per_s"] = rates["read_chars"]
        out["proc.write_chars_per_s"] = rates["write_chars"]
        out["proc.disk_read_bytes_per_s"] = rates["disk_read_bytes"]
        out["proc.disk_write_bytes_per_s"] = rates["disk_write_bytes"]
        return out

    def close(self) -> None:
        pass


def proc_descendants(pid: int) -> list[int]:
    """Every descendant of ``pid``, from the kernel's per-task children lists."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for children_file in (PROC / str(parent) / "task").glob("*/children"):
            try:
                kids = [int(c) for c in children_file.read_text().split()]
            except (OSError, ValueError):
                continue  # the task ended while we looked
            found.extend(kids)
            pending.extend(kids)
    return found
