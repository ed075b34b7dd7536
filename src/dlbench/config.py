"""Validated run configuration. Validators only validate; side effects belong to the runner.

Past this boundary code trusts its inputs. A pydantic error becomes one ``ConfigError`` line
naming the command-line option at fault.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dlbench.errors import ConfigError
from dlbench.workloads import check_dataset, get_workload

DEFAULT_WARMUP = 10
DEFAULT_TIMED_STEPS = 100
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
TAG_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
FRAMEWORKS = ("pytorch",)


class RunSpec(BaseModel):
    """One benchmark run, as asked for. ``resolved()`` fills the workload's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload: str
    framework: str = "pytorch"
    device: str = "auto"
    batch_size: int | None = Field(default=None, gt=0)
    warmup: int = Field(default=DEFAULT_WARMUP, ge=0)
    steps: int | None = Field(default=None, gt=0)  # total, warm-up included
    epochs: int | None = Field(default=None, gt=0)  # timed epochs, after the warm-up steps
    data: str = "synthetic"
    dataset: str | None = None
    workers: int | None = Field(default=None, ge=0)
    val_batches: int | None = Field(default=None, gt=0)  # cap on validation batches
    threads: int | None = Field(default=None, gt=0)
    seed: int = 0
    telemetry: bool = True
    interval: float = Field(default=1.0, ge=0.01, le=3600)  # telemetry sampling period, s
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> RunSpec:
        workload = get_workload(self.workload)
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework: {self.framework!r} is not one of {', '.join(FRAMEWORKS)}")
        if not DEVICE_PATTERN.match(self.device):
            raise ValueError(f"device: {self.device!r} is not auto, cpu, mps, cuda or cuda:N")
        if self.steps is not None and self.epochs is not None:
            raise ValueError("steps: give --steps or --epochs, not both")
        if self.steps is not None and self.steps <= self.warmup:
            raise ValueError(
                f"steps: {self.steps} steps leave none to time after {self.warmup} warm-up "
                f"steps (--steps counts the warm-up too: give more than --warmup)"
            )
        for key in self.tags:
            if not TAG_KEY_PATTERN.match(key):
                raise ValueError(f"tags: tag key {key!r} must be letters, digits, '_', '.', '-'")
        check_dataset(workload, self.dataset)
        return self

    def resolved(self) -> RunSpec:
        """This spec with every default filled in, as it is stored with the run."""
        workload = get_workload(self.workload)
        steps = self.steps
        if steps is None and self.epochs is None:
            steps = self.warmup + DEFAULT_TIMED_STEPS
        return self.model_copy(
            update={
                "batch_size": self.batch_size or workload.default_batch_size,
                "dataset": check_dataset(workload, self.dataset),
                "steps": steps,
            }
        )


def parse_tags(pairs: list[str] | None) -> dict[str, str]:
    """``["key=value", ...]`` from --tag options."""
    tags: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag {pair!r} is not key=value", "e.g. --tag cluster=bridges")
        tags[key.strip()] = value.strip()
    return tags


def build_spec(**options: Any) -> RunSpec:
    """Validate options into a resolved RunSpec, or raise one ConfigError line."""
    try:
        return RunSpec(**options).resolved()
    except ValidationError as exc:
        raise _config_error(exc) from None


_OPTION_NAMES = {"tags": "--tag"}


def _option(field: str) -> str:
    return _OPTION_NAMES.get(field, "--" + field.replace("_", "-"))


def _config_error(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    location = [str(part) for part in first.get("loc", ())]
    if location:
        message = f"{_option(location[0])}: {message}"
    elif ": " in message:
        field, _, rest = message.partition(": ")
        message = f"{_option(field)}: {rest}"
    # A nested ConfigError (unknown workload, bad dataset) keeps its own words and hint.
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    return ConfigError(message)
