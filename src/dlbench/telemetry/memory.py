"""Memory and swap: used, available, percent, and swap traffic (the sign of memory pressure)."""

from __future__ import annotations

import psutil

from dlbench.telemetry.base import Rates


class MemorySource:
    name = "memory"

    def open(self) -> None:
        self._rates = Rates()

    def read(self, now: float) -> dict[str, float]:
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        out = {
            "mem.used_bytes": float(memory.total - memory.available),
            "mem.available_bytes": float(memory.available),
            "mem.percent": memory.percent,
            "swap.used_bytes": float(swap.used),
        }
        rates = self._rates.update(now, {"in": float(swap.sin), "out": float(swap.sout)})
        if "in" in rates:
            out["swap.in_bytes_per_s"], out["swap.out_bytes_per_s"] = rates["in"], rates["out"]
        return out

    def close(self) -> None:
        pass
