"""Sweep files: one YAML file describes every combination of runs to benchmark.

    name: gpu-types
    base: {workload: resnet50, steps: 110}        # run options, as `dlbench run` takes them
    matrix:                                        # lists over any run option
      gpus: [1, 2, 4]
      batch_size: [64, max]                        # max: the largest that fits, found first
      staging: [{from: $SCRATCH/data, to: $LOCAL}, null]
    exclude: [{gpus: 4, batch_size: 64}]           # combinations to skip (a subset matches)
    repeat: 2
    timeout: 3600                                  # seconds per run
    results: results/sweeps                        # per-run JSON files (Slurm)
    slurm: {partition: GPU, gres_type: p100, time: 60, mem: 64G}

Every error names the file, the line and the key. A resolved run has a stable key (the hash of
its spec) so that a sweep can be resumed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dlbench import input_files
from dlbench.config import RunSpec, build_spec
from dlbench.errors import ConfigError, DlbenchError
from dlbench.registry import unknown_name

MAX_BATCH = "max"
# Sweep keys that are not RunSpec fields of the same name.
ALIASES = {"staging": ("stage_from", "stage_to"), "gpus_per_node": ("gpus",)}
NOT_SWEEPABLE = ("sweep", "repeat", "tags", "checkpoint")
MAX_RUNS = 10_000  # in one sweep: weeks of runs on any machine
Where = Callable[[tuple[Any, ...]], str]  # a key's path in the file -> "FILE:LINE"
Model = TypeVar("Model", bound=BaseModel)


class SlurmOptions(BaseModel):
    """Resources of each run's Slurm job (``--executor slurm``)."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(default=None, max_length=128)
    gpus_per_node: int | None = Field(default=None, ge=0, le=1024)  # default: the run's gpus
    nodes: int | None = Field(default=None, ge=1, le=4096)  # default: the run's nodes
    exclusive: bool = False  # sbatch --exclusive: no other job shares the nodes
    constraint: str | None = Field(default=None, max_length=256)  # e.g. ib, or a GPU feature
    gres_type: str | None = Field(default=None, max_length=128)  # e.g. p100: --gres=gpu:p100:N
    time: int = Field(default=60, gt=0, le=10**6)  # minutes
    mem: str | None = Field(default=None, max_length=32)  # e.g. 64G
    cpus_per_task: int | None = Field(default=None, gt=0, le=100_000)
    account: str | None = Field(default=None, max_length=128)
    extra: dict[str, str] = Field(default_factory=dict, max_length=64)  # more sbatch options


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=128)
    base: dict[str, Any] = Field(default_factory=dict)
    matrix: dict[str, list[Any]] = Field(default_factory=dict)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    repeat: int = Field(default=1, ge=1, le=1000)
    timeout: float | None = Field(default=None, gt=0, le=10**7, allow_inf_nan=False)
    results: str | None = Field(default=None, min_length=1, max_length=4096)
    slurm: SlurmOptions | None = None


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its spec (batch size unresolved when ``max_batch``) and key."""

    spec: RunSpec
    key: str
    max_batch: bool
    options: dict[str, Any]  # the matrix values that make it differ from the base

    @property
    def label(self) -> str:
        parts = [f"{k}={_show(v)}" for k, v in self.options.items()]
        if self.spec.repeat:
            parts.append(f"repeat={self.spec.repeat}")
        return " ".join(parts) or self.spec.workload


@dataclass(frozen=True)
class Sweep:
    path: Path
    file: SweepFile
    runs: tuple[SweepRun, ...]

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def results_dir(self) -> Path:
        folder = Path(self.file.results) if self.file.results else Path("results/sweeps")
        return (self.path.parent / folder if not folder.is_absolute() else folder) / self.name


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


# -- reading --------------------------------------------------------------------------------------
def _lines(node: yaml.Node, prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Line (1-based) of every key and list item in the YAML document, by its path."""
    found: dict[tuple[Any, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, key.value)
            found[path] = key.start_mark.line + 1
            found.update(_lines(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            item_path = (*prefix, index)
            found[item_path] = item.start_mark.line + 1
            found.update(_lines(item, item_path))
    return found


def _where(path: Path, lines: dict[tuple[Any, ...], int], location: tuple[Any, ...]) -> str:
    for end in range(len(location), 0, -1):
        if location[:end] in lines:
            return f"{path}:{lines[location[:end]]}"
    return str(path)


def read_document(path: Path) -> tuple[dict[str, Any], Where]:
    """A sweep file's mapping, and where (``file:line``) each of its keys is; or one
    ConfigError saying why it cannot be read."""
    text = input_files.read_text(path, "sweep file", input_files.MAX_YAML_BYTES)
    try:
        content, node = input_files.load(text)
        lines = _lines(node) if content and node is not None else {}
    except (input_files.TooLarge, input_files.TooDeep) as exc:
        raise ConfigError(f"{path}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping with at least a name")
    return content, lambda location: _where(path, lines, location)


def load(path: Path) -> Sweep:
    """Read, validate and expand a sweep file, or raise one ConfigError with file:line."""
    content, where = read_document(path)
    if "serve" in content:
        raise ConfigError(
            f"{where(('serve',))}: a serving sweep runs from this machine, its client, with "
            f"no jobs to follow: dlbench sweep {path}"
        )
    sweep_file = validated(SweepFile, content, where)
    return Sweep(path, sweep_file, expand(sweep_file, where))


def validated(model: type[Model], content: dict[str, Any], where: Where) -> Model:
    """``content`` as ``model``, or one ConfigError at the file and line of its first fault."""
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = tuple(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key {location[-1]!r}"
        key = ".".join(str(p) for p in location)
        raise ConfigError(f"{where(location)}: {key}: {message}") from None


# -- expansion ------------------------------------------------------------------------------------
def _run_fields() -> set[str]:
    return set(RunSpec.model_fields) - set(NOT_SWEEPABLE)


def _check_keys(options: dict[str, Any], section: str, where: Any) -> None:
    allowed = _run_fields() | set(ALIASES) | ({"tags"} if section == "base" else set())
    for key in options:
        if key not in allowed:
            error = unknown_name(f"{section} key", str(key), sorted(allowed))
            raise ConfigError(f"{where((section, key))}: {error.message}", error.hint)


def _to_spec_options(options: dict[str, Any], where: Any, section: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key == "staging":
            if value is None:
                out.update(stage_from=None, stage_to=None)
                continue
            if not isinstance(value, dict) or set(value) != {"from", "to"}:
                raise ConfigError(
                    f"{where((section, key))}: staging is {{from: DIR, to: DIR}} or null"
                )
            out.update(stage_from=str(value["from"]), stage_to=str(value["to"]))
        elif key == "gpus_per_node":  # a run's --gpus is per node: the same field
            if "gpus" in options and options["gpus"] != value:
                raise ConfigError(f"{where((section, key))}: give gpus or gpus_per_node, not both")
            out["gpus"] = value
        else:
            out[key] = value
    return out


def _excluded(combination: dict[str, Any], exclude: list[dict[str, Any]]) -> bool:
    return any(all(combination.get(k) == v for k, v in rule.items()) for rule in exclude)


def expand(sweep_file: SweepFile, where: Any) -> tuple[SweepRun, ...]:
    """Every combination of the matrix, minus the excluded, times ``repeat``, validated."""
    _check_keys(sweep_file.base, "base", where)
    _check_keys(sweep_file.matrix, "matrix", where)
    for index, rule in enumerate(sweep_file.exclude):
        for key in rule:
            if key not in sweep_file.matrix:
                raise ConfigError(
                    f"{where(('exclude', index, key))}: exclude key {key!r} is not in the matrix"
                )
    keys = list(sweep_file.matrix)
    combinations = math.prod(len(values) for values in sweep_file.matrix.values())
    if combinations * sweep_file.repeat > MAX_RUNS:  # counted before a single one is built
        raise ConfigError(
            f"{where(('matrix',))}: the matrix makes {combinations:,} combinations x repeat "
            f"{sweep_file.repeat}: more than {MAX_RUNS:,} runs",
            "split it into several sweeps",
        )
    runs: list[SweepRun] = []
    seen: set[str] = set()
    for values in itertools.product(*(sweep_file.matrix[k] for k in keys)):
        combination = dict(zip(keys, values, strict=True))
        if _excluded(combination, sweep_file.exclude):
            continue
        options = {**sweep_file.base, **combination}
        section = "matrix" if combination else "base"
        max_batch = options.get("batch_size") == MAX_BATCH
        if max_batch:
            options["batch_size"] = None
        spec_options = _to_spec_options(options, where, section)
        for repeat in range(sweep_file.repeat):
            try:
                spec = build_spec(**spec_options, sweep=sweep_file.name, repeat=repeat)
            except ConfigError as exc:
                culprit = _culprit(exc, combination)
                location = (section, culprit) if culprit else (section,)
                raise ConfigError(f"{where(location)}: {exc.message}", exc.hint) from None
            key = spec.run_key + ("-max" if max_batch else "")
            if key in seen:
                raise ConfigError(
                    f"{where(('matrix',))}: two combinations resolve to the same run "
                    f"({_show(combination)}); remove the duplicate"
                )
            seen.add(key)
            runs.append(SweepRun(spec, key, max_batch, combination))
    if not runs:
        raise DlbenchError(f"sweep {sweep_file.name}: every combination is excluded")
    return tuple(runs)


def _culprit(exc: ConfigError, combination: dict[str, Any]) -> str | None:
    """The matrix key the error is about, to point at its line."""
    return exc.field if exc.field in combination else None
