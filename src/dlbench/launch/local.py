"""Run one benchmark in a child process and close it in the store however the child ends.

The parent records the run as ``running`` before the child starts and beats its heartbeat
while the child lives. The child stores its own result; if it dies first (a segfault, SIGKILL
from the out-of-memory killer, a timeout) the parent closes the run with the exit signal, the
phase it had reached and any fault traceback. Ctrl-C and SIGTERM are forwarded once, so the
child can store ``interrupted`` with the steps it completed; a second Ctrl-C kills it. The
child gets SIGTERM if the parent dies, and a parent killed outright leaves a temporary folder
that the next launch removes.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from dlbench.config import RunSpec
from dlbench.errors import StoreError
from dlbench.launch import get_launcher
from dlbench.launch.oom import oom_kills
from dlbench.records import EXIT_CODES
from dlbench.store.database import Store
from dlbench.store.liveness import Heartbeat

CHILD_MODULE = "dlbench.runner.child"
CRASH_TAIL_CHARS = 1500
TEMP_PREFIX = "dlbench-run-"
PR_SET_PDEATHSIG = 1
STATUS_OF_EXIT = {code: status for status, code in EXIT_CODES.items()}


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
    unsaved_path: str | None = None  # the store could not take the result: it is in this file


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
        **{**spec.columns(), "run_key": run_key or spec.run_key},
    )
    try:
        return _launch(spec, run_id, store, show_progress, timeout_s, on_start)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM before the run's process started
        with shielded():  # a second Ctrl-C must not leave the row running
            store.end_unfinished(
                run_id, "interrupted", "interrupted before the run's process started"
            )
        raise


def _launch(
    spec: RunSpec,
    run_id: str,
    store: Store,
    show_progress: bool,
    timeout_s: float | None,
    on_start: Callable[[int], None] | None,
) -> LaunchOutcome:
    remove_stale_temp_folders()
    heartbeat = Heartbeat(store, run_id, warn=False)  # the run's process says if it fails

    def started(pid: int) -> None:
        heartbeat.pids = [os.getpid(), pid]
        heartbeat.beat()
        heartbeat.start()
        if on_start:
            on_start(pid)

    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        payload = Path(tmp) / "payload.json"
        crash_file = Path(tmp) / "fault.txt"
        marker = Path(tmp) / "unsaved.txt"
        payload.write_text(
            json.dumps(
                {
                    "spec": spec.model_dump(mode="json"),
                    "run_id": run_id,
                    "db": store.url,
                    "crash_file": str(crash_file),
                    "unsaved_marker": str(marker),
                    "progress": show_progress,
                }
            )
        )
        oom_before = oom_kills()
        try:
            ended = supervise(child_command(spec, payload), timeout_s, on_start=started)
        finally:
            heartbeat.stop()
        crash_tail = _tail(crash_file)
        unsaved_path = marker.read_text() if marker.exists() else None
    interrupted = ended.signals_forwarded > 0 and not ended.timed_out
    if unsaved_path:
        status = STATUS_OF_EXIT.get(ended.returncode, "failed")
        return LaunchOutcome(run_id, status, ended.returncode, interrupted, unsaved_path)
    status = _close_if_unfinished(store, run_id, ended, oom_before, crash_tail)
    return LaunchOutcome(run_id, status, ended.returncode, interrupted)


@contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM ignored while a run's row is being closed."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def remove_stale_temp_folders() -> int:
    """Remove the temporary folders of launchers that died without removing theirs (a
    SIGKILL): ``dlbench-run-<pid>-*`` whose pid is gone. How many were removed."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid_text = folder.name.removeprefix(TEMP_PREFIX).split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def child_command(spec: RunSpec, payload: Path) -> list[str]:
    """The run's process, or with --gpus N, torchrun starting N of them on this node."""
    return get_launcher(spec)(spec, payload)


def single_process(spec: RunSpec, payload: Path) -> list[str]:
    """The ``local`` launcher: the run in one child process."""
    return [sys.executable, "-m", CHILD_MODULE, str(payload)]


def torchrun(spec: RunSpec, payload: Path) -> list[str]:
    """The ``torchrun`` launcher: ``spec.gpus`` processes on this node, one per GPU (gloo
    workers on the CPU), rank 0 storing the run."""
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
    forwarded: list[int] = []
    started: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        # First signal to the run's process alone (not its input workers), so that it stores
        # what it has. A second one means it is not listening: kill its whole group. One that
        # comes while the process starts is passed on as soon as it exists.
        if started and forwarded:
            _signal_group(started[0].pid, signal.SIGKILL)
        elif started:
            _signal_process(started[0].pid, signum)
        forwarded.append(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        child = subprocess.Popen(
            command,
            stdin=stdin,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()) if reap_group else None,
        )
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    started.append(child)
    if forwarded:
        _signal_process(child.pid, forwarded[0])
    if on_start:
        on_start(child.pid)
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


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """For the child, between fork and exec: SIGTERM it when this process dies (Linux), so
    that an orphaned run stores itself interrupted instead of training on unseen."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


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
    store: Store, run_id: str, ended: Ended, oom_before: int | None, crash_tail: str
) -> str:
    try:
        run = store.get_run(run_id)
        if run["status"] in ("running", "lost"):
            status, message = classify_exit(ended, oom_before)
            where = f" in the {run['phase_reached']} phase" if run.get("phase_reached") else ""
            error = f"{message}{where}"
            if crash_tail:
                error += f"; fault report: {crash_tail}"
            store.end_unfinished(run_id, status, error)
            return status
        if ended.timed_out and run["status"] == "interrupted":
            # Our SIGTERM at the time limit: the child stored its steps as interrupted.
            store.relabel(run_id, "timeout", f"the run passed its time limit ({run['error']})")
            return "timeout"
        return str(run["status"])
    except StoreError as exc:
        status = classify_exit(ended, oom_before)[0]
        print(
            f"dlbench: run {run_id} could not be closed as {status}: {exc.one_line()}",
            file=sys.stderr,
        )
        return status


def classify_exit(ended: Ended, oom_before: int | None) -> tuple[str, str]:
    returncode = ended.returncode
    if ended.timed_out:
        return "timeout", "the run passed its time limit and was stopped"
    if ended.signals_forwarded or returncode == EXIT_CODES["interrupted"]:
        # Ctrl-C or SIGTERM before the run could store anything, or a second Ctrl-C.
        return "interrupted", "interrupted before it stored its result"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        oom_after = oom_kills()
        if oom_before is not None and oom_after is not None and oom_after > oom_before:
            return "oom", f"killed by {name}: the kernel's out-of-memory killer stopped it"
        return "failed", f"the run's process died of {name}"
    return "failed", f"the run's process exited with code {returncode} before storing a result"


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return " | ".join(text[-CRASH_TAIL_CHARS:].splitlines())
