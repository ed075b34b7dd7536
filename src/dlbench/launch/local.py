"""Run one benchmark in a child process and close it in the store however the child ends.

The parent records the run as ``running`` before the child starts. The child stores its own
result; if it dies first (a segfault, SIGKILL from the out-of-memory killer, a timeout) the
parent closes the run with the exit signal, the phase it had reached and any fault traceback.
Ctrl-C and SIGTERM are forwarded once, so the child can store ``interrupted`` with the steps
it completed; a second Ctrl-C kills it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from dlbench.config import RunSpec
from dlbench.store import Store

CHILD_MODULE = "dlbench.launch.child"
EXIT_CODES = {"ok": 0, "failed": 1, "oom": 3, "timeout": 4, "interrupted": 130}
CRASH_TAIL_CHARS = 1500
CGROUP_EVENTS = Path("/sys/fs/cgroup/memory.events")


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LaunchOutcome:
    run_id: str
    status: str
    returncode: int
    interrupted: bool = False  # the user's Ctrl-C or SIGTERM stopped it: a caller looping
    # over runs (sweep, calibrate) must stop too, not start the next one


def run_local(
    spec: RunSpec,
    run_id: str,
    store: Store,
    *,
    show_progress: bool = False,
    timeout_s: float | None = None,
    kind: str = "train",
    run_key: str | None = None,
    on_start: Callable[[int], None] | None = None,
) -> LaunchOutcome:
    """Run ``spec`` in a child process; the run is in ``store`` from start to end.
    ``run_key`` identifies it in its sweep (default: the hash of its spec); ``on_start`` gets
    the child's pid as soon as it exists."""
    store.create_run(
        run_id,
        kind,
        spec.model_dump(mode="json"),
        workload=spec.workload,
        framework=spec.framework,
        device=spec.device,
        batch_size=spec.batch_size,
        precision=spec.precision,
        data=spec.data,
        dataset=spec.dataset,
        sweep=spec.sweep,
        run_key=run_key or spec.run_key,
        staged_from=spec.stage_from,
        num_gpus=spec.gpus,
    )
    with tempfile.TemporaryDirectory(prefix="dlbench-run-") as tmp:
        payload = Path(tmp) / "payload.json"
        crash_file = Path(tmp) / "fault.txt"
        payload.write_text(
            json.dumps(
                {
                    "spec": spec.model_dump(mode="json"),
                    "run_id": run_id,
                    "db": store.url,
                    "crash_file": str(crash_file),
                    "progress": show_progress,
                }
            )
        )
        oom_before = oom_kills()
        ended = supervise(child_command(spec, payload), timeout_s, on_start=on_start)
        crash_tail = _tail(crash_file)
    status = _close_if_unfinished(
        store, run_id, ended.returncode, ended.timed_out, oom_before, crash_tail
    )
    interrupted = ended.signals_forwarded > 0 and not ended.timed_out
    return LaunchOutcome(run_id, status, ended.returncode, interrupted)


def child_command(spec: RunSpec, payload: Path) -> list[str]:
    """The run's process, or with --gpus N, torchrun starting N of them on this node."""
    if spec.gpus == 1:
        return [sys.executable, "-m", CHILD_MODULE, str(payload)]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={spec.gpus}",
        "-m",
        CHILD_MODULE,
        str(payload),
    ]


@dataclass(frozen=True)
class Ended:
    """How a supervised process ended."""

    returncode: int  # negative: killed by that signal
    timed_out: bool
    signals_forwarded: int  # Ctrl-C / SIGTERM passed on to it


def supervise(
    command: list[str],
    timeout_s: float | None = None,
    on_start: Callable[[int], None] | None = None,
    reap_group: bool = True,
    stdin: int | None = subprocess.DEVNULL,
) -> Ended:
    """Run ``command`` in its own process group, forwarding Ctrl-C and SIGTERM, and wait.

    ``on_start`` gets the pid as soon as the process exists. With ``reap_group``, whatever the
    process left running in its group (input workers of a run) is killed at the end.
    """
    child = subprocess.Popen(command, stdin=stdin, start_new_session=True)
    if on_start:
        on_start(child.pid)
    forwarded: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        # First signal to the run's process alone (not its input workers), so that it stores
        # what it has. A second one means it is not listening: kill its whole group.
        if forwarded:
            _signal_group(child.pid, signal.SIGKILL)
        else:
            _signal_process(child.pid, signum)
        forwarded.append(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    timed_out = False
    try:
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _signal_process(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if reap_group:
            _signal_group(child.pid, signal.SIGKILL)  # stray workers of the run, if any
    return Ended(child.returncode, timed_out, len(forwarded))


def _signal_process(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _close_if_unfinished(
    store: Store,
    run_id: str,
    returncode: int,
    timed_out: bool,
    oom_before: int | None,
    crash_tail: str,
) -> str:
    run = store.get_run(run_id)
    if run["status"] == "running":
        status, message = classify_exit(returncode, timed_out, oom_before)
        where = f" in the {run['phase_reached']} phase" if run.get("phase_reached") else ""
        error = f"{message}{where}"
        if crash_tail:
            error += f"; fault report: {crash_tail}"
        store.end_unfinished(run_id, status, error)
        return status
    if timed_out and run["status"] == "interrupted":
        # Our SIGTERM at the time limit: the child stored its steps as interrupted.
        store.relabel(run_id, "timeout", f"the run passed its time limit ({run['error']})")
        return "timeout"
    return str(run["status"])


def classify_exit(returncode: int, timed_out: bool, oom_before: int | None) -> tuple[str, str]:
    if timed_out:
        return "timeout", "the run passed its time limit and was stopped"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        oom_after = oom_kills()
        if oom_before is not None and oom_after is not None and oom_after > oom_before:
            return "oom", f"killed by {name}: the kernel's out-of-memory killer stopped it"
        hint = " (the kernel's out-of-memory killer sends this)" if name == "SIGKILL" else ""
        return "failed", f"the run's process died of {name}{hint}"
    return "failed", f"the run's process exited with code {returncode} before storing a result"


def oom_kills() -> int | None:
    """The cgroup's count of out-of-memory kills, where cgroup v2 exposes it."""
    try:
        for line in CGROUP_EVENTS.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return " | ".join(text[-CRASH_TAIL_CHARS:].splitlines())
