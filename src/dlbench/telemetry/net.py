"""Network traffic in bytes/s: over all interfaces but loopback, per physical NIC, and per
InfiniBand port from its sysfs counters (the traffic of a run over several nodes).

InfiniBand's ``port_rcv_data`` and ``port_xmit_data`` count octets divided by 4 (the
InfiniBand specification's data counters, as the kernel exposes them): times 4 here.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from dlbench.telemetry.base import Rates

SYS_NET = Path("/sys/class/net")
SYS_INFINIBAND = Path("/sys/class/infiniband")
IB_WORD_BYTES = 4
MAX_INTERFACES = 16  # a host with more shows its first 16 physical NICs / IB ports


class NetSource:
    name = "net"

    def __init__(self, net: Path = SYS_NET, infiniband: Path = SYS_INFINIBAND) -> None:
        self._net, self._infiniband = net, infiniband

    def open(self) -> None:
        self._rates = Rates()
        self._nics = sorted(p.name for p in self._net.glob("*") if (p / "device").exists())
        self._nics = self._nics[:MAX_INTERFACES]
        self._ports = sorted(self._infiniband.glob("*/ports/*/counters"))[:MAX_INTERFACES]

    def read(self, now: float) -> dict[str, float]:
        counters = psutil.net_io_counters(pernic=True) or {}
        totals = {
            "net.recv": float(sum(c.bytes_recv for nic, c in counters.items() if nic != "lo")),
            "net.sent": float(sum(c.bytes_sent for nic, c in counters.items() if nic != "lo")),
        }
        for nic in self._nics:
            if nic in counters:
                totals[f"net.{nic}.recv"] = float(counters[nic].bytes_recv)
                totals[f"net.{nic}.sent"] = float(counters[nic].bytes_sent)
        for port in self._ports:
            name = f"ib.{port.parent.parent.parent.name}.{port.parent.name}"
            for key, file in (("recv", "port_rcv_data"), ("sent", "port_xmit_data")):
                words = _counter(port / file)
                if words is not None:
                    totals[f"{name}.{key}"] = float(words * IB_WORD_BYTES)
        rates = self._rates.update(now, totals)
        return {f"{key}_bytes_per_s": value for key, value in rates.items()}

    def close(self) -> None:
        pass


def _counter(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
