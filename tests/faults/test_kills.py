"""Runs and monitors killed at any moment: nothing stays ``running``, completed steps survive,
and a signal is filed as an interruption (tests/faults: each case a user or a machine did)."""

from __future__ import annotations

import glob
import os
import signal
import sys
import tempfile
import time

import pytest
from fault_helpers import (
    LONG_RUN,
    _steps,
    age_heartbeat,
    kill,
    pids_of,
    row,
    start_dlbench,
    wait_for,
    wait_for_stored_steps,
)

from dlbench.launch.local import remove_stale_temp_folders
from dlbench.store.database import Store

from conftest import dlbench_here, run_dlbench


def _launched(db_path):
    """A long run in training, with its steps reaching the store: (process, row, child pid)."""
    parent = start_dlbench(db_path, *LONG_RUN)
    found = wait_for_stored_steps(db_path)
    child = wait_for(lambda: [p for p in pids_of(row(db_path)) if p != parent.pid])[0]
    return parent, found, child


def test_parent_and_child_sigkilled_keep_their_steps_and_the_row_is_closed_lost(db_path, capsys):
    parent, found, child = _launched(db_path)
    kill(parent.pid, signal.SIGKILL)
    kill(child, signal.SIGKILL)
    parent.wait(timeout=30)
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or _zombie(child), timeout_s=30)
    run_id = found["run_id"]
    assert row(db_path)["status"] == "running"  # nobody left to close it
    age_heartbeat(db_path, run_id)  # ... until its heartbeat is old

    seen = Store(str(db_path), read_only=True).get_run(run_id)  # a reader that cannot write
    assert seen["status"] == "lost" and row(db_path)["status"] == "running"

    listed = dlbench_here(capsys, "runs")  # any command that reads runs closes it
    assert listed.returncode == 0, listed.stderr
    closed = row(db_path)
    assert closed["status"] == "lost"
    assert "last phase: train" in closed["error"] and closed["finished_at"]
    assert _steps(db_path, run_id) > 0  # every step up to the last heartbeat or so


def test_a_row_whose_processes_live_is_not_closed_however_late_its_beat(db_path):
    parent, found, _child = _launched(db_path)
    try:
        age_heartbeat(db_path, found["run_id"])
        Store(str(db_path)).close_lost_runs()
        assert row(db_path)["status"] == "running"
    finally:
        kill(parent.pid, signal.SIGINT)
        parent.wait(timeout=60)
    assert row(db_path)["status"] == "interrupted"


def test_a_child_sigkilled_in_training_keeps_its_steps(db_path):
    parent, found, child = _launched(db_path)
    kill(child, signal.SIGKILL)
    assert parent.wait(timeout=60) == 1
    closed = row(db_path)
    assert closed["status"] == "failed"
    assert "died of SIGKILL in the train phase" in closed["error"]
    assert "out-of-memory" not in closed["error"]  # no OOM kill was counted
    assert _steps(db_path, found["run_id"]) > 0


def test_the_child_stores_itself_interrupted_when_its_launcher_is_sigkilled(
    db_path, tmp_path, monkeypatch
):
    # A temporary folder of the launcher's own: another test's launch (another xdist worker)
    # would otherwise clear the stale folder this test looks for.
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    parent, found, child = _launched(db_path)
    kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=30)
    closed = wait_for(lambda: (r := row(db_path))["status"] != "running" and r, timeout_s=60)
    assert closed["status"] == "interrupted" and closed["timed_steps"] > 0
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or _zombie(child), timeout_s=30)
    left = glob.glob(os.path.join(tempfile.gettempdir(), f"dlbench-run-{parent.pid}-*"))
    assert left  # the launcher died before removing it ...
    assert remove_stale_temp_folders() >= 1  # ... and the next launch does
    assert not any(os.path.exists(path) for path in left)


def test_sigterm_during_setup_is_an_interruption(db_path):
    parent = start_dlbench(db_path, *LONG_RUN)
    wait_for(lambda: row(db_path), every_s=0.02)
    kill(parent.pid, signal.SIGTERM)
    assert parent.wait(timeout=60) == 130
    closed = row(db_path)
    assert closed["status"] == "interrupted", closed["error"]
    assert "out-of-memory" not in (closed["error"] or "")


@pytest.mark.parametrize("gap_s", [0.0, 0.05, 0.3])
def test_two_ctrl_c_during_setup_are_an_interruption(db_path, gap_s):
    """The second Ctrl-C at any moment of the first one's unwinding (it once could land
    between Typer's handling and the exit, leaving the row running)."""
    parent = start_dlbench(db_path, *LONG_RUN)
    wait_for(lambda: row(db_path), every_s=0.02)
    kill(parent.pid, signal.SIGINT)
    time.sleep(gap_s)
    kill(parent.pid, signal.SIGINT)
    assert parent.wait(timeout=60) == 130
    assert row(db_path)["status"] == "interrupted"


def test_monitor_sigkilled_is_closed_lost(db_path, capsys):
    monitor = start_dlbench(
        db_path, "monitor", "--", sys.executable, "-c", "import time; time.sleep(60)"
    )
    found = wait_for(lambda: (r := row(db_path)) and r["pids"] and len(pids_of(r)) == 2 and r)
    kill(monitor.pid, signal.SIGKILL)
    monitor.wait(timeout=30)
    command = [p for p in pids_of(found) if p != monitor.pid][0]
    kill(command, signal.SIGKILL)  # the monitored command is the user's: it is left running
    age_heartbeat(db_path, found["run_id"])
    assert dlbench_here(capsys, "runs").returncode == 0
    assert row(db_path)["status"] == "lost"


def test_monitor_sigterm_at_once_is_an_interruption(db_path):
    monitor = start_dlbench(
        db_path, "monitor", "--", sys.executable, "-c", "import time; time.sleep(60)"
    )
    wait_for(lambda: row(db_path), every_s=0.02)
    kill(monitor.pid, signal.SIGTERM)
    monitor.wait(timeout=60)
    assert row(db_path)["status"] == "interrupted"


def test_monitor_refuses_a_folder_as_its_command(db_path, tmp_path):
    done = run_dlbench(db_path, "monitor", "--", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path} is a folder, not a program (give the program to run)"
    ]
    assert "Traceback" not in done.stderr and not db_path.exists()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].startswith("Z")
    except OSError:
        return True
