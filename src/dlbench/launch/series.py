"""Runs one after another, each in its own process and stored: the loop behind ``dlbench run``
(with ``--repeat``), sweeps, calibration, ``check`` and the quick start.

Each run gets the quiet check (``launch/quiet.py``) and then ``run_local``: a crash, a kill or
an out-of-memory error costs that run only, and it is stored as such. Ctrl-C (or SIGTERM) stops
the run in progress, which stores what it measured, and then the loop: no further run starts,
and ``KeyboardInterrupt`` reaches the caller, with everything done so far already stored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dlbench.config import RunSpec
from dlbench.launch.cpus import pinned
from dlbench.launch.local import LaunchOutcome, new_run_id, run_local
from dlbench.launch.nodes import Placement
from dlbench.launch.quiet import QuietGate, QuietPolicy, QuietReport, SilentReport
from dlbench.store.database import Store
from dlbench.telemetry.nvml import nvml_indices


@dataclass(frozen=True)
class SeriesRun:
    """One run of a series; ``run_key`` identifies it in its sweep (default: its spec's)."""

    spec: RunSpec
    run_key: str | None = None
    run_id: str = field(default_factory=new_run_id)


def run_gpus(spec: RunSpec) -> tuple[int, ...]:
    """The NVML indices of the GPUs ``spec`` will train on (empty on the CPU)."""
    if not spec.device.startswith("cuda"):
        return ()
    first = int(spec.device.partition(":")[2] or 0)
    return nvml_indices(list(range(first, first + spec.gpus)))


def run_one(
    item: SeriesRun | RunSpec,
    store: Store,
    *,
    timeout_s: float | None = None,
    quiet: QuietPolicy | None = None,
    report: QuietReport | None = None,
    show_progress: bool = False,
    gpus: tuple[int, ...] | None = None,
    on_begin: Callable[[], None] | None = None,
    placement: Placement | None = None,
) -> LaunchOutcome:
    """On the CPUs ``--cpus`` chose, the quiet check, then the run in its own process; stored
    whatever happens. ``on_begin`` is called once the check has let the run start. Whether the
    user stopped it is in the outcome (``interrupted``)."""
    run = item if isinstance(item, SeriesRun) else SeriesRun(item)
    said = report or SilentReport()
    gate = QuietGate(quiet or QuietPolicy(), said, run_gpus(run.spec) if gpus is None else gpus)
    with pinned(run.spec.cpus, said.warn):
        gate.before()
        if on_begin:
            on_begin()
        try:
            outcome = run_local(
                run.spec,
                run.run_id,
                store,
                show_progress=show_progress,
                timeout_s=timeout_s,
                run_key=run.run_key,
                on_start=gate.on_start,
                placement=placement,
            )
        finally:
            gate.finish()
    return outcome


def run_series(
    items: Iterable[SeriesRun | RunSpec],
    store: Store,
    *,
    timeout_s: float | None = None,
    quiet: QuietPolicy | None = None,
    report: QuietReport | None = None,
    show_progress: bool = False,
    on_start: Callable[[SeriesRun], None] | None = None,
    on_end: Callable[[SeriesRun, LaunchOutcome], None] | None = None,
    placement: Placement | None = None,
) -> list[LaunchOutcome]:
    """Every run of ``items`` in turn (a lazy iterable may decide the next run from the last)."""
    outcomes = []
    for item in items:
        run = item if isinstance(item, SeriesRun) else SeriesRun(item)
        # said once the quiet check lets it start: a refused run is never announced
        begin = functools.partial(on_start, run) if on_start else None
        outcome = run_one(
            run,
            store,
            timeout_s=timeout_s,
            quiet=quiet,
            report=report,
            show_progress=show_progress,
            on_begin=begin,
            placement=placement,
        )
        outcomes.append(outcome)
        if on_end:
            on_end(run, outcome)
        if outcome.interrupted:  # the user stopped it: no further run starts
            raise KeyboardInterrupt
    return outcomes
