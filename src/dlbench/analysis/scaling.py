"""``dlbench scaling``: speed over GPU and node counts (with efficiency), staging tiers and
batch sizes.

Runs that differ only in the axis (and their repeat) form a series; a series needs two or more
values of the axis. Speed is the mean over repeats, with its standard error across them and a
95% interval: Student's t across the repeats, or a single run's own interval.

Three axes scale a job: ``gpus`` (processes per node, the node count fixed) and ``nodes``
(processes per node fixed) keep each process's batch, so the work grows with the processes
(weak scaling); ``processes`` keeps the global batch (batch x processes) and splits it over
more processes on as many nodes (strong scaling).
Efficiency is speed(N) / (N / N0 x speed(N0)); the speed-up's interval combines the two
speeds' relative half-widths in quadrature (the delta method for a ratio). Where the runs'
ranks timed steps without the gradient all-reduce, a point also says what share of a step
is communication (analysis/stragglers.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlbench.analysis.stragglers import stragglers
from dlbench.measure.stats import between_runs, standard_error
from dlbench.store.stored import StoredRun

AXES = {
    "gpus": "GPUs (processes) per node (weak scaling)",
    "nodes": "nodes (weak scaling)",
    "processes": "processes, global batch fixed (strong scaling)",
    "staged_from": "staged from",
    "batch_size": "batch size",
}
SCALING_AXES = ("gpus", "nodes", "processes")  # with an efficiency
IGNORED = {"repeat", "tags", "sweep", "seed", "checkpoint", "stage_to"}
# What else changes along each axis, so it cannot tell the series apart.
FOLLOWS = {
    "gpus": {"processes", "global_batch"},
    "nodes": {"processes", "global_batch"},
    "processes": {"gpus", "batch_size"},  # over as many nodes: layouts are not mixed
    "staged_from": set(),
    "batch_size": {"global_batch"},
}


@dataclass(frozen=True)
class Point:
    value: Any
    runs: int
    mean_speed: float
    speed_stderr: float | None  # across repeats
    relative: float  # speed / the series' first point: the speed-up
    efficiency: float | None  # scaling axes: speed(N) / (N / N0 x speed(N0))
    speed_ci95: tuple[float, float] | None = None  # never below 0
    contended: int = 0  # of the runs, measured contended
    noisy: int = 0
    relative_ci95: tuple[float, float] | None = None  # of the speed-up
    efficiency_ci95: tuple[float, float] | None = None
    communication_share: float | None = None  # of a step, mean over the runs that tell


@dataclass(frozen=True)
class Series:
    axis: str
    label: str  # the configuration the series shares
    points: tuple[Point, ...]
    unit: str = "img/s"  # of the speeds: seq/s for a language model

    @property
    def quality_warning(self) -> str | None:
        """One sentence when runs of the series were measured contended or noisy."""
        runs = sum(p.runs for p in self.points)
        contended = sum(p.contended for p in self.points)
        noisy = sum(p.noisy for p in self.points)
        if contended:
            return (
                f"{contended} of {runs} runs of this series were measured contended: its "
                "speeds and their ratios measure the contention as much as the hardware"
            )
        if noisy:
            return f"{noisy} of {runs} runs were measured noisy: a few percent off, perhaps"
        return None


def scaling_efficiency(speed: float, gpus: int, base_speed: float, base_gpus: int = 1) -> float:
    """speed(N) / (N / N0 x speed(N0)): 1.0 is perfectly linear scaling from N0 GPUs."""
    return speed / (gpus / base_gpus * base_speed)


def _config(run: StoredRun) -> dict[str, Any]:
    config = dict(run.config)
    config["staged_from"] = config.pop("stage_from", None) or "none"
    config["batch_size"] = run.batch_size
    config["nodes"] = int(config.get("nodes") or 1)
    config["processes"] = int(config.get("gpus") or 1) * config["nodes"]
    config["global_batch"] = (run.batch_size or 0) * config["processes"]
    return config


def _label(config: dict[str, Any], axis: str) -> str:
    keys: tuple[str, ...] = ("workload", "device", "precision", "nodes", "gpus", "batch_size")
    keys = (*keys, "global_batch", "staged_from")
    hidden = {axis, *FOLLOWS[axis]}
    if axis != "processes":
        hidden.add("global_batch")
    shown = [f"{k}={config[k]}" for k in keys if k not in hidden and config.get(k) is not None]
    return " ".join(shown)


def scaling(runs: list[StoredRun]) -> list[Series]:
    summaries = [r for r in runs if r.status == "ok" and r.mean_speed]
    out: list[Series] = []
    for axis in AXES:
        groups: dict[str, dict[Any, list[StoredRun]]] = {}
        labels: dict[str, str] = {}
        for summary in summaries:
            config = _config(summary)
            hidden = {axis, *IGNORED, *FOLLOWS[axis]}
            rest = {k: v for k, v in config.items() if k not in hidden}
            key = json.dumps(rest, sort_keys=True, default=str)
            groups.setdefault(key, {}).setdefault(config.get(axis), []).append(summary)
            labels[key] = _label(config, axis)
        for key, by_value in groups.items():
            if len(by_value) < 2:
                continue
            ordered = sorted(by_value, key=lambda v: (str(type(v)), v if v is not None else 0))
            if axis == "staged_from":  # no staging first: the baseline tier
                ordered.sort(key=lambda v: v != "none")
            unit = next(iter(by_value.values()))[0].speed_unit
            out.append(Series(axis, labels[key], _points(axis, ordered, by_value), unit))
    return out


def _points(
    axis: str, ordered: list[Any], by_value: dict[Any, list[StoredRun]]
) -> tuple[Point, ...]:
    first = float(np.mean([s.mean_speed or 0.0 for s in by_value[ordered[0]]]))
    first_width = _relative_half_width(by_value[ordered[0]], first)
    points = []
    for value in ordered:
        runs = by_value[value]
        speeds = np.array([s.mean_speed or 0.0 for s in runs])
        mean = float(speeds.mean())
        spread = between_runs(list(speeds))
        interval = spread.ci95 if spread and spread.ci95 else runs[0].speed_ci95
        relative = mean / first
        relative_ci = None
        if value != ordered[0]:
            width = _combined(_relative_half_width(runs, mean), first_width)
            relative_ci = _around(relative, width)
        efficiency = efficiency_ci = None
        if axis in SCALING_AXES and isinstance(value, int) and isinstance(ordered[0], int):
            efficiency = scaling_efficiency(mean, value, first, ordered[0])
            scale = ordered[0] / value
            efficiency_ci = (
                (relative_ci[0] * scale, relative_ci[1] * scale) if relative_ci else None
            )
        points.append(
            Point(
                value,
                int(speeds.size),
                mean,
                standard_error(speeds),
                relative,
                efficiency,
                (float(interval[0]), float(interval[1])) if interval else None,
                sum(1 for s in runs if s.quality_verdict == "contended"),
                sum(1 for s in runs if s.quality_verdict == "noisy"),
                relative_ci,
                efficiency_ci,
                _communication_share(runs),
            )
        )
    return tuple(points)


def _relative_half_width(runs: list[StoredRun], mean: float) -> float | None:
    """Half the 95% interval of a point's speed over that speed."""
    spread = between_runs([s.mean_speed or 0.0 for s in runs])
    interval = spread.ci95 if spread and spread.ci95 else runs[0].speed_ci95
    if not interval or mean <= 0:
        return None
    return (interval[1] - interval[0]) / 2 / mean


def _combined(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return float(np.hypot(a, b))


def _around(value: float, relative_width: float | None) -> tuple[float, float] | None:
    if relative_width is None:
        return None
    return max(0.0, value * (1 - relative_width)), value * (1 + relative_width)


def _communication_share(runs: list[StoredRun]) -> float | None:
    shares = [found.communication_share for found in map(_ranks, runs) if found is not None]
    told = [share for share in shares if share is not None]
    return float(np.mean(told)) if told else None


def _ranks(run: StoredRun) -> Any:
    return stragglers(run.ranks) if run.ranks else None
