"""What ``dlbench import`` accepts: a run's row, its step times and its telemetry, from another
database or a saved-run file, checked against one schema before anything is written.

Types, the statuses and kinds dlbench writes, run ids of the form it makes, finite figures,
bounded text and documents, times between 2000 and tomorrow; the row must also read back as a
``StoredRun`` (what every reader uses). A row still ``running`` comes in as ``lost`` unless its
processes live on this host.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from dlbench.errors import ConfigError, MalformedRun
from dlbench.input_files import MAX_DEPTH
from dlbench.records import RUN_ID_PATTERN
from dlbench.store import liveness
from dlbench.store.columns import utc_now

MAX_TEXT = 64 * 1024  # characters of an error, a path, a free-form string
MAX_DOCUMENT_VALUES = 1_000_000  # values in one JSON document (config, hardware, result)
MAX_STEPS = 10**9
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _timestamp(value: str) -> str:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO 8601 time") from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    if not EARLIEST <= when <= datetime.now(timezone.utc) + timedelta(days=1):
        raise ValueError("not a time between 2000 and now")
    return value


def _document(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON document of bounded depth and size, its numbers finite and its keys text."""
    count, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        count += 1
        if count > MAX_DOCUMENT_VALUES:
            raise ValueError(f"more than {MAX_DOCUMENT_VALUES:,} values")
        if level > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise ValueError("a key that is not text")
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("a number that is not finite")
        elif isinstance(item, str) and len(item) > MAX_TEXT * 16:
            raise ValueError("a string longer than 1 MiB")
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            raise ValueError(f"a {type(item).__name__}, not JSON")
    return value


Timestamp = Annotated[str, Field(max_length=40), AfterValidator(_timestamp)]
Document = Annotated[dict[str, Any], AfterValidator(_document)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Name = Annotated[str, Field(max_length=128)]
Figure = Annotated[float, Field(ge=0, le=1e300, allow_inf_nan=False)]
Count = Annotated[StrictInt, Field(ge=0, le=2**62)]


class RunRow(BaseModel):
    """A row of the ``runs`` table as dlbench writes it."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    kind: Literal["train", "monitor", "collective"]
    created_at: Timestamp
    finished_at: Timestamp | None = None
    status: Literal["running", "ok", "oom", "failed", "interrupted", "timeout", "lost"]
    error: Text | None = None
    phase_reached: str | None = Field(default=None, max_length=16)
    workload: str | None = Field(default=None, max_length=64)
    framework: str | None = Field(default=None, max_length=32)
    device: str | None = Field(default=None, max_length=32)
    device_name: Name | None = None
    num_gpus: Count | None = None
    batch_size: Count | None = None
    precision: str | None = Field(default=None, max_length=16)
    data: Text | None = None
    dataset: str | None = Field(default=None, max_length=64)
    staged_from: Text | None = None
    hostname: Name | None = None
    sweep: Name | None = None
    run_key: str | None = Field(default=None, max_length=64)
    mean_speed: Figure | None = None
    mean_step_time_s: Figure | None = None
    speed_stderr: Figure | None = None
    speed_jitter: Figure | None = None
    throughput_e2e: Figure | None = None
    train_time_s: Figure | None = None
    val_time_s: Figure | None = None
    total_time_s: Figure | None = None
    accuracy: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    timed_steps: Count | None = None
    peak_memory_bytes: Count | None = None
    quality_verdict: Literal["clean", "noisy", "contended"] | None = None
    foreign_cpu_cores: Figure | None = None
    heartbeat_at: Timestamp | None = None
    heartbeat_s: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] | None = None
    pids: (
        list[tuple[Annotated[StrictInt, Field(gt=1, lt=2**31)], Annotated[float, Field(ge=0)]]]
        | None
    ) = Field(default=None, max_length=4096)
    tags: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=1000)]] = (
        Field(default_factory=dict, max_length=100)
    )
    config: Document
    hardware: Document | None = None
    result: Document | None = None


class StepRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: Annotated[StrictInt, Field(ge=0, le=MAX_STEPS * 10)]
    epoch: Annotated[StrictInt, Field(ge=0, le=MAX_STEPS)]
    step_time_s: Annotated[float, Field(ge=0, le=1e7, allow_inf_nan=False)]
    data_wait_s: Annotated[float, Field(ge=0, le=1e7, allow_inf_nan=False)]


class SampleRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=96)
    t_s: Annotated[StrictFloat, Field(allow_inf_nan=False)]  # an int is a float here too
    wall: Annotated[StrictFloat, Field(allow_inf_nan=False)]
    phase: str = Field(max_length=16)
    value: Annotated[StrictFloat, Field(allow_inf_nan=False)]


def run_row(row: Any, where: str) -> dict[str, Any]:
    """``row`` checked (one ConfigError naming ``where`` and the field when it is not what
    dlbench writes) and as it is stored here: a dead ``running`` row becomes ``lost``."""
    from dlbench.store.stored import StoredRun

    if not isinstance(row, dict):
        raise ConfigError(f"{where}: a run is a mapping of its columns, not a {type(row).__name__}")
    checked = _validated(RunRow, row, where).model_dump()
    try:
        StoredRun.from_row(checked)  # what every reader makes of it
    except MalformedRun as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    if checked["status"] == "running" and not _alive_here(checked):
        checked.update(
            status="lost",
            error=liveness.lost_error(checked) + " (imported while still marked running)",
            finished_at=checked.get("finished_at") or utc_now(),
        )
    return checked


def step_rows(rows: Any, where: str) -> list[dict[str, Any]]:
    return [
        _validated(StepRow, r, f"{where}, step {i + 1}").model_dump()
        for i, r in enumerate(_listed(rows, where, "steps"))
    ]


def sample_rows(rows: Any, where: str) -> list[dict[str, Any]]:
    return [
        _validated(SampleRow, r, f"{where}, telemetry row {i + 1}").model_dump()
        for i, r in enumerate(_listed(rows, where, "telemetry"))
    ]


def _listed(rows: Any, where: str, what: str) -> list[Any]:
    if not isinstance(rows, list):
        raise ConfigError(f"{where}: {what} is a list, not a {type(rows).__name__}")
    return rows


def _validated(model: type[BaseModel], row: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "itself"
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "not a field dlbench writes"
        raise ConfigError(f"{where}: {field}: {message}") from None


def _alive_here(row: dict[str, Any]) -> bool:
    return row.get("hostname") == liveness.this_host() and liveness.processes_alive(row["pids"])
