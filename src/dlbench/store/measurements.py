"""The typed records inside a stored run: its telemetry summary, its step profile, its
calculator descriptors and its ranks' steps, and the read-only mapping they use; each built
from the stored JSON by one function here, for ``StoredRun.from_summary``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlbench.records import SpeedStats


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
    host: str | None = None  # the node it ran on
    local_rank: int | None = None
    sync_free_step_time_s: float | None = None  # its own pace: steps without the all-reduce


@dataclass(frozen=True)
class CategoryTime:
    """One operator category's part of a training step (``dlbench run --profile``)."""

    seconds_per_step: float  # its share of the step time measured without the profiler
    share: float
    tflops: float | None = None  # achieved, where the profiler counts the FLOPs


@dataclass(frozen=True)
class LayerTime:
    layer: str  # the module's name in the model
    module: str | None
    input_shape: tuple[int, ...] | None
    forward_s: float  # per profiled step
    backward_s: float
    forward_gflop: float


@dataclass(frozen=True)
class StepProfile:
    """Where a training step's time goes, from a few profiled steps after the timed ones."""

    available: bool
    reason: str | None = None  # why not, when not available
    categories: Mapping[str, CategoryTime] = field(default_factory=lambda: EMPTY)
    layers: tuple[LayerTime, ...] = ()
    steps: int = 0
    profiled_step_s: float | None = None
    timed_step_s: float | None = None
    profiler_overhead: float | None = None  # profiled / timed step - 1
    time_base: str | None = None  # CPU time, or GPU kernel time


def frozen(value: Any) -> Mapping[str, Any]:
    return FrozenMap(dict(value)) if isinstance(value, Mapping) else EMPTY


def record_from(kind: type[Any], value: Any) -> Any:
    if not isinstance(value, Mapping):
        return None
    names = {f.name for f in dataclasses.fields(kind)}
    try:
        return kind(**{k: v for k, v in value.items() if k in names})
    except TypeError:  # a document from an older dlbench lacks a field: not shown
        return None


_RANK_PLACE = ("rank", "host", "local_rank", "sync_free_step_time_s")


def rank_from(value: Mapping[str, Any]) -> RankSteps:
    speed = {k: v for k, v in value.items() if k not in _RANK_PLACE}
    if speed.get("speed_ci95") is not None:
        speed["speed_ci95"] = tuple(speed["speed_ci95"])
    host, local = value.get("host"), value.get("local_rank")
    pace = value.get("sync_free_step_time_s")
    return RankSteps(
        int(value.get("rank", 0)),
        record_from(SpeedStats, speed) if speed else None,
        str(host) if host is not None else None,
        int(local) if local is not None else None,
        float(pace) if pace is not None else None,
    )


def descriptors_from(value: Any) -> Descriptors | None:
    if not isinstance(value, Mapping):
        return None
    found: Descriptors | None = record_from(
        Descriptors, {**value, "layers": frozen(value.get("layers"))}
    )
    return found


def phase_from(value: Any) -> PhaseTelemetry | None:
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
        energy_j=frozen(value.get("energy_j")),
        total_energy_j=value.get("total_energy_j"),
        images_per_joule=value.get("images_per_joule"),
    )


def telemetry_from(value: Any) -> TelemetrySummary | None:
    if not isinstance(value, Mapping):
        return None
    phases = {
        name: phase
        for name, raw in (value.get("phases") or {}).items()
        if (phase := phase_from(raw)) is not None
    }
    return TelemetrySummary(
        enabled=bool(value.get("enabled", True)),
        phases=FrozenMap(phases),
        run=phase_from(value.get("run")),
        reason=value.get("reason"),
        error=value.get("error"),
        sources=frozen(value.get("sources")),
        interval_s=value.get("interval_s"),
    )


def profile_from(value: Any) -> StepProfile | None:
    if not isinstance(value, Mapping):
        return None
    categories = {
        kind: CategoryTime(float(c["seconds_per_step"]), float(c["share"]), c.get("tflops"))
        for kind, c in (value.get("categories") or {}).items()
    }
    layers = tuple(
        LayerTime(
            str(r.get("layer")),
            r.get("module"),
            tuple(r["input_shape"]) if r.get("input_shape") else None,
            float(r.get("forward_s") or 0.0),
            float(r.get("backward_s") or 0.0),
            float(r.get("forward_gflop") or 0.0),
        )
        for r in value.get("layers") or ()
    )
    return StepProfile(
        available=bool(value.get("available", bool(categories))),
        reason=value.get("reason"),
        categories=FrozenMap(categories),
        layers=layers,
        steps=int(value.get("steps") or 0),
        profiled_step_s=value.get("profiled_step_s"),
        timed_step_s=value.get("timed_step_s"),
        profiler_overhead=value.get("profiler_overhead"),
        time_base=value.get("time_base"),
    )
