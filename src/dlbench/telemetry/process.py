"""The benchmarked process and all its descendants: CPU %, RSS, threads, I/O bytes/s.

CPU % is summed over the tree, so a process using 4 cores fully reads 400. Descendants are
looked up again as the run goes, so input workers started mid-run are followed. Where the
kernel has /proc/PID/task/TID/children they are read there at every tick, at a cost in
proportion to the tree; otherwise psutil's ``children(recursive=True)``, which reads every
process on the machine (0.8 ms with 64 processes here, far more on a busy node), runs at
most once a second.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from dlbench.telemetry.base import Rates, SourceUnavailable

PROC = Path("/proc")
FALLBACK_RESCAN_S = 1.0


class ProcessTreeSource:
    name = "process"

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()

    def open(self) -> None:
        try:
            self._root = psutil.Process(self.pid)
        except psutil.Error as exc:
            raise SourceUnavailable(f"process {self.pid} is gone") from exc
        self._known: dict[int, psutil.Process] = {}
        self._rates = Rates()
        self._fast = any((PROC / str(self.pid) / "task").glob("*/children"))
        self._fallback_pids: list[int] = []
        self._fallback_at = -FALLBACK_RESCAN_S
        self._tree()

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

    def _tree(self) -> list[psutil.Process]:
        """Root and descendants, reusing Process objects so cpu_percent has an interval."""
        tree = [self._root]
        for pid in self._descendants():
            proc = self._known.get(pid)
            if proc is None:
                try:
                    proc = self._known[pid] = psutil.Process(pid)
                except psutil.Error:
                    continue
            tree.append(proc)
        return tree

    def read(self, now: float) -> dict[str, float]:
        cpu = rss = threads = read_bytes = write_bytes = 0.0
        alive = 0
        for proc in self._tree():
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent()  # first call per process returns 0.0
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    io = proc.io_counters() if hasattr(proc, "io_counters") else None
            except psutil.Error:
                continue  # ended between listing and reading
            alive += 1
            if io is not None:
                read_bytes += io.read_chars if hasattr(io, "read_chars") else io.read_bytes
                write_bytes += io.write_chars if hasattr(io, "write_chars") else io.write_bytes
        if not alive:
            return {}
        out = {
            "proc.cpu_percent": cpu,
            "proc.rss_bytes": rss,
            "proc.threads": threads,
            "proc.count": float(alive),
        }
        rates = self._rates.update(now, {"read": read_bytes, "write": write_bytes})
        if rates:
            out["proc.read_bytes_per_s"], out["proc.write_bytes_per_s"] = (
                rates["read"],
                rates["write"],
            )
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
