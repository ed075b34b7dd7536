"""Storing what a run measured: its telemetry summed up per phase, its measurement judged, the
result written, or kept whole in a JSON file for ``dlbench import`` when the store cannot take
it (a full disk)."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from dlbench.config import RunSpec
from dlbench.errors import DlbenchError, StoreError
from dlbench.measure.quality import judge, on_cpus
from dlbench.records import Quality, RunResult
from dlbench.runner.result import Measured
from dlbench.store import unsaved
from dlbench.store.database import Store, utc_now
from dlbench.telemetry.cpu import shown
from dlbench.telemetry.sampler import NullSampler, Sampler
from dlbench.telemetry.summary import summarise


def store_result(
    spec: RunSpec, store: Store, result: RunResult, measured: Measured, started: float
) -> RunResult:
    """Rank 0's result with its telemetry summary, quality verdict and wall time, stored; kept
    in a file for ``dlbench import`` where the store cannot take it."""
    telemetry = telemetry_summary(store, result.run_id, measured.sampler, result.images_trained)
    result = dataclasses.replace(
        result,
        wall_time_s=time.monotonic() - started,
        telemetry=telemetry,
        quality=judged(spec, measured, telemetry),
    )
    try:
        store.finish_run(result)
    except StoreError as exc:
        return _save_unstored(spec, store, result, measured, exc)
    return result


def judged(spec: RunSpec, measured: Measured, telemetry: dict[str, Any] | None) -> Quality | None:
    """The run's quality verdict, saying on which CPUs it ran when --cpus pinned it."""
    quality = judge(measured.interference, phase_metrics(telemetry, "train"))
    if spec.cpus is None or not hasattr(os, "sched_getaffinity"):
        return quality
    mine = sorted(os.sched_getaffinity(0))
    return on_cpus(quality, shown(mine), len(mine), os.cpu_count() or 0, spec.cpus)


def _save_unstored(
    spec: RunSpec, store: Store, result: RunResult, measured: Measured, exc: StoreError
) -> RunResult:
    """The store cannot take the result (a full disk): keep it whole in a JSON file for
    ``dlbench import``."""
    known: dict[str, Any] = {
        "kind": "train",
        "created_at": utc_now(),
        "config": spec.model_dump(mode="json"),
        "tags": spec.tags,
        **spec.columns(),
        "hardware": measured.hardware or None,
    }
    if measured.device is not None:
        known.update(device=measured.device.device, device_name=measured.device.device_name)
    path = unsaved.keep(store, result, measured.sampler.unsaved, known, exc)
    return dataclasses.replace(result, unsaved_path=str(path) if path else None)


def phase_metrics(telemetry: dict[str, Any] | None, phase: str) -> dict[str, Any]:
    """One phase's per-metric summary from a run's telemetry summary ({} without it)."""
    phases = (telemetry or {}).get("phases") or {}
    return (phases.get(phase) or {}).get("metrics") or {}


def telemetry_summary(
    store: Store, run_id: str, sampler: Sampler | NullSampler, images_trained: int
) -> dict[str, Any]:
    """The sampler's report and the per-phase summary of what it stored."""
    report = sampler.report
    if isinstance(sampler, NullSampler):
        return {"enabled": False, "reason": "telemetry was off for this run (--no-telemetry)"}
    try:
        stored = store.get_samples(run_id) + sampler.unsaved  # unsaved: the store refused them
        summary = summarise(stored, {"train": images_trained})
    except DlbenchError as exc:
        summary = {"phases": {}, "run": None, "error": exc.one_line()}
    return {"enabled": True, **dataclasses.asdict(report), **summary}
