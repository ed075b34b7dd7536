"""``dlbench scaling``: speed over GPU counts (with efficiency), staging tiers and batch sizes.

Runs that differ only in the axis (and their repeat) form a series; a series needs two or more
values of the axis. Speed is the mean over repeats, with its standard error across them and a
95% interval: Student's t across the repeats, or a single run's own interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlbench.measure.stats import between_runs, standard_error
from dlbench.store.stored import StoredRun

AXES = {"gpus": "GPUs", "staged_from": "staged from", "batch_size": "batch size"}
IGNORED = {"repeat", "tags", "sweep", "seed", "checkpoint", "stage_to"}


@dataclass(frozen=True)
class Point:
    value: Any
    runs: int
    mean_speed: float
    speed_stderr: float | None  # across repeats
    relative: float  # speed / the series' first point
    efficiency: float | None  # gpus: speed(N) / (N x speed(first N) / first N)
    speed_ci95: tuple[float, float] | None = None  # never below 0
    contended: int = 0  # of the runs, measured contended
    noisy: int = 0


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
    return config


def _label(config: dict[str, Any], axis: str) -> str:
    keys = ("workload", "device", "precision", "gpus", "batch_size", "staged_from")
    return " ".join(f"{k}={config[k]}" for k in keys if k != axis and config.get(k) is not None)


def scaling(runs: list[StoredRun]) -> list[Series]:
    summaries = [r for r in runs if r.status == "ok" and r.mean_speed]
    out: list[Series] = []
    for axis in AXES:
        groups: dict[str, dict[Any, list[StoredRun]]] = {}
        labels: dict[str, str] = {}
        for summary in summaries:
            config = _config(summary)
            rest = {k: v for k, v in config.items() if k != axis and k not in IGNORED}
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
    points = []
    for value in ordered:
        runs = by_value[value]
        speeds = np.array([s.mean_speed or 0.0 for s in runs])
        mean = float(speeds.mean())
        stderr = standard_error(speeds)
        spread = between_runs(list(speeds))
        interval = spread.ci95 if spread and spread.ci95 else runs[0].speed_ci95
        efficiency = None
        if axis == "gpus" and isinstance(value, int) and isinstance(ordered[0], int):
            efficiency = scaling_efficiency(mean, value, first, ordered[0])
        points.append(
            Point(
                value,
                int(speeds.size),
                mean,
                stderr,
                mean / first,
                efficiency,
                (float(interval[0]), float(interval[1])) if interval else None,
                sum(1 for s in runs if s.quality_verdict == "contended"),
                sum(1 for s in runs if s.quality_verdict == "noisy"),
            )
        )
    return tuple(points)
