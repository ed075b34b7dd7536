"""Network traffic over all interfaces but loopback, in bytes/s."""

from __future__ import annotations

import psutil

from dlbench.telemetry.base import Rates


class NetSource:
    name = "net"

    def open(self) -> None:
        self._rates = Rates()

    def read(self, now: float) -> dict[str, float]:
        counters = psutil.net_io_counters(pernic=True) or {}
        recv = sum(c.bytes_recv for nic, c in counters.items() if nic != "lo")
        sent = sum(c.bytes_sent for nic, c in counters.items() if nic != "lo")
        rates = self._rates.update(now, {"recv": float(recv), "sent": float(sent)})
        if not rates:
            return {}
        return {"net.recv_bytes_per_s": rates["recv"], "net.sent_bytes_per_s": rates["sent"]}

    def close(self) -> None:
        pass
