"""Running a sweep's runs: what to skip on resume, the checks before anything starts, one run
(shared by the local executor and each Slurm job), its JSON result file, the summary."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from dlbench.analysis.scaling import scaling_efficiency
from dlbench.api import new_run_id, preflight, preflight_device, stored_run, writable_folder
from dlbench.config import RunSpec
from dlbench.errors import ConfigError
from dlbench.launch.nodes import Placement
from dlbench.launch.quiet import QuietPolicy, QuietReport
from dlbench.launch.series import SeriesRun, run_one, run_series
from dlbench.records import FINAL_STATUSES
from dlbench.store.database import Store
from dlbench.store.stored import StoredRun
from dlbench.sweep.executors import SweepEvents
from dlbench.sweep.file import Sweep, SweepRun


@dataclass(frozen=True)
class Planned:
    run: SweepRun
    skip_reason: str | None  # None: it runs


def plan(sweep: Sweep, store: Store, resume: bool, retry_failed: bool) -> list[Planned]:
    """Which runs execute. With --resume a run already ``ok`` is skipped, and so is one that
    ended otherwise (oom is a result too) unless --retry-failed asks for it again."""
    stored: dict[str, list[str]] = {}
    if resume or retry_failed:
        for found in store.runs(sweep=sweep.name):
            stored.setdefault(found.run_key or "", []).append(found.status)
    planned = []
    for run in sweep.runs:
        statuses = stored.get(run.key, [])
        reason = None
        if "ok" in statuses:
            reason = "already ok"
        elif not retry_failed and any(s in FINAL_STATUSES for s in statuses):
            last = next(s for s in statuses if s in FINAL_STATUSES)
            reason = f"stored as {last} (--retry-failed reruns it)"
        planned.append(Planned(run, reason))
    return planned


def check(sweep: Sweep, store: Store | None, planned: list[Planned], local: bool) -> None:
    """Every check that can fail fast, before any run starts: database, devices, precisions,
    data (locally; a Slurm job's node may see other paths, so there only the options)."""
    if local:
        _check_results_folder(sweep.results_dir)
    seen: set[tuple[Any, ...]] = set()
    for item in planned:
        spec = item.run.spec
        key: tuple[Any, ...] = (spec.device, spec.precision, spec.data, spec.dataset)
        key += (spec.workload, spec.num_classes, spec.image_size, spec.seq_len, spec.checkpoint)
        if item.skip_reason or key in seen:
            continue
        seen.add(key)
        if local and store is not None:
            preflight(spec, store)
        else:
            _ = spec.run_key  # options were validated when the sweep was expanded


def _check_results_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"results: cannot make the folder {folder} ({exc.strerror or exc})",
            "give the sweep file's results: a folder that can be written",
        ) from None
    writable_folder(folder, "results")


def resolve_batch(run: SweepRun, device_kind: str, timeout_s: float | None) -> RunSpec | None:
    """The run's spec with ``batch_size: max`` replaced by the largest batch that trains
    (None when not even batch 1 fits)."""
    if not run.max_batch:
        return run.spec
    from dlbench.tools.maxbatch import find_max_batch
    from dlbench.workloads import get_workload

    start = get_workload(run.spec.workload).default_batch_size
    found = find_max_batch(run.spec, device_kind, start=start, timeout_s=timeout_s)
    if found.max_batch_size is None:
        return None
    return run.spec.model_copy(update={"batch_size": found.max_batch_size})


def _prepare(run: SweepRun, store: Store, timeout_s: float | None) -> tuple[SeriesRun | None, str]:
    """The run to launch (``batch_size: max`` resolved first), and its id. When not even
    batch 1 fits, the run is stored ``oom`` here and there is nothing to launch."""
    device = preflight_device(run.spec)
    spec = resolve_batch(run, device.kind, timeout_s)
    if spec is not None:
        prepared = SeriesRun(spec, run_key=run.key)
        return prepared, prepared.run_id
    return None, store_unstarted(store, run, "oom", "batch_size max: not even batch 1 fits")


def store_unstarted(store: Store, run: SweepRun, status: str, error: str) -> str:
    """A run of the sweep that never started (not even batch 1 fits; its Slurm job died
    first), stored under its key with why, so that nothing is lost; its run id."""
    run_id = new_run_id()
    store.record_unstarted(
        run_id,
        "train",
        run.spec.model_dump(mode="json"),
        status,
        error,
        **{**run.spec.columns(), "run_key": run.key},
    )
    return run_id


def _finish(
    run: SweepRun, store: Store, run_id: str, results_dir: Path | None, gpu_type: str
) -> StoredRun:
    stored = store.run(run_id)
    if results_dir is not None:
        write_result_file(results_dir, stored.to_dict(), run, gpu_type)
    return stored


def execute_one(
    run: SweepRun,
    store: Store,
    timeout_s: float | None,
    results_dir: Path | None,
    gpu_type: str,
    quiet: QuietPolicy | None = None,
    report: QuietReport | None = None,
    placement: Placement | None = None,
) -> dict[str, Any]:
    """One run of a sweep (a Slurm job's), in its own process, stored; its summary (and JSON
    file). With ``placement``, node 0's part of a run over several nodes."""
    prepared, run_id = _prepare(run, store, timeout_s)
    outcome = None
    if prepared is not None:
        outcome = run_one(
            prepared, store, timeout_s=timeout_s, quiet=quiet, report=report, placement=placement
        )
    stored = _finish(run, store, run_id, results_dir, gpu_type)
    if outcome is not None and outcome.interrupted:
        raise KeyboardInterrupt  # the job was stopped: say so to its caller
    return stored.to_dict()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "none"


def write_result_file(folder: Path, summary: dict[str, Any], run: SweepRun, gpu_type: str) -> Path:
    """``YYYY-MM-DD-<gpu type>:<gpus>:<staged from>[-rN]``, as the original PSC scripts named
    their results; a second combination with the same name gets its run key appended."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = _slug(run.spec.stage_from or "none")
    # GPUs per node, and the node count before them over several nodes: 2x4 is 8 GPUs.
    gpus = f"{run.spec.nodes}x{run.spec.gpus}" if run.spec.nodes else str(run.spec.gpus)
    name = f"{date.today():%Y-%m-%d}-{_slug(gpu_type)}:{gpus}:{staged}"
    if run.spec.repeat:
        name += f"-r{run.spec.repeat}"
    text = json.dumps({**summary, "run_key": run.key}, indent=2, default=str) + "\n"
    plain, keyed = folder / f"{name}.json", folder / f"{name}-{run.key[:8]}.json"
    try:  # created exclusively: two Slurm jobs finishing at once never share a file
        with plain.open("x") as handle:
            handle.write(text)
        return plain
    except FileExistsError:
        pass
    target = plain if _run_key_of(plain) == run.key else keyed  # this run again: replaced
    target.write_text(text)
    return target


def _run_key_of(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("run_key")
    except (OSError, ValueError, AttributeError):
        return None  # being written by another job, or not a result file


def archive(folder: Path) -> int:
    """Move the result files already in ``folder`` into ``folder/archived`` (the record of
    submitted jobs stays: running jobs are still followed)."""
    if not folder.is_dir():
        return 0
    target = folder / "archived"
    moved = 0
    for path in sorted(p for p in folder.glob("*.json") if p.name != "jobs.json"):
        target.mkdir(exist_ok=True)
        shutil.move(str(path), target / path.name)
        moved += 1
    return moved


def gpu_type_of(sweep: Sweep, spec: RunSpec) -> str:
    if sweep.file.slurm and sweep.file.slurm.gres_type:
        return sweep.file.slurm.gres_type
    return spec.device


def run_locally(
    sweep: Sweep,
    store: Store,
    planned: list[Planned],
    on_start: Callable[[SweepRun], None] | None = None,
    on_end: Callable[[SweepRun, StoredRun], None] | None = None,
    quiet: QuietPolicy | None = None,
    report: QuietReport | None = None,
) -> list[StoredRun]:
    """The local executor: each run in its own process, one after another (the series loop);
    a run that crashes, is killed or runs out of memory is stored as such and the sweep goes
    on; Ctrl-C stops the sweep after the run in progress is stored."""
    summaries: list[StoredRun] = []
    launched: dict[str, SweepRun] = {}

    def done(run: SweepRun, run_id: str) -> None:
        summary = _finish(run, store, run_id, sweep.results_dir, gpu_type_of(sweep, run.spec))
        summaries.append(summary)
        if on_end:
            on_end(run, summary)

    def runs() -> Iterator[SeriesRun]:
        for item in planned:
            if item.skip_reason:
                continue
            if on_start:
                on_start(item.run)
            prepared, run_id = _prepare(item.run, store, sweep.file.timeout)
            if prepared is None:
                done(item.run, run_id)
                continue
            launched[prepared.run_id] = item.run
            yield prepared

    run_series(
        runs(),
        store,
        timeout_s=sweep.file.timeout,
        quiet=quiet,
        report=report,
        on_end=lambda series_run, outcome: done(
            launched[series_run.run_id], stored_run(store, outcome).run_id
        ),
    )
    return summaries


@dataclass(frozen=True)
class SweepRow:
    """The newest stored run of one combination, as the sweep's table shows it."""

    run: StoredRun
    label: str
    gpus: int | None
    scaling_efficiency: float | None = None  # speed(N) / (N x speed(1)), where both exist


def sweep_table_rows(sweep: Sweep, store: Store) -> list[SweepRow]:
    """The sweep's stored runs (latest per key), with scaling efficiency where the 1-GPU run
    of the same configuration exists: speed(N) / (N x speed(1))."""
    latest: dict[str, StoredRun] = {}
    for stored in store.runs(sweep=sweep.name):
        latest.setdefault(stored.run_key or stored.run_id, stored)  # newest first
    by_key = {run.key: run for run in sweep.runs}
    found = [(by_key.get(key), stored) for key, stored in latest.items()]
    single: dict[tuple[Any, ...], float] = {}
    for run, stored in found:
        if run and run.spec.processes == 1 and stored.mean_speed:
            single[_group(run.spec)] = stored.mean_speed
    rows = []
    for run, stored in found:
        base = single.get(_group(run.spec)) if run else None
        efficiency = None
        if run and base and stored.mean_speed and run.spec.processes > 1:  # 1: the reference
            efficiency = scaling_efficiency(stored.mean_speed, run.spec.processes, base)
        label = run.label if run else stored.run_id
        gpus = run.spec.processes if run else stored.num_gpus
        rows.append((run, SweepRow(stored, label, gpus, efficiency)))
    order = {run.key: i for i, run in enumerate(sweep.runs)}
    rows.sort(key=lambda pair: order.get(pair[0].key if pair[0] else "", len(order)))
    return [row for _, row in rows]


def _group(spec: RunSpec) -> tuple[Any, ...]:
    # Same per-GPU batch and everything else; only the GPU and node counts (and the repeat)
    # differ.
    fields = spec.model_dump(mode="json", exclude={"gpus", "nodes", "repeat", "tags"})
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in fields.items()))


class LocalExecutor:
    """Every run here, one after another, each in its own process (``run_locally``)."""

    local = True

    def run(self, sweep: Sweep, store: Store, planned: list[Planned], events: SweepEvents) -> None:
        run_locally(
            sweep, store, planned, events.on_start, events.on_end, events.quiet, events.report
        )
