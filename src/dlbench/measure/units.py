"""How measured quantities read: numbers, bytes (KiB to TiB, per second for rates), telemetry
values by their metric's unit. Shared by the terminal and the HTML report."""

from __future__ import annotations

from typing import Any


def fmt(value: float | None, digits: int = 1) -> str | None:
    return None if value is None else f"{value:,.{digits}f}"


def fmt_metric(metric: str, value: float | None) -> str | None:
    """A telemetry value as a person reads it: bytes in KiB/MiB/GiB (per second for rates)."""
    if value is None:
        return None
    if metric.endswith("_bytes_per_s"):
        return f"{fmt_bytes(int(value))}/s"
    if metric.endswith("_bytes"):
        return fmt_bytes(int(value))
    return fmt(value, 2)


def fmt_bytes(value: int | None) -> str | None:
    if value is None:
        return None
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:,.1f} {unit}"
        size /= 1024
    return None


def ms_with_ci(found: Any) -> str | None:
    """A latency (a ``measure.generation.Figure`` in seconds) as "mean (low–high)" in ms."""
    if found is None:
        return None
    shown = f"{found.mean * 1e3:,.2f}"
    if found.ci95:
        shown += f" ({found.ci95[0] * 1e3:,.2f}–{found.ci95[1] * 1e3:,.2f})"
    return shown


def ms_p50_p99(found: Any) -> str | None:
    """A latency's median and 99th percentile as "p50 / p99" in ms."""
    if found is None or found.p50 is None or found.p99 is None:
        return None
    return f"{found.p50 * 1e3:,.1f} / {found.p99 * 1e3:,.1f}"
