"""Per-run and per-phase summaries of telemetry samples. Pure: numpy only.

Means are integrated over time (trapezoids), not averaged per sample, so an uneven sampling
grid does not bias them. Energy comes from a device's energy counter where it has one (NVML,
RAPL): the counter's rise from the last reading before the phase to the last one in it;
otherwise from integrating its power over the phase.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from dlbench.records import TelemetrySample
from dlbench.telemetry.nvml import decode_throttle

WHOLE_RUN = "run"
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # type: ignore[attr-defined]


def summarise(
    samples: Iterable[TelemetrySample],
    images_by_phase: dict[str, int] | None = None,
) -> dict[str, Any]:
    """``{"phases": {phase: {...}}, "run": {...}}`` with, per metric, mean, max and p95."""
    series = _series(samples)
    if not series:
        return {"phases": {}, WHOLE_RUN: None}
    order = _phase_order(series)
    images_by_phase = images_by_phase or {}
    phases = {phase: _summary(series, phase, images_by_phase.get(phase)) for phase in order}
    return {"phases": phases, WHOLE_RUN: _summary(series, None, None)}


def _series(samples: Iterable[TelemetrySample]) -> dict[str, tuple[np.ndarray, ...]]:
    grouped: dict[str, list[TelemetrySample]] = defaultdict(list)
    for sample in samples:
        grouped[sample.metric].append(sample)
    series: dict[str, tuple[np.ndarray, ...]] = {}
    for metric, rows in grouped.items():
        rows.sort(key=lambda s: s.t_s)
        series[metric] = (
            np.array([s.t_s for s in rows]),
            np.array([s.value for s in rows]),
            np.array([s.phase for s in rows]),
        )
    return series


def _phase_order(series: dict[str, tuple[np.ndarray, ...]]) -> list[str]:
    first: dict[str, float] = {}
    for t, _, phase in series.values():
        for name in np.unique(phase):
            first[str(name)] = min(first.get(str(name), np.inf), float(t[phase == name].min()))
    return sorted(first, key=first.__getitem__)


def _summary(
    series: dict[str, tuple[np.ndarray, ...]], phase: str | None, images: int | None
) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    start, end = np.inf, -np.inf
    for metric, (t, v, ph) in series.items():
        mask = np.ones(len(t), bool) if phase is None else ph == phase
        if not mask.any():
            continue
        tt, vv = t[mask], v[mask]
        start, end = min(start, float(tt[0])), max(end, float(tt[-1]))
        if metric.endswith(".energy_j"):
            continue
        if metric.endswith(".throttle_reasons"):
            mask_or = int(np.bitwise_or.reduce(vv.astype(np.int64)))
            metrics[metric] = {"reasons": decode_throttle(mask_or), "mask": mask_or}
            continue
        metrics[metric] = {
            "mean": time_mean(tt, vv),
            "min": float(vv.min()),
            "max": float(vv.max()),
            "p95": float(np.percentile(vv, 95)),
            "samples": int(vv.size),
        }
    energy = _energy(series, phase)
    total = sum(energy.values()) if energy else None
    return {
        "duration_s": end - start if end >= start else 0.0,
        "metrics": metrics,
        "energy_j": energy,
        "total_energy_j": total,
        "images_per_joule": images / total if images and total else None,
    }


def time_mean(t: np.ndarray, v: np.ndarray) -> float:
    """The time-weighted mean of a sampled signal (the value itself for one sample)."""
    if v.size == 1 or t[-1] <= t[0]:
        return float(v.mean())
    return float(_trapezoid(v, t) / (t[-1] - t[0]))


def _energy(series: dict[str, tuple[np.ndarray, ...]], phase: str | None) -> dict[str, float]:
    """Joules per device in ``phase`` (None: the whole run)."""
    energy: dict[str, float] = {}
    devices = {m.rsplit(".", 1)[0] for m in series if m.endswith((".energy_j", ".power_w"))}
    for device in sorted(devices):
        counter = series.get(f"{device}.energy_j")
        power = series.get(f"{device}.power_w")
        if counter is not None:
            t, v, ph = counter
            mask = np.ones(len(t), bool) if phase is None else ph == phase
            if mask.any():
                last = int(np.flatnonzero(mask)[-1])
                first = int(np.flatnonzero(mask)[0])
                before = v[first - 1] if first > 0 and phase is not None else v[first]
                energy[device] = float(v[last] - before)
        elif power is not None:
            t, v, ph = power
            mask = np.ones(len(t), bool) if phase is None else ph == phase
            if mask.sum() >= 2:
                energy[device] = float(_trapezoid(v[mask], t[mask]))
    return energy
