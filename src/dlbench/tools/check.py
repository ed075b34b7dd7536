"""``dlbench baseline`` and ``dlbench check``: what an administrator schedules to learn whether
a node is still as fast as it was.

A baseline is a named reference: the configuration of some stored runs, their speeds and
step-time spread, and the hardware they ran on. A check reruns that configuration here (each
run a fresh process, tagged ``check=NAME``), stores the runs, and sets them against the
reference (``analysis/regression.py``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dlbench.analysis import regression
from dlbench.config import RunSpec
from dlbench.errors import ConfigError
from dlbench.launch.quiet import QuietPolicy, QuietReport
from dlbench.launch.series import SeriesRun
from dlbench.store import baselines
from dlbench.store.database import Store
from dlbench.store.stored import StoredRun

# Fields that may differ between runs of one configuration.
NOT_CONFIGURATION = {"repeat", "tags", "sweep"}
MIN_TIMED_STEPS = 2
# A name typed again at `dlbench check NAME` and shown in tables: no slash, space or newline.
BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+@-]{0,127}$")


def _configuration(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NOT_CONFIGURATION}


def step_time_cv(store: Store, run_id: str) -> float | None:
    times = np.array([s.step_time_s for s in store.get_steps(run_id)])
    if times.size < 2 or times.mean() <= 0:
        return None
    return float(times.std(ddof=1) / times.mean())


def _run_record(store: Store, summary: StoredRun, accepted: bool = False) -> dict[str, Any]:
    contended = summary.quality_verdict == "contended"
    return {
        "accepted_contended": accepted and contended,  # kept by --accept-contended
        "run_id": summary.run_id,
        "created_at": summary.created_at,
        "mean_speed": summary.mean_speed,
        "timed_steps": summary.timed_steps,
        "speed_ci95": list(summary.speed_ci95) if summary.speed_ci95 else None,
        "step_time_cv": step_time_cv(store, summary.run_id),
        "quality_verdict": summary.quality_verdict,
    }


def set_baseline(
    store: Store,
    name: str,
    run_ids: list[str],
    replace: bool = False,
    accept_contended: bool = False,
) -> dict[str, Any]:
    """Keep ``run_ids`` (runs of one configuration, ended ok, not contended unless
    ``accept_contended``: then each such run is kept marked so) as ``name``."""
    if not BASELINE_NAME.match(name):
        raise ConfigError(
            f"baseline name {name[:80]!r} is not 1 to 128 letters, digits, '_', '.', '-', "
            "'+' or '@' (starting with a letter or digit)",
            "e.g. dlbench baseline set node17-resnet50 RUN...",
        )
    summaries = [store.run(r) for r in dict.fromkeys(run_ids)]
    for s in summaries:
        if s.kind != "train" or s.status != "ok":
            raise ConfigError(
                f"run {s.run_id} is a {s.kind} run that ended {s.status}: a "
                "baseline is made of training runs that ended ok"
            )
        if (s.timed_steps or 0) < MIN_TIMED_STEPS:
            raise ConfigError(f"run {s.run_id} has fewer than {MIN_TIMED_STEPS} timed steps")
        if s.quality_verdict == "contended" and not accept_contended:
            raise ConfigError(
                f"run {s.run_id} was measured contended: a reference should come from a quiet "
                "machine",
                "rerun it with --cpus auto (the idle CPUs) or --wait-quiet SECONDS; or keep it "
                "knowingly with --accept-contended (baseline list and every check say so)",
            )
    first = _configuration(summaries[0].config)
    for s in summaries[1:]:
        other = _configuration(s.config)
        differing = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
        if differing:
            raise ConfigError(
                f"runs {summaries[0].run_id} and {s.run_id} differ in "
                f"{', '.join(differing)}: a baseline is one configuration"
            )
    record = {
        "workload": summaries[0].workload,
        "device_name": summaries[0].device_name,
        "hostname": (summaries[0].hardware or {}).get("hostname"),
        "spec": first,
        "runs": [_run_record(store, s, accept_contended) for s in summaries],
        "hardware": dict(summaries[0].hardware) if summaries[0].hardware else None,
    }
    baselines.put(store, name, record, replace=replace)
    return baselines.get(store, name)


def _reference(base: dict[str, Any]) -> list[regression.RunFigures]:
    return [
        regression.RunFigures(
            run_id=r["run_id"],
            status="ok",
            mean_speed=r.get("mean_speed"),
            timed_steps=int(r.get("timed_steps") or 0),
            step_time_cv=r.get("step_time_cv"),
            quality_verdict=r.get("quality_verdict"),
        )
        for r in base["runs"]
    ]


def check_spec(base: dict[str, Any]) -> RunSpec:
    """The baseline's configuration, validated again (the workload must still exist)."""
    try:
        return RunSpec.model_validate(base["spec"])
    except ValueError as exc:
        raise ConfigError(
            f"baseline {base['name']!r} holds a configuration this dlbench cannot run: "
            f"{str(exc).splitlines()[0]}"
        ) from exc


def run_check(
    store: Store,
    name: str,
    repeat: int = 3,
    tolerance: float = regression.DEFAULT_TOLERANCE,
    *,
    quiet: QuietPolicy | None = None,
    report: QuietReport | None = None,
    timeout_s: float | None = None,
    show_progress: bool = False,
    on_start: Callable[[SeriesRun], None] | None = None,
) -> regression.CheckResult:
    """Rerun baseline ``name`` here ``repeat`` times, store the runs, and judge them."""
    from dlbench.api import run_repeats

    if repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    if not 0 <= tolerance < 1:
        raise ConfigError("--tolerance must be a fraction from 0 to 1 (0.05 is 5%)")
    base = baselines.get(store, name)
    spec = check_spec(base)
    outcomes = run_repeats(
        spec,
        store,
        repeat,
        tags={"check": name},
        quiet=quiet,
        report=report,
        timeout_s=timeout_s,
        show_progress=show_progress,
        on_start=on_start,
    )
    summaries = [store.run(o.run_id) for o in outcomes]
    new = [regression.figures(s, step_time_cv(store, s.run_id)) for s in summaries]
    hardware = next((s.hardware for s in summaries if s.hardware), None) or {}
    warnings = regression.hardware_differences(base.get("hardware") or {}, hardware)
    if warnings:
        warnings = ["this machine differs from the baseline's: " + "; ".join(warnings)]
    accepted = [r["run_id"] for r in base["runs"] if r.get("accepted_contended")]
    if accepted:
        warnings.append(
            f"the baseline's run(s) {', '.join(accepted)} were measured contended and kept "
            "knowingly (--accept-contended): it may be slower than this machine really was, "
            "so a pass or an improvement here proves less"
        )
    result = regression.decide(name, _reference(base), new, tolerance, warnings)
    return dataclasses.replace(result, unit=summaries[0].speed_unit if summaries else "img/s")
