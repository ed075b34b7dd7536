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
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON

from dlbench.errors import MalformedRun
from dlbench.frameworks import DEFAULT_FRAMEWORK, DEFAULT_PRECISION
from dlbench.measure.collectives import CollectiveResult, result_from
from dlbench.measure.generation import GenerationSummary, generation_from
from dlbench.measure.serving import ServingSummary, serving_from
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
from dlbench.store.schema import runs
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
    collectives: tuple[CollectiveResult, ...] = ()  # a ``dlbench collectives`` run's sizes
    descriptors: Descriptors | None = None
    stability: Stability | None = None
    telemetry: TelemetrySummary | None = None
    profile: StepProfile | None = None
    generation: GenerationSummary | None = None  # dlbench generate's per-token figures
    serving: ServingSummary | None = None  # dlbench serve-bench's figures of a server
    # free-form documents, read-only
    hardware: Mapping[str, Any] | None = None
    config: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    # The --json summary this run was read from: JSON keeps exactly what was stored.
    summary: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredRun:
        """From a row of the ``runs`` table (its JSON columns decoded); ``MalformedRun`` when
        a column or document does not hold what dlbench writes there."""
        _check_columns(row)
        return cls.from_summary(run_summary(dict(row)))

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> StoredRun:
        """From the ``--json`` summary of a run (``run_summary``), the one place where the
        stored documents become records. Every figure and record is checked against its
        declared type: a record an older or foreign writer garbled is left out (None), a
        garbled figure makes the whole run ``MalformedRun``."""
        run_id = summary.get("run_id")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in summary.items() if k in known}
        values["tags"] = _mapping(summary.get("tags"), run_id, "tags")
        values["config"] = frozen(summary.get("config"))
        # A training or generation run stored before these columns: the defaults (a monitor
        # or collectives run has no framework of its own, or no precision)
        if summary.get("kind") in ("train", "generate"):
            config = values["config"] if isinstance(values["config"], Mapping) else {}
            values["framework"] = values.get("framework") or DEFAULT_FRAMEWORK
            values["precision"] = (
                values.get("precision") or config.get("precision") or DEFAULT_PRECISION
            )
        values["hardware"] = frozen(summary["hardware"]) if summary.get("hardware") else None
        try:
            values["timed_steps"] = int(summary.get("timed_steps") or 0)
            for interval in ("speed_ci95", "tokens_per_s_ci95"):
                if values.get(interval) is not None:
                    low, high = values[interval]
                    values[interval] = (float(low), float(high))
        except (TypeError, ValueError, OverflowError) as exc:
            raise MalformedRun(str(run_id), "speed", str(exc)) from None
        for name, build in _RECORDS.items():
            try:
                values[name] = build(summary.get(name))
            except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError):
                values[name] = () if name in SEQUENCES else None  # garbled: not shown
        _check_types(values, str(run_id))
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
        if isinstance(command, (list, tuple)):
            return " ".join(str(part) for part in command) or None
        return str(command) if command else None

    @property
    def learned_accuracy(self) -> float | None:
        """Accuracy (mAP@0.5 for a detector) where it means something: None for a classifier
        trained on synthetic data, whose labels are random."""
        return learned_accuracy(self.accuracy, self.map50, self.data)

    @property
    def accuracy_words(self) -> tuple[str, bool] | None:
        """The validation accuracy as every view words it, and whether it was learned:
        ("0.9871", True), ("mAP@0.5 0.4120", True) for a detector, or ("0.1016 (synthetic)",
        False) for a classifier on random labels, whose figure is chance."""
        if self.accuracy is None and self.map50 is not None:
            return f"mAP@0.5 {self.map50:.4f}", True
        if self.accuracy is None:
            return None
        if self.learned_accuracy is None:
            return f"{self.accuracy:.4f} (synthetic)", False
        return f"{self.accuracy:.4f}", True

    @property
    def seq_len(self) -> int | None:
        """A language model's tokens per sequence (its speeds are sequences/s); else None."""
        value = self.config.get("seq_len")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def speed_unit(self) -> str:
        """What a step's items are: "seq/s" for a language model, "req/s" for a server's
        requests (its speed: 1 / end-to-end latency of one), else "img/s"."""
        if self.kind == "serving":
            return "req/s"
        return "seq/s" if self.seq_len else "img/s"

    @property
    def label(self) -> str:
        """What the run ran, as every view names it: workload · framework · device name (or
        device) · precision · batch (a monitor run: its command)."""
        if self.is_monitor:
            return f"monitor: {self.command}"
        if self.serving is not None:
            return f"{self.workload} · served at {self.device_name} · c{self.serving.concurrency}"
        device = self.device_name or self.device
        return (
            f"{self.workload} · {self.framework} · {device} · {self.precision} · b{self.batch_size}"
        )


def learned_accuracy(accuracy: float | None, map50: float | None, data: str | None) -> float | None:
    """See ``StoredRun.learned_accuracy``; for readers of the runs table's plain rows."""
    if accuracy is not None and data == "synthetic":
        return None  # random labels: chance accuracy (synthetic detection scenes are learnable)
    return accuracy if accuracy is not None else map50


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


def _check_columns(row: Mapping[str, Any]) -> None:
    """The row's columns hold their declared kinds: numbers in number columns, text in text
    columns, mappings in the JSON documents (SQLite keeps whatever a writer gives it)."""
    run_id = str(row.get("run_id"))
    for column in runs.c:
        value = row.get(column.name)
        if value is None:
            continue
        python = column.type.python_type if not isinstance(column.type, JSON) else dict
        if python is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if python in (int, float):
            good = isinstance(value, python) and not isinstance(value, bool)
            good = good and math.isfinite(value)
        elif column.name == "pids":
            good = isinstance(value, list)
        else:
            good = isinstance(value, python)
        if not good:
            kind = "a non-finite number" if isinstance(value, float) else type(value).__name__
            raise MalformedRun(run_id, column.name, f"{kind} where a {python.__name__} belongs")


def _mapping(value: Any, run_id: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return EMPTY
    if not isinstance(value, Mapping):
        raise MalformedRun(str(run_id), field, f"a {type(value).__name__}, not a mapping")
    return frozen(value)


SEQUENCES = ("ranks", "collectives")  # records that are tuples: garbled, they are empty
_RECORDS: dict[str, Any] = {
    "generation": generation_from,
    "serving": serving_from,
    "quality": lambda v: _quality(v),
    "inference": lambda v: record_from(InferenceStats, v),
    "model": lambda v: _model(v),
    "time_to_accuracy": lambda v: _tta(v),
    "feasibility": lambda v: record_from(Feasibility, v),
    "staging": lambda v: record_from(StagingStats, v),
    "stability": lambda v: record_from(Stability, v),
    "ranks": lambda v: tuple(rank_from(r) for r in v or ()),
    "collectives": lambda v: tuple(r for r in map(result_from, v or ()) if r is not None),
    "descriptors": descriptors_from,
    "telemetry": telemetry_from,
    "profile": profile_from,
}


@functools.cache
def _adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(StoredRun)


def _check_types(values: dict[str, Any], run_id: str) -> None:
    """``values`` hold what ``StoredRun`` declares, records to the last field: a record that
    does not is dropped (an older or foreign document), a top-level figure that does not makes
    the run malformed. Readers then never meet a string where a number belongs."""
    from pydantic import ValidationError

    for _ in range(len(_RECORDS) + 1):
        try:
            _adapter().validate_python({k: _plain(v) for k, v in values.items()})
            return
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "run"
            if field not in _RECORDS:
                where = ".".join(str(part) for part in first["loc"])
                raise MalformedRun(run_id, where or "run", str(first["msg"])) from None
            values[field] = () if field in SEQUENCES else None


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
