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

import dataclasses
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from dlbench.config import RunSpec
from dlbench.errors import StoreError
from dlbench.launch import get_launcher, node_watch
from dlbench.launch.node_watch import NodeWatch, PeerFailures, RunClosed, WatchPlan
from dlbench.launch.nodes import JoinError, Placement, meet
from dlbench.launch.oom import oom_kills
from dlbench.launch.supervise import Ended, shielded, supervise
from dlbench.records import EXIT_CODES
from dlbench.runner.payload import RunPayload, TrainPayload
from dlbench.store.database import Store
from dlbench.store.liveness import Heartbeat
from dlbench.sysinfo import node_name

CHILD_MODULE = "dlbench.runner.child"
CRASH_TAIL_CHARS = 1500
TEMP_PREFIX = "dlbench-run-"
STATUS_OF_EXIT = {code: status for status, code in EXIT_CODES.items()}
CLOSE_WAIT_S = 120  # another node waits this long for node 0 to close a failed run


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
    placement: Placement | None = None,
) -> LaunchOutcome:
    """Run ``spec`` in a child process; the run is in ``store`` from start to end.
    ``run_key`` identifies it in its sweep (default: the hash of its spec); ``on_start`` gets
    the child's pid as soon as it exists. With ``placement``, this node's share of a run over
    several nodes: node 0 stores the run, another takes part in it (``join_run``)."""
    payload = TrainPayload(spec=spec, progress=show_progress)

    def command(path: Path) -> list[str]:
        return child_command(spec, path, placement)

    if placement is not None and placement.node_rank > 0:
        watch = WatchPlan(spec.interval, spec.device.startswith("cuda")) if spec.telemetry else None
        return join_run(store, placement, payload, command, timeout_s, spec.gpus, watch)
    store.create_run(
        run_id,
        "generate" if kind == "train" and spec.generates else kind,
        spec.model_dump(mode="json"),
        **{**spec.columns(), "run_key": run_key or spec.run_key},
    )
    return launch_supervised(run_id, store, payload, command, timeout_s, on_start, placement)


def launch_supervised(
    run_id: str,
    store: Store,
    payload: RunPayload,
    command: Callable[[Path], list[str]],
    timeout_s: float | None = None,
    on_start: Callable[[int], None] | None = None,
    placement: Placement | None = None,
) -> LaunchOutcome:
    """Start ``command`` (given its payload file) for the run ``run_id``, already recorded
    as running, and close the run however its process ends. With ``placement`` (node 0 of a
    run over several nodes), the nodes meet first: one that never comes fails the run."""
    try:
        if placement is not None:
            waiting = Heartbeat(store, run_id, warn=False).start()  # alive while nodes join
            try:
                meet(placement, run_id)
            except JoinError as exc:
                store.end_unfinished(run_id, "failed", f"the nodes did not meet: {exc.one_line()}")
                return LaunchOutcome(run_id, "failed", EXIT_CODES["failed"])
            finally:
                waiting.stop()
        return _launch(run_id, store, payload, command, timeout_s, on_start, placement)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM before the run's process started
        with shielded():  # a second Ctrl-C must not leave the row running
            store.end_unfinished(
                run_id, "interrupted", "interrupted before the run's process started"
            )
        raise


def join_run(
    store: Store,
    placement: Placement,
    payload: RunPayload,
    command: Callable[[Path], list[str]],
    timeout_s: float | None,
    processes_per_node: int,
    watch: WatchPlan | None = None,
) -> LaunchOutcome:
    """Node K > 0 of a run over several nodes: meet node 0 (which gives the run's id), start
    this node's processes, watch them (``watch``: telemetry and other work, judged), and add
    to the run what ended them if they failed, and this node's verdict. The run itself is
    node 0's to store."""
    run_id, _ = meet(placement, None)
    ranks = placement.ranks(processes_per_node)
    node = node_name()
    where = f"node {placement.node_rank} ({node}, ranks {ranks[0]}-{ranks[-1]})"
    watcher = NodeWatch(store, run_id, node, watch) if watch is not None else None
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        path = Path(tmp) / "payload.json"
        payload.placed(run_id, store.url, str(Path(tmp) / "fault.txt"), None).write(path)
        closed = RunClosed(store, run_id)

        def started(pid: int) -> None:
            closed.start(pid)
            if watcher is not None:
                watcher.start(pid)

        try:
            ended = supervise(command(path), timeout_s, on_start=started)
        finally:
            closed.stop()
            quality = watcher.stop() if watcher is not None else None
    interrupted = ended.signals_forwarded > 0 and not ended.timed_out
    status, message = ("ok", "") if ended.returncode == 0 else classify_exit(ended, None)
    if closed.said is not None and ended.returncode != 0:
        status, message = _closed_status(store, run_id), closed.said
    elif ended.returncode != 0 and _closed_status(store, run_id) == "ok":
        # Node 0 stored the result, every rank's steps in it, before these processes failed:
        # they failed tearing down (a peer already gone). The result stands.
        print(
            f"dlbench: run {run_id}: {where}: {message} after node 0 had stored the run; "
            "its result stands",
            file=sys.stderr,
        )
        status, ended = "ok", dataclasses.replace(ended, returncode=0)
    said = f"{where}: {message}"
    try:
        if ended.returncode != 0:
            store.add_error(run_id, said)  # node 0 reads it, and stops its own processes
        _wait_closed(store, run_id)
        if ended.returncode != 0 and said not in (store.get_run(run_id).get("error") or ""):
            store.add_error(run_id, said)  # rank 0 stored its own error over it
        if quality is not None:
            store.add_node_quality(run_id, where, quality)
    except StoreError as exc:
        print(f"dlbench: run {run_id}: {exc.one_line()}", file=sys.stderr)
    return LaunchOutcome(run_id, status, ended.returncode, interrupted)


def _closed_status(store: Store, run_id: str) -> str:
    """The status node 0 closed the run with (``failed`` if it cannot be read)."""
    try:
        return str(store.get_run(run_id)["status"])
    except StoreError:
        return "failed"


def _wait_closed(store: Store, run_id: str, timeout_s: float = CLOSE_WAIT_S) -> None:
    """Until node 0 has closed the run, or ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if store.get_run(run_id)["status"] not in ("running", "lost"):
            return
        time.sleep(0.5)


def _launch(
    run_id: str,
    store: Store,
    payload_fields: RunPayload,
    command: Callable[[Path], list[str]],
    timeout_s: float | None,
    on_start: Callable[[int], None] | None,
    placement: Placement | None = None,
) -> LaunchOutcome:
    remove_stale_temp_folders()
    heartbeat = Heartbeat(store, run_id, warn=False)  # the run's process says if it fails
    peers = PeerFailures(store, run_id) if placement is not None else None
    # Stored, the run's processes only tear down: one stuck there (destroy_process_group on a
    # peer that already exited) would hold the launcher for the backend's 300 s timeout.
    closed = RunClosed(store, run_id, grace_s=node_watch.CLOSED_GRACE_S, closer="its rank 0")

    def started(pid: int) -> None:
        heartbeat.pids = [os.getpid(), pid]
        heartbeat.beat()
        heartbeat.start()
        closed.start(pid)
        if peers is not None:
            peers.start(pid)
        if on_start:
            on_start(pid)

    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        payload = Path(tmp) / "payload.json"
        crash_file = Path(tmp) / "fault.txt"
        marker = Path(tmp) / "unsaved.txt"
        payload_fields.placed(run_id, store.url, str(crash_file), str(marker)).write(payload)
        oom_before = oom_kills()
        try:
            ended = supervise(command(payload), timeout_s, on_start=started)
        finally:
            heartbeat.stop()
            closed.stop()
            if peers is not None:
                peers.stop()
        if closed.said is not None:
            print(f"dlbench: run {run_id}: {closed.said}", file=sys.stderr)
        crash_tail = _tail(crash_file)
        unsaved_path = marker.read_text() if marker.exists() else None
    interrupted = ended.signals_forwarded > 0 and not ended.timed_out
    if unsaved_path:
        status = STATUS_OF_EXIT.get(ended.returncode, "failed")
        return LaunchOutcome(run_id, status, ended.returncode, interrupted, unsaved_path)
    status = _close_if_unfinished(store, run_id, ended, oom_before, crash_tail)
    if peers is not None and peers.said is not None:
        status = _failed_on_another_node(store, run_id, peers.said)
    return LaunchOutcome(run_id, status, ended.returncode, interrupted)


def _failed_on_another_node(store: Store, run_id: str, said: str) -> str:
    """The run ended because another node's processes failed: failed, that node's words
    first (node 0's own processes were stopped, and may have stored interrupted)."""
    try:
        own = store.get_run(run_id).get("error") or ""
        own = own.replace(f"; {said}", "").replace(said, "").strip("; ")  # said once, first
        tail = f"; node 0 stopped its processes then ({own})" if own else ""
        store.relabel(run_id, "failed", said + tail)
    except StoreError as exc:
        print(f"dlbench: run {run_id}: {exc.one_line()}", file=sys.stderr)
    return "failed"


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


def child_command(spec: RunSpec, payload: Path, placement: Placement | None = None) -> list[str]:
    """The run's process, or with --gpus N, torchrun starting N of them on this node (on
    each node of a run over several)."""
    return get_launcher(spec)(spec, payload, placement)


def single_process(spec: RunSpec, payload: Path, placement: Placement | None = None) -> list[str]:
    """The ``local`` launcher: the run in one child process."""
    return [sys.executable, "-m", CHILD_MODULE, str(payload)]


def torchrun(spec: RunSpec, payload: Path, placement: Placement | None = None) -> list[str]:
    """The ``torchrun`` launcher: ``spec.gpus`` processes on this node, one per GPU (gloo
    workers on the CPU), or on each node of ``placement``; rank 0 stores the run."""
    where = (
        placement.torchrun_args(spec.gpus)
        if placement is not None
        else ["--standalone", f"--nproc-per-node={spec.gpus}"]
    )
    return [sys.executable, "-m", "torch.distributed.run", *where, "-m", CHILD_MODULE, str(payload)]


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
