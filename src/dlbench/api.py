"""The library calls behind the CLI: check a run fully before it starts, then launch it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dlbench import datasets, staging
from dlbench.config import RunSpec
from dlbench.engines import DeviceInfo, get_engine
from dlbench.errors import ConfigError
from dlbench.launch.local import LaunchOutcome, new_run_id
from dlbench.launch.quiet import QuietPolicy, QuietReport
from dlbench.launch.series import SeriesRun, run_one, run_series
from dlbench.store import Store
from dlbench.workloads import get_workload


def preflight_device(spec: RunSpec) -> DeviceInfo:
    """The framework, device and precision exist here, or one clear error."""
    engine = get_engine(spec.framework)
    device = engine.resolve_device(spec.device)
    engine.check_precision(device, spec.precision)
    return device


def preflight(spec: RunSpec, store: Store) -> DeviceInfo:
    """Everything that can be checked before a run starts, so that bad input stores nothing:
    the database is writable, the framework and device exist, the data can be read."""
    store.check_writable()
    device = preflight_device(spec)
    workload = get_workload(spec.workload)
    assert spec.dataset is not None
    data = spec.data
    if data not in (datasets.SYNTHETIC, datasets.DIGITS):
        data = staging.expand(data)
    datasets.check(
        data,
        workload.data_format,
        spec.dataset,
        spec.input_shape,
        spec.num_classes,
        workload.num_classes,
    )
    check_output_folders(spec)
    return device


def check_output_folders(spec: RunSpec) -> None:
    """A --checkpoint that could not be written fails now, not after the training."""
    if spec.checkpoint is not None:
        writable_folder(Path(spec.checkpoint).expanduser().parent, "--checkpoint")


def writable_folder(folder: Path, option: str) -> None:
    """``folder`` exists and takes files, or one clear error."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"{option}: {folder} {what}", "give a path in an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}: cannot write into {folder}", "give a writable folder")


REPEAT_TAG = "repeat_group"  # the first run's id, on every run of one --repeat


def run_benchmark(
    spec: RunSpec,
    store: Store,
    *,
    show_progress: bool = False,
    timeout_s: float | None = None,
    quiet: QuietPolicy | None = None,
    report: QuietReport | None = None,
) -> LaunchOutcome:
    """Preflight, then run ``spec`` in its own process; the result is in ``store``."""
    preflight(spec, store)
    return run_one(
        spec, store, timeout_s=timeout_s, quiet=quiet, report=report, show_progress=show_progress
    )


def repeat_runs(spec: RunSpec, count: int, tags: dict[str, str] | None = None) -> list[SeriesRun]:
    """``count`` runs of ``spec``, each its own process, tagged as one group of repeats."""
    first = new_run_id()
    group = {**spec.tags, **(tags or {}), REPEAT_TAG: first}
    return [
        SeriesRun(
            spec.model_copy(update={"repeat": index, "tags": group}),
            run_id=first if index == 0 else new_run_id(),
        )
        for index in range(count)
    ]


def run_repeats(
    spec: RunSpec,
    store: Store,
    count: int,
    *,
    show_progress: bool = False,
    timeout_s: float | None = None,
    quiet: QuietPolicy | None = None,
    report: QuietReport | None = None,
    tags: dict[str, str] | None = None,
    on_start: Callable[[SeriesRun], None] | None = None,
) -> list[LaunchOutcome]:
    """Preflight once, then ``count`` repeats of ``spec``, each in a fresh process: repeats
    are where most of the variation between measurements is."""
    preflight(spec, store)
    return run_series(
        repeat_runs(spec, count, tags),
        store,
        timeout_s=timeout_s,
        quiet=quiet,
        report=report,
        show_progress=show_progress,
        on_start=on_start,
    )
