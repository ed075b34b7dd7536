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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlbench.records import (
    Feasibility,
    GpuProcess,
    InferenceStats,
    ModelStats,
    Quality,
    Stability,
    StagingStats,
    TimeToAccuracy,
)
from dlbench.store.measurements import (
    EMPTY,
    Descriptors,
    FrozenMap,
    RankSteps,
    StepProfile,
    TelemetrySummary,
    descriptors_from,
    frozen,
    profile_from,
    rank_from,
    record_from,
    telemetry_from,
)
from dlbench.store.summary import run_summary

EXCLUDE_TAG = "exclude"  # its value: why the run is left out of fits and comparisons


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
    tokens_per_s: float | None = None
    tokens_per_s_ci95: tuple[float, float] | None = None
    perplexity: float | None = None
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
    profile: StepProfile | None = None
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
        values["tags"] = frozen(summary.get("tags"))
        values["config"] = frozen(summary.get("config"))
        values["hardware"] = frozen(summary["hardware"]) if summary.get("hardware") else None
        values["timed_steps"] = int(summary.get("timed_steps") or 0)
        for interval in ("speed_ci95", "tokens_per_s_ci95"):
            if values.get(interval) is not None:
                low, high = values[interval]
                values[interval] = (float(low), float(high))
        values["quality"] = _quality(summary.get("quality"))
        values["inference"] = record_from(InferenceStats, summary.get("inference"))
        values["model"] = _model(summary.get("model"))
        values["time_to_accuracy"] = _tta(summary.get("time_to_accuracy"))
        values["feasibility"] = record_from(Feasibility, summary.get("feasibility"))
        values["staging"] = record_from(StagingStats, summary.get("staging"))
        values["stability"] = record_from(Stability, summary.get("stability"))
        values["ranks"] = tuple(rank_from(r) for r in summary.get("ranks") or ())
        values["descriptors"] = descriptors_from(summary.get("descriptors"))
        values["telemetry"] = telemetry_from(summary.get("telemetry"))
        values["profile"] = profile_from(summary.get("profile"))
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
    def seq_len(self) -> int | None:
        """A language model's tokens per sequence (its speeds are sequences/s); else None."""
        value = self.config.get("seq_len")
        return int(value) if value else None

    @property
    def speed_unit(self) -> str:
        """What a step's items are: "seq/s" for a language model, else "img/s"."""
        return "seq/s" if self.seq_len else "img/s"

    @property
    def label(self) -> str:
        """workload · device name (or device) · batch N · precision."""
        device = self.device_name or self.device
        return f"{self.workload} · {device} · batch {self.batch_size} · {self.precision}"


def speed_unit(runs: Iterable[StoredRun]) -> str:
    """The unit of a table of runs' speeds: "img/s", "seq/s" (language models only) or both."""
    units = sorted({run.speed_unit for run in runs}) or ["img/s"]
    return " or ".join(units)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _quality(value: Any) -> Quality | None:
    if not isinstance(value, Mapping) or value.get("verdict") is None:
        return None
    gpus = value.get("other_gpu_processes")
    names = {f.name for f in dataclasses.fields(Quality)}
    fields = {k: v for k, v in value.items() if k in names}
    fields["reasons"] = tuple(value.get("reasons") or ())
    fields["other_gpu_processes"] = (
        None if gpus is None else tuple(record_from(GpuProcess, g) for g in gpus)
    )
    return Quality(**fields)


def _model(value: Any) -> ModelStats | None:
    if not isinstance(value, Mapping):
        return None
    fixed = {
        **value,
        "layers": frozen(value.get("layers")),
        "input_shape": tuple(value.get("input_shape") or ()),
    }
    model: ModelStats | None = record_from(ModelStats, fixed)
    return model


def _tta(value: Any) -> TimeToAccuracy | None:
    if not isinstance(value, Mapping):
        return None
    fixed = {**value, "accuracy_by_epoch": tuple(value.get("accuracy_by_epoch") or ())}
    tta: TimeToAccuracy | None = record_from(TimeToAccuracy, fixed)
    return tta
