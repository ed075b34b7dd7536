"""Disk I/O per whole disk: bytes/s, IOPS and utilisation as iostat's %util.

%util = delta(busy time) / delta(wall time): the share of the interval during which the disk
had at least one request in flight. Partitions, loop and RAM devices are left out.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from dlbench.telemetry.base import Rates, SourceUnavailable

SYS_BLOCK = Path("/sys/block")
VIRTUAL_PREFIXES = ("loop", "ram", "zram", "dm-", "md")


class DiskSource:
    name = "disk"

    def __init__(self, data_disk: str | None = None) -> None:
        self.data_disk = data_disk  # the disk that holds the benchmark's data, if known

    def open(self) -> None:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        self.disks = sorted(d for d in counters if _is_whole_disk(d) or d == self.data_disk)
        if not self.disks:
            raise SourceUnavailable("no disk I/O counters visible")
        self._rates = Rates()

    def read(self, now: float) -> dict[str, float]:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        flat: dict[str, float] = {}
        for disk in self.disks:
            io = counters.get(disk)
            if io is None:
                continue
            flat[f"{disk}.read_bytes"] = io.read_bytes
            flat[f"{disk}.write_bytes"] = io.write_bytes
            flat[f"{disk}.read_count"] = io.read_count
            flat[f"{disk}.write_count"] = io.write_count
            busy = getattr(io, "busy_time", None)  # milliseconds; Linux and FreeBSD only
            if busy is not None:
                flat[f"{disk}.busy_s"] = busy / 1000.0
        out: dict[str, float] = {}
        for key, rate in self._rates.update(now, flat).items():
            disk, _, counter = key.rpartition(".")
            name = {
                "read_bytes": "read_bytes_per_s",
                "write_bytes": "write_bytes_per_s",
                "read_count": "read_iops",
                "write_count": "write_iops",
            }.get(counter)
            if name:
                out[f"disk.{disk}.{name}"] = rate
            elif counter == "busy_s":
                out[f"disk.{disk}.util_percent"] = min(100.0, rate * 100.0)
        return out

    def close(self) -> None:
        pass


def _is_whole_disk(name: str) -> bool:
    if name.startswith(VIRTUAL_PREFIXES):
        return False
    return (SYS_BLOCK / name).exists() if SYS_BLOCK.exists() else True
