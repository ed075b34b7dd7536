"""``StoredRun``: a run as the store hands it to readers, typed, built in one place.

Its fields are the ``--json`` summary's (a public format: JSON and CSV keep these names), so
``StoredRun.from_row(row).to_dict() == run_summary(row)``. Every figure a reader computes
with is a typed attribute; what the run measured in depth is a typed record (quality,
inference, model, telemetry summary, calculator descriptors, ranks, time to accuracy,
feasibility, staging, stability); only free-form documents (hardware, configuration, tags)
stay read-only mappings.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlbench.records import (
    Feasibility,
    GpuProcess,
    InferenceStats,
    ModelStats,
    Quality,
    SpeedStats,
    Stability,
    StagingStats,
    TimeToAccuracy,
)
from dlbench.store.summary import run_summary


class FrozenMap(Mapping[str, Any]):
    """A read-only mapping that pickles and copies (a notebook may cache or send runs)."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)


EMPTY: Mapping[str, Any] = FrozenMap()
EXCLUDE_TAG = "exclude"  # its value: why the run is left out of fits and comparisons


@dataclass(frozen=True)
class MetricSummary:
    """One telemetry metric over a phase: time-weighted mean, extremes, p95. A throttle
    metric has its reasons (and bit mask) instead."""

    mean: float | None = None
    min: float | None = None
    max: float | None = None
    p95: float | None = None
    samples: int = 0
    reasons: tuple[str, ...] = ()
    mask: int | None = None


@dataclass(frozen=True)
class PhaseTelemetry:
    duration_s: float = 0.0
    metrics: Mapping[str, MetricSummary] = field(default_factory=lambda: EMPTY)
    energy_j: Mapping[str, float] = field(default_factory=lambda: EMPTY)  # per device
    total_energy_j: float | None = None
    images_per_joule: float | None = None


@dataclass(frozen=True)
class TelemetrySummary:
    """What the sampler saw: per phase and over the whole run; why not, when it did not."""

    enabled: bool
    phases: Mapping[str, PhaseTelemetry] = field(default_factory=lambda: EMPTY)
    run: PhaseTelemetry | None = None
    reason: str | None = None  # why telemetry was off
    error: str | None = None  # why the summary could not be made
    sources: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    interval_s: float | None = None

    def phase(self, name: str) -> PhaseTelemetry | None:
        return self.phases.get(name)


@dataclass(frozen=True)
class Descriptors:
    """The run's model and device in the calculator's terms."""

    family: str | None = None
    depth: int | None = None
    width: int | None = None
    params: int | None = None
    flops_per_step: float | None = None
    activation_bytes: int | None = None
    layers: Mapping[str, int] = field(default_factory=lambda: EMPTY)
    input_size: int | None = None
    batch_size: int | None = None
    precision: str | None = None
    device_name: str | None = None
    device_peak_tflops: float | None = None
    device_bandwidth_gb_s: float | None = None


@dataclass(frozen=True)
class RankSteps:
    """One process's own step statistics in a multi-process (DDP) run."""

    rank: int
    speed: SpeedStats | None


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
    model: ModelStats | None = None
    time_to_accuracy: TimeToAccuracy | None = None
    feasibility: Feasibility | None = None
    staging: StagingStats | None = None
    ranks: tuple[RankSteps, ...] = ()
    descriptors: Descriptors | None = None
    stability: Stability | None = None
    telemetry: TelemetrySummary | None = None
    # free-form documents, read-only
    hardware: Mapping[str, Any] | None = None
    config: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    # The --json summary this run was read from: JSON keeps exactly what was stored.
    summary: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredRun:
        """From a row of the ``runs`` table (its JSON columns decoded)."""
        return cls.from_summary(run_summary(dict(row)))

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> StoredRun:
        """From the ``--json`` summary of a run (``run_summary``), the one place where the
        stored documents become records."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in summary.items() if k in known}
        values["tags"] = _frozen(summary.get("tags"))
        values["config"] = _frozen(summary.get("config"))
        values["hardware"] = _frozen(summary["hardware"]) if summary.get("hardware") else None
        values["timed_steps"] = int(summary.get("timed_steps") or 0)
        if values.get("speed_ci95") is not None:
            low, high = values["speed_ci95"]
            values["speed_ci95"] = (float(low), float(high))
        values["quality"] = _quality(summary.get("quality"))
        values["inference"] = _record(InferenceStats, summary.get("inference"))
        values["model"] = _model(summary.get("model"))
        values["time_to_accuracy"] = _tta(summary.get("time_to_accuracy"))
        values["feasibility"] = _record(Feasibility, summary.get("feasibility"))
        values["staging"] = _record(StagingStats, summary.get("staging"))
        values["stability"] = _record(Stability, summary.get("stability"))
        values["ranks"] = tuple(_rank(r) for r in summary.get("ranks") or ())
        values["descriptors"] = _descriptors(summary.get("descriptors"))
        values["telemetry"] = _telemetry(summary.get("telemetry"))
        values["summary"] = FrozenMap(copy.deepcopy(dict(summary)))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` summary: the public field names, JSON values."""
        if self.summary is not None:
            return dict(_plain(self.summary))
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "summary"
        }

    @property
    def excluded(self) -> str | None:
        """Why the user left this run out of fits and comparisons (``dlbench tag --exclude``)."""
        return self.tags.get(EXCLUDE_TAG) or None

    @property
    def is_monitor(self) -> bool:
        """A ``dlbench monitor`` run: a command sampled, not a training benchmark."""
        return self.kind == "monitor"

    @property
    def command(self) -> str | None:
        """A monitor run's command line."""
        command = self.config.get("command")
        return " ".join(str(part) for part in command) if command else None

    @property
    def learned_accuracy(self) -> float | None:
        """Accuracy (mAP@0.5 for a detector) where it means something: None for a classifier
        trained on synthetic data, whose labels are random."""
        if self.accuracy is not None and self.data == "synthetic":
            return None
        return self.accuracy if self.accuracy is not None else self.map50

    @property
    def label(self) -> str:
        """workload · device name (or device) · batch N · precision."""
        device = self.device_name or self.device
        return f"{self.workload} · {device} · batch {self.batch_size} · {self.precision}"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _frozen(value: Any) -> Mapping[str, Any]:
    return FrozenMap(dict(value)) if isinstance(value, Mapping) else EMPTY


def _record(kind: type[Any], value: Any) -> Any:
    if not isinstance(value, Mapping):
        return None
    names = {f.name for f in dataclasses.fields(kind)}
    try:
        return kind(**{k: v for k, v in value.items() if k in names})
    except TypeError:  # a document from an older dlbench lacks a field: not shown
        return None


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


def _model(value: Any) -> ModelStats | None:
    if not isinstance(value, Mapping):
        return None
    fixed = {
        **value,
        "layers": _frozen(value.get("layers")),
        "input_shape": tuple(value.get("input_shape") or ()),
    }
    model: ModelStats | None = _record(ModelStats, fixed)
    return model


def _tta(value: Any) -> TimeToAccuracy | None:
    if not isinstance(value, Mapping):
        return None
    fixed = {**value, "accuracy_by_epoch": tuple(value.get("accuracy_by_epoch") or ())}
    tta: TimeToAccuracy | None = _record(TimeToAccuracy, fixed)
    return tta


def _rank(value: Mapping[str, Any]) -> RankSteps:
    speed = {k: v for k, v in value.items() if k != "rank"}
    if speed.get("speed_ci95") is not None:
        speed["speed_ci95"] = tuple(speed["speed_ci95"])
    return RankSteps(int(value.get("rank", 0)), _record(SpeedStats, speed) if speed else None)


def _descriptors(value: Any) -> Descriptors | None:
    if not isinstance(value, Mapping):
        return None
    found: Descriptors | None = _record(
        Descriptors, {**value, "layers": _frozen(value.get("layers"))}
    )
    return found


def _phase(value: Any) -> PhaseTelemetry | None:
    if not isinstance(value, Mapping):
        return None
    metrics = {
        name: MetricSummary(
            mean=m.get("mean"),
            min=m.get("min"),
            max=m.get("max"),
            p95=m.get("p95"),
            samples=int(m.get("samples") or 0),
            reasons=tuple(m.get("reasons") or ()),
            mask=m.get("mask"),
        )
        for name, m in (value.get("metrics") or {}).items()
    }
    return PhaseTelemetry(
        duration_s=float(value.get("duration_s") or 0.0),
        metrics=FrozenMap(metrics),
        energy_j=_frozen(value.get("energy_j")),
        total_energy_j=value.get("total_energy_j"),
        images_per_joule=value.get("images_per_joule"),
    )


def _telemetry(value: Any) -> TelemetrySummary | None:
    if not isinstance(value, Mapping):
        return None
    phases = {
        name: phase
        for name, raw in (value.get("phases") or {}).items()
        if (phase := _phase(raw)) is not None
    }
    return TelemetrySummary(
        enabled=bool(value.get("enabled", True)),
        phases=FrozenMap(phases),
        run=_phase(value.get("run")),
        reason=value.get("reason"),
        error=value.get("error"),
        sources=_frozen(value.get("sources")),
        interval_s=value.get("interval_s"),
    )
