"""The Slurm executor: each run of a sweep is one batch job, submitted through submitit.

The job runs the same code as the local executor (the run in its own process inside the job,
stored in the shared database, a JSON result file in the sweep's results folder). The
submissions are recorded in ``<results>/<sweep>/jobs.json`` so that ``dlbench sweep status``
and ``dlbench sweep collect`` can follow them later (``--no-wait``). Job states come from
``squeue``/``scontrol``: sacct needs accounting storage, which many small clusters lack. A job
that dies before it could store its run (cancelled, node failure, time limit while queued) is
stored by ``collect`` as failed with Slurm's state and the end of its log: nothing is lost.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlbench.errors import DlbenchError, require
from dlbench.launch.local import run_local
from dlbench.launch.nodes import placement
from dlbench.store.database import Store
from dlbench.sweep.execute import Planned, execute_one, gpu_type_of, store_unstarted
from dlbench.sweep.executors import SweepEvents
from dlbench.sweep.file import SlurmOptions, Sweep, SweepRun

ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED"}
POLL_S = 2.0
WAIT_MARGIN_S = 300.0  # beyond the jobs' own time limits, before waiting gives up
LOG_TAIL_CHARS = 600


@dataclass(frozen=True)
class Submitted:
    key: str
    label: str
    job_id: str
    folder: str
    submitted_at: str


def job_main(run: SweepRun, db: str, timeout_s: float | None, results: str, gpu: str) -> dict:
    """What a Slurm job runs (pickled by submitit): the run, stored, and its result file.
    Over several nodes srun starts it once per node: node 0 stores, the others take part."""
    where = placement(run.spec.nodes, None, None, None) if (run.spec.nodes or 1) > 1 else None
    if where is not None and where.node_rank > 0:
        outcome = run_local(run.spec, "", Store(db), timeout_s=timeout_s, placement=where)
        return {"run_id": outcome.run_id, "status": outcome.status, "node": where.node_rank}
    return execute_one(run, Store(db), timeout_s, Path(results), gpu, placement=where)


def _parameters(options: SlurmOptions, gpus: int, name: str, nodes: int = 1) -> dict[str, Any]:
    """submitit's parameters of one run's job. Over several nodes: one task per node, each
    started by srun, each a dlbench that starts its node's processes (launch/nodes.py)."""
    per_node = options.gpus_per_node if options.gpus_per_node is not None else gpus
    nodes = options.nodes or nodes
    params: dict[str, Any] = {"job_name": name, "time": options.time, "use_srun": nodes > 1}
    if nodes > 1:
        params.update(nodes=nodes, ntasks_per_node=1)
    if options.exclusive:
        params["exclusive"] = True
    if options.constraint:
        params["constraint"] = options.constraint
    if options.partition:
        params["partition"] = options.partition
    if options.mem:
        params["mem"] = options.mem
    if options.cpus_per_task:
        params["cpus_per_task"] = options.cpus_per_task
    if options.account:
        params["account"] = options.account
    if per_node and options.gres_type:
        params["gres"] = f"gpu:{options.gres_type}:{per_node}"
    elif per_node and options.gpus_per_node is not None:
        params["gpus_per_node"] = per_node
    if options.extra:
        params["additional_parameters"] = dict(options.extra)
    return params


def state_file(sweep: Sweep) -> Path:
    return sweep.results_dir / "jobs.json"


def read_submissions(sweep: Sweep) -> list[Submitted]:
    path = state_file(sweep)
    if not path.exists():
        return []
    return [Submitted(**item) for item in json.loads(path.read_text())]


def submit(sweep: Sweep, store: Store, planned: list[Planned]) -> list[Submitted]:
    """Submit every planned run as a job; record the submissions; return them."""
    if shutil.which("sbatch") is None:
        raise DlbenchError(
            "--executor slurm: sbatch is not on PATH",
            "run on a Slurm login node, or --executor local",
        )
    import submitit

    options = sweep.file.slurm or SlurmOptions()
    stamp = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    # A fresh folder per submission: Slurm job ids restart with a fresh cluster state, and an
    # old result file must never be read as a new job's.
    folder = sweep.results_dir / "submitit" / stamp
    executor = submitit.SlurmExecutor(folder=folder)
    done = read_submissions(sweep)
    for item in planned:
        if item.skip_reason:
            continue
        run = item.run
        executor.update_parameters(
            **_parameters(options, run.spec.gpus, f"dlbench-{sweep.name}", run.spec.nodes or 1)
        )
        try:
            job = executor.submit(
                job_main,
                run,
                store.url,
                sweep.file.timeout,
                str(sweep.results_dir),
                gpu_type_of(sweep, run.spec),
            )
        except Exception as exc:  # noqa: BLE001 - submitit's and subprocess's, one line
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
            raise DlbenchError(
                f"sbatch did not take the job of {run.label}: {reason}",
                f"the jobs submitted before it are recorded (dlbench sweep status "
                f"{sweep.path}); check the file's slurm: options and the cluster (sinfo)",
            ) from exc
        done.append(Submitted(run.key, run.label, str(job.job_id), str(folder), _now()))
        _write_submissions(sweep, done)
    return done


def _write_submissions(sweep: Sweep, submissions: list[Submitted]) -> None:
    path = state_file(sweep)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps([asdict(s) for s in submissions], indent=2))
    temporary.replace(path)  # atomic: a crash never leaves half a file


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def job_states(job_ids: list[str]) -> dict[str, str]:
    """Slurm's state of each job (``GONE`` once it has left squeue's memory)."""
    if not job_ids:
        return {}
    states = {job: "GONE" for job in job_ids}
    try:
        out = subprocess.run(
            ["squeue", "-h", "--states=all", "-j", ",".join(job_ids), "-o", "%i|%T"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DlbenchError(f"cannot ask Slurm for job states: {exc}") from exc
    for line in out.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job in states:
            states[job] = state
    return states


def wait(
    sweep: Sweep,
    submissions: list[Submitted],
    on_poll: Callable[[dict[str, str]], None] | None = None,
) -> dict[str, str]:
    """Until every job has left the queue, or their time limits and a margin have passed."""
    options = sweep.file.slurm or SlurmOptions()
    deadline = time.monotonic() + options.time * 60 * max(1, len(submissions)) + WAIT_MARGIN_S
    ids = [s.job_id for s in submissions]
    while True:
        states = job_states(ids)
        if on_poll:
            on_poll(states)
        if not any(state in ACTIVE_STATES for state in states.values()):
            return states
        if time.monotonic() > deadline:
            raise DlbenchError(
                f"sweep {sweep.name}: jobs still queued or running after the wait limit",
                f"follow them with dlbench sweep status {sweep.path}",
            )
        time.sleep(POLL_S)


def collect(sweep: Sweep, store: Store) -> list[tuple[Submitted, str, str | None]]:
    """(submission, Slurm state, stored status) of each job; a finished job without a stored
    run gets one, marked failed with Slurm's state and its log's end."""
    submissions = read_submissions(sweep)
    states = job_states([s.job_id for s in submissions])
    stored = {run.run_key: run.status for run in store.runs(sweep=sweep.name)}
    by_key = {run.key: run for run in sweep.runs}
    report = []
    for sub in submissions:
        state = states.get(sub.job_id, "GONE")
        status = stored.get(sub.key)
        if status is None and state not in ACTIVE_STATES and sub.key in by_key:
            tail = _log_tail(Path(sub.folder), sub.job_id)
            run_id = store_unstarted(
                store,
                by_key[sub.key],
                "failed",
                f"Slurm job {sub.job_id} ended {state} before storing its "
                f"run{': ' + tail if tail else ''}",
            )
            status = store.run(run_id).status
        report.append((sub, state, status))
    return report


def _log_tail(folder: Path, job_id: str) -> str:
    for name in (f"{job_id}_0_log.err", f"{job_id}_log.err"):
        path = folder / name
        if path.exists():
            text = path.read_text(errors="replace").strip()
            return " | ".join(text[-LOG_TAIL_CHARS:].splitlines()[-5:])
    return ""


def status(sweep: Sweep, store: Store) -> list[tuple[Submitted, str, str | None]]:
    """(submission, Slurm state, stored status) of each job, changing nothing."""
    submissions = read_submissions(sweep)
    states = job_states([s.job_id for s in submissions])
    stored = {r.run_key: r.status for r in store.runs(sweep=sweep.name)}
    return [(s, states.get(s.job_id, "GONE"), stored.get(s.key)) for s in submissions]


class SlurmExecutor:
    """One batch job per run; waits for them (unless told not to) and stores what a job that
    died first could not."""

    local = False

    def __init__(self) -> None:
        require("submitit", "slurm", "--executor slurm")

    def run(self, sweep: Sweep, store: Store, planned: list[Planned], events: SweepEvents) -> None:
        submissions = submit(sweep, store, planned)
        events.say(
            f"submitted {sum(1 for p in planned if not p.skip_reason)} job(s); "
            f"follow with dlbench sweep status {sweep.path}"
        )
        if events.wait:
            wait(sweep, submissions)
            collect(sweep, store)
