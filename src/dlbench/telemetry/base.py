"""What every telemetry source is: opened once, read at each tick, closed at the end.

A source that cannot work here raises ``SourceUnavailable`` from ``open`` with the reason (no
GPU, no sensors in a container): that is normal, not an error. ``read`` returns only the
fields it could read; a field the hardware does not support is left out, never reported as 0.
"""

from __future__ import annotations

from typing import Protocol


class SourceUnavailable(Exception):
    """This source cannot sample on this machine; the message says why."""


class Source(Protocol):
    name: str

    def open(self) -> None: ...

    def read(self, now: float) -> dict[str, float]: ...

    def close(self) -> None: ...


class Rates:
    """Per-second rates of monotonically increasing counters between two reads."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._last_t: float | None = None

    def update(self, now: float, counters: dict[str, float]) -> dict[str, float]:
        """Rates since the previous call (nothing on the first: there is no interval yet)."""
        rates: dict[str, float] = {}
        if self._last_t is not None and now > self._last_t:
            elapsed = now - self._last_t
            for key, value in counters.items():
                before = self._last.get(key)
                if before is not None and value >= before:  # a reset counter gives no rate
                    rates[key] = (value - before) / elapsed
        self._last, self._last_t = dict(counters), now
        return rates
