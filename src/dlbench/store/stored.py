"""``StoredRun``: a run as the store hands it to readers, typed, built in one place.

Its fields are the ``--json`` summary's (a public format: JSON and CSV keep these names), so
``StoredRun.from_row(row).to_dict() == run_summary(row)``. The figures a reader computes with
are typed attributes; the run's quality and inference are typed records; what stays nested
(hardware, configuration, telemetry summary, model descriptors) is a read-only mapping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dlbench.records import GpuProcess, InferenceStats, Quality
from dlbench.store.summary import run_summary

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    kind: str
    status: str
    workload: str | None = None
    framework: str | None = None
    device: str | None = None
    device_name: str | None = None
    num_gpus: int | None = None
    error: str | None = None
    batch_size: int | None = None
    precision: str | None = None
    data: str | None = None
    dataset: str | None = None
    staged_from: str | None = None
    sweep: str | None = None
    run_key: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    timed_steps: int = 0
    # speed over the timed steps
    mean_step_time_s: float | None = None
    median_step_time_s: float | None = None
    p95_step_time_s: float | None = None
    mean_speed: float | None = None
    median_speed: float | None = None
    p5_speed: float | None = None
    p95_speed: float | None = None
    speed_stderr: float | None = None
    speed_ci95: tuple[float, float] | None = None
    speed_jitter: float | None = None
    mean_data_wait_s: float | None = None
    data_wait_fraction: float | None = None
    # the run as a whole
    throughput_e2e: float | None = None
    images_trained: int | None = None
    train_time_s: float | None = None
    val_time_s: float | None = None
    total_time_s: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    map50: float | None = None
    final_train_loss: float | None = None
    warmup_time_s: float | None = None
    setup_time_s: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None
    phase_reached: str | None = None
    achieved_tflops: float | None = None
    peak_tflops: float | None = None
    peak_source: str | None = None
    mfu: float | None = None
    params: int | None = None
    flops_per_step: float | None = None
    wall_time_s: float | None = None
    exit_code: int | None = None
    quality_verdict: str | None = None
    foreign_cpu_cores: float | None = None
    quality: Quality | None = None
    inference: InferenceStats | None = None
    # nested, read-only
    model: Mapping[str, Any] | None = None
    time_to_accuracy: Mapping[str, Any] | None = None
    feasibility: Mapping[str, Any] | None = None
    staging: Mapping[str, Any] | None = None
    ranks: tuple[Mapping[str, Any], ...] = ()
    descriptors: Mapping[str, Any] | None = None
    stability: Mapping[str, Any] | None = None
    telemetry: Mapping[str, Any] | None = None
    hardware: Mapping[str, Any] | None = None
    config: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredRun:
        """From a row of the ``runs`` table (its JSON columns decoded)."""
        summary = run_summary(dict(row))
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in summary.items() if k in known}
        values["tags"] = MappingProxyType(dict(summary.get("tags") or {}))
        values["config"] = MappingProxyType(dict(summary.get("config") or {}))
        values["ranks"] = tuple(summary.get("ranks") or ())
        if values.get("speed_ci95") is not None:
            low, high = values["speed_ci95"]
            values["speed_ci95"] = (float(low), float(high))
        values["quality"] = _quality(summary.get("quality"))
        values["inference"] = _record(InferenceStats, summary.get("inference"))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` summary: the public field names, JSON values."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _record(kind: type[Any], value: Any) -> Any:
    if not isinstance(value, Mapping):
        return None
    names = {f.name for f in dataclasses.fields(kind)}
    return kind(**{k: v for k, v in value.items() if k in names})


def _quality(value: Any) -> Quality | None:
    if not isinstance(value, Mapping) or value.get("verdict") is None:
        return None
    gpus = value.get("other_gpu_processes")
    names = {f.name for f in dataclasses.fields(Quality)}
    fields = {k: v for k, v in value.items() if k in names}
    fields["reasons"] = tuple(value.get("reasons") or ())
    fields["other_gpu_processes"] = (
        None if gpus is None else tuple(_record(GpuProcess, g) for g in gpus)
    )
    return Quality(**fields)
