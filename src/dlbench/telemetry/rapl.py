"""CPU package energy and power from RAPL counters (/sys/class/powercap), where readable.

``energy_uj`` counts microjoules and wraps at ``max_energy_range_uj``; the source accumulates
across wraps and reports joules since sampling began and the mean power between reads.
"""

from __future__ import annotations

from pathlib import Path

from dlbench.telemetry.base import SourceUnavailable

POWERCAP = Path("/sys/class/powercap")


class RaplSource:
    name = "rapl"

    def __init__(self, root: Path = POWERCAP) -> None:
        self.root = root

    def open(self) -> None:
        zones = sorted(self.root.glob("intel-rapl:*")) if self.root.exists() else []
        # Package domains are the top-level zones (intel-rapl:0), not sub-zones (intel-rapl:0:0).
        self._zones = [z for z in zones if z.name.count(":") == 1 and (z / "energy_uj").exists()]
        if not self._zones:
            raise SourceUnavailable(f"no RAPL energy counters under {self.root}")
        try:
            self._last = [self._counter(z) for z in self._zones]
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"RAPL counters are not readable ({exc})") from exc
        self._range = [_read_int(z / "max_energy_range_uj", default=2**32) for z in self._zones]
        self._total_j = [0.0] * len(self._zones)
        self._last_t: float | None = None

    @staticmethod
    def _counter(zone: Path) -> int:
        return int((zone / "energy_uj").read_text())

    def read(self, now: float) -> dict[str, float]:
        out: dict[str, float] = {}
        elapsed = now - self._last_t if self._last_t is not None else None
        for i, zone in enumerate(self._zones):
            value = self._counter(zone)
            delta = value - self._last[i]
            if delta < 0:  # the counter wrapped
                delta += self._range[i]
            self._last[i] = value
            joules = delta / 1e6
            self._total_j[i] += joules
            out[f"cpu.package{i}.energy_j"] = self._total_j[i]
            if elapsed:
                out[f"cpu.package{i}.power_w"] = joules / elapsed
        self._last_t = now
        return out

    def close(self) -> None:
        pass


def _read_int(path: Path, default: int) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return default
