"""The library calls behind the CLI (check a run fully before it starts, then launch it), and
the Python API for notebooks: ``dlbench.open_store()`` and ``dlbench.run()``.

    import dlbench
    store = dlbench.open_store("results/dlbench.sqlite")
    runs = store.runs(workload="resnet50", status="ok")       # list[StoredRun]
    steps = store.steps(runs[0].run_id)                       # pandas.DataFrame, one row a step
    cpu = store.telemetry(runs[0].run_id, ["cpu.util_percent"])
    run = dlbench.run("lenet-mnist", device="cpu", steps=60)  # as `dlbench run` does
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlbench import datasets
from dlbench.config import RunSpec, build_spec
from dlbench.engines import DeviceInfo, get_engine
from dlbench.errors import ConfigError, EngineUnavailable, require
from dlbench.launch import cpus
from dlbench.launch.local import LaunchOutcome, new_run_id
from dlbench.launch.nodes import Placement
from dlbench.launch.quiet import QuietPolicy, QuietReport
from dlbench.launch.series import SeriesRun, run_one, run_series
from dlbench.runner import staging
from dlbench.store.database import Store
from dlbench.store.stored import StoredRun
from dlbench.workloads import get_workload

if TYPE_CHECKING:
    import pandas as pd


def preflight_device(spec: RunSpec) -> DeviceInfo:
    """The framework, device and precision exist here, or one clear error."""
    if spec.framework == "pytorch" and spec.device in ("cpu", "auto"):
        from dlbench.engines.pytorch.devices import checked_cpu, no_gpu_driver

        if spec.device == "cpu" or no_gpu_driver():  # no torch here: the run imports it
            return checked_cpu(spec.precision)
    engine = get_engine(spec.framework)
    device = engine.resolve_device(spec.device)
    engine.check_precision(device, spec.precision)
    if device.kind == "cuda" and spec.gpus > 1:
        from dlbench.engines.pytorch.distributed import gpus_here

        here = gpus_here()
        if spec.gpus > here:
            option = "--gpus-per-node" if spec.nodes else "--gpus"
            raise EngineUnavailable(
                f"{option} {spec.gpus}: this node has {here} GPU(s)",
                f"give {option} {here} at most (one process per GPU)",
            )
    return device


def check_metrics_port(spec: RunSpec) -> None:
    """--metrics-port can be listened on (the run's process listens once it starts)."""
    if spec.metrics_port is None:
        return
    from dlbench.telemetry.prometheus import check_listen

    check_listen(spec.metrics_host, spec.metrics_port, "--metrics-port")


def preflight(spec: RunSpec, store: Store) -> DeviceInfo:
    """Everything that can be checked before a run starts, so that bad input stores nothing:
    the database is writable, the framework and device exist, the data can be read."""
    store.check_writable()
    check_metrics_port(spec)
    cpus.check(spec.cpus)
    device = preflight_device(spec)
    workload = get_workload(spec.workload)
    if workload.task == "detect":
        require("pycocotools", "detection", f"{spec.workload} (its mAP)")
    assert spec.dataset is not None
    data = spec.data
    if data not in datasets.BUILT_IN:
        data = staging.expand(data)
    if spec.stage_from is not None and spec.stage_to is not None:
        staging.check_plan(spec.data, spec.stage_from, spec.stage_to)  # moves --data, no harm
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
        writable_file(Path(spec.checkpoint), "--checkpoint")


SYSTEM_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))
SQLITE_MAGIC = b"SQLite format 3\0"


def writable_file(
    path: Path, option: str, may_replace: Callable[[bytes], bool] | None = None
) -> None:
    """``path`` can be written, new or replacing a file, or one clear error before any work:
    its folder exists and takes files; it is not a folder, a device or a system file; it is
    not a database (never overwritten); ``may_replace`` judges an existing file's first KiB."""
    target = path.expanduser()
    real = target.resolve()
    if any(real == d or d in real.parents for d in SYSTEM_FOLDERS):
        raise ConfigError(f"{option}: {path} is a system file, not a place for dlbench's output")
    writable_folder(real.parent, option)
    if real.is_dir():
        raise ConfigError(f"{option}: {path} is a folder", "give the path of a file in it")
    if not real.exists():
        return
    if not real.is_file():
        raise ConfigError(f"{option}: {path} is not a regular file")
    if not os.access(real, os.W_OK):
        raise ConfigError(f"{option}: cannot write {path}", "give a file you may write")
    with real.open("rb") as handle:
        head = handle.read(1024)
    if head.startswith(SQLITE_MAGIC):
        raise ConfigError(
            f"{option}: {path} is a SQLite database; dlbench never writes over one",
            "give another file name",
        )
    if may_replace is not None and not may_replace(head):
        raise ConfigError(
            f"{option}: {path} exists and is not what this command writes; it is left as it is",
            "remove it first, or give another file name",
        )


def writable_folder(folder: Path, option: str) -> None:
    """``folder`` exists and takes files, or one clear error."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"{option}: {folder} {what}", "give a path in an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}: cannot write into {folder}", "give a writable folder")


class Results:
    """A results database as a notebook reads it: typed runs, steps and telemetry as
    DataFrames. ``store`` is the underlying Store for anything else."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"<dlbench results {self.store.describe()}: {self.store.count_runs()} run(s)>"

    def runs(self, limit: int | None = None, **filters: Any) -> list[StoredRun]:
        """Runs, newest first; ``filters`` match columns exactly (``workload="resnet50"``,
        ``status="ok"``, ``sweep=...``, ``device=...``), ``tags={...}`` a subset of tags."""
        return self.store.runs(limit, **filters)

    def run(self, run_id: str) -> StoredRun:
        """One run by id or unique prefix."""
        return self.store.run(run_id)

    def steps(self, run_id: str) -> pd.DataFrame:
        """One row per timed step: step, epoch, step_time_s, data_wait_s."""
        import pandas as pd

        rows = [dataclasses.asdict(s) for s in self.store.get_steps(self.run(run_id).run_id)]
        return pd.DataFrame(rows, columns=["step", "epoch", "step_time_s", "data_wait_s"])

    def telemetry(self, run_id: str, metrics: list[str] | None = None) -> pd.DataFrame:
        """One row per reading: t_s (seconds since sampling began), wall (Unix time), phase,
        metric, value; all metrics or those named."""
        import pandas as pd

        samples = self.store.get_samples(self.run(run_id).run_id, metrics)
        return pd.DataFrame(
            [dataclasses.asdict(s) for s in samples],
            columns=["t_s", "wall", "phase", "metric", "value"],
        )


def open_store(url_or_path: str | Path | None = None) -> Results:
    """An existing results database (a path or SQLAlchemy URL; default ``DLBENCH_DB`` or
    results/dlbench.sqlite). A missing one is a StoreError, never created."""
    return Results(Store(None if url_or_path is None else str(url_or_path), create=False))


def run(
    workload: str,
    *,
    db: str | Path | None = None,
    timeout_s: float | None = None,
    **options: Any,
) -> StoredRun:
    """Run a benchmark exactly as ``dlbench run`` does (its own process, stored in ``db``)
    and return it. ``options`` are RunSpec's fields: ``device="cpu"``, ``steps=60``,
    ``batch_size=64``, ``precision="amp-bf16"``, ``tags={"note": "x"}``, ..."""
    spec = build_spec(workload=workload, **options)
    if timeout_s is not None and not 0 < timeout_s < float("inf"):
        raise ConfigError("timeout_s must be a positive, finite number of seconds")
    store = Store(None if db is None else str(db))
    outcome = run_benchmark(spec, store, timeout_s=timeout_s)
    if outcome.unsaved_path:
        from dlbench.store import unsaved

        return StoredRun.from_row(unsaved.load(Path(outcome.unsaved_path))["run"])
    return store.run(outcome.run_id)


def stored_run(store: Store, outcome: LaunchOutcome) -> StoredRun:
    """The run an outcome names, from the store; ``ResultNotStored`` when its result went to
    a saved-run file instead (a series of runs stops there: the store takes no more)."""
    if outcome.unsaved_path:
        from dlbench.errors import ResultNotStored

        raise ResultNotStored(outcome.run_id, outcome.unsaved_path)
    return store.run(outcome.run_id)


REPEAT_TAG = "repeat_group"  # the first run's id, on every run of one --repeat


def run_benchmark(
    spec: RunSpec,
    store: Store,
    *,
    show_progress: bool = False,
    timeout_s: float | None = None,
    quiet: QuietPolicy | None = None,
    report: QuietReport | None = None,
    placement: Placement | None = None,
) -> LaunchOutcome:
    """Preflight, then run ``spec`` in its own process; the result is in ``store``. With
    ``placement``, this node's part of a run over several nodes."""
    preflight(spec, store)
    return run_one(
        spec,
        store,
        timeout_s=timeout_s,
        quiet=quiet,
        report=report,
        show_progress=show_progress,
        placement=placement,
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
    on_end: Callable[[SeriesRun, LaunchOutcome], None] | None = None,
    placement: Placement | None = None,
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
        on_end=on_end,
        placement=placement,
    )
