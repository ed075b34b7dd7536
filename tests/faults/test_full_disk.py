"""The disk under the database fills in the middle of a run: nothing is lost. The result goes
to a JSON file, one line says where, and ``dlbench import`` puts it back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import pytest
from fault_helpers import row, wait_for

from dlbench.store.database import Store

from conftest import cli_env, run_dlbench

DISK_BYTES = 8 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MB filesystem (tmpfs; mounting needs root, as in CI's container)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(disk)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(folder) -> None:
    """Write until the filesystem refuses another byte."""
    with open(folder / "filler", "wb", buffering=0) as filler:
        for block in (65536, 512):  # then the last partial block
            try:
                while True:
                    filler.write(b"\0" * block)
            except OSError:
                pass


@pytest.mark.slow
def test_a_disk_that_fills_during_a_run_loses_nothing(small_disk, tmp_path):
    db_path = small_disk / "dlbench.sqlite"
    state = tmp_path / "state"
    env = dict(cli_env(db_path), XDG_STATE_HOME=str(state))
    run = subprocess.Popen(
        [
            "dlbench",
            "run",
            "lenet-mnist",
            "--device",
            "cpu",
            "--steps",
            "600",
            "--warmup",
            "2",
            "--interval",
            "0.05",
            "--json",
            str(tmp_path / "summary.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(lambda: (r := row(db_path)) and r["phase_reached"] == "train", every_s=0.05)
        _fill(small_disk)
        out, err = run.communicate(timeout=300)
    finally:
        run.kill()

    assert run.returncode == 5, err  # not stored where asked: a script must know
    assert "Traceback" not in err
    assert err.count("database or disk is full") == 2  # the warning, and where the result went
    (saved,) = state.glob("dlbench/unsaved/dlbench-unsaved-*.json")
    run_id = saved.name.removeprefix("dlbench-unsaved-").removesuffix(".json")
    assert f"its result is saved in {saved}: restore it with dlbench import {saved}" in err
    assert json.loads((tmp_path / "summary.json").read_text())["run_id"] == run_id
    document = json.loads(saved.read_text())
    assert document["run"]["status"] == "ok" and len(document["steps"]) == 598
    assert document["telemetry"]  # what the store refused, kept in memory

    assert row(db_path)["status"] == "running"  # the full disk took nothing more
    (small_disk / "filler").unlink()
    imported = run_dlbench(db_path, "import", str(saved), env=env)
    assert imported.returncode == 0, imported.stderr
    assert f"imported run {run_id}" in imported.stdout
    restored = Store(str(db_path)).get_run(run_id)
    assert restored["status"] == "ok" and restored["timed_steps"] == 598
    assert restored["mean_speed"] == document["run"]["mean_speed"]
    with sqlite3.connect(db_path) as conn:
        steps = conn.execute("SELECT count(*) FROM steps WHERE run_id = ?", (run_id,)).fetchone()
        metrics = conn.execute(
            "SELECT count(*) FROM telemetry WHERE run_id = ?", (run_id,)
        ).fetchone()
    assert steps[0] == 598 and metrics[0] >= len(document["telemetry"])
    again = run_dlbench(db_path, "import", str(saved), env=env)
    assert again.returncode == 0 and "already stored" in again.stdout


def test_an_unsaved_file_into_a_fresh_database_is_a_whole_run(tmp_path, capsys):
    from dlbench.records import RunResult, StepRecord, TelemetrySample
    from dlbench.store import unsaved
    from dlbench.store.columns import result_columns

    source = Store(str(tmp_path / "gone.sqlite"))
    run_id = "20261202-000000-0000a1"
    result = RunResult(run_id=run_id, status="ok", steps=(StepRecord(0, 0, 0.01, 0.001),))
    row = {
        "run_id": run_id,
        "kind": "train",
        "created_at": "2026-12-02T00:00:00+00:00",
        "config": {"workload": "lenet-mnist"},
        "tags": {},
        "workload": "lenet-mnist",
    }
    path = unsaved.save(
        source,
        row | result_columns(result),
        result.steps,
        [TelemetrySample(0.0, 1.0, "train", "cpu.util_percent", 50.0)],
    )
    target = Store(str(tmp_path / "new.sqlite"))
    assert unsaved.import_file(target, path) is True
    assert target.get_run(run_id)["workload"] == "lenet-mnist"
    assert len(target.get_steps(run_id)) == 1 and len(target.get_samples(run_id)) == 1
    assert unsaved.import_file(target, path) is False
    os.remove(path)


def test_a_json_that_is_not_a_saved_run_is_one_line(db_path, tmp_path, capsys):
    from fault_helpers import call_main, one_line_error

    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    line = one_line_error(*call_main(capsys, "import", str(other))[::2])
    assert "is not a run dlbench saved" in line


def _run_until_training(db_path, tmp_path, steps="400"):
    env = dict(cli_env(db_path), XDG_STATE_HOME=str(tmp_path / "state"))
    run = subprocess.Popen(
        ["dlbench", "run", "lenet-mnist", "--device", "cpu", "--steps", steps, "--warmup", "2",
         "--val-batches", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    wait_for(lambda: (r := row(db_path)) and r["phase_reached"] == "train", every_s=0.05)
    return run, env


@pytest.mark.slow
@pytest.mark.parametrize("what", ["deleted", "replaced"])
def test_a_database_deleted_or_replaced_during_a_run_loses_nothing(db_path, tmp_path, what):
    """SQLite writes on into a deleted file's inode, and into another database moved in its
    place: the run notices, saves its result to a file and says so with exit code 5."""
    other = tmp_path / "other.sqlite"
    Store(str(other)).close()
    other_bytes = other.read_bytes()
    run, env = _run_until_training(db_path, tmp_path)
    try:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{db_path}{suffix}"):
                os.remove(f"{db_path}{suffix}")
        if what == "replaced":
            os.replace(other, db_path)
        out, err = run.communicate(timeout=300)
    finally:
        run.kill()
    assert run.returncode == 5, err
    assert f"was {what}" in err and "Traceback" not in err and "stored as" not in out
    (saved,) = list(db_path.parent.glob("dlbench-unsaved-*.json"))
    document = json.loads(saved.read_text())
    assert document["run"]["status"] == "ok" and len(document["steps"]) == 398
    if what == "replaced":
        assert Store(str(db_path)).count_runs() == 0  # nothing written into the other file
    fresh = tmp_path / "fresh.sqlite"
    imported = run_dlbench(fresh, "import", str(saved), env=dict(env, DLBENCH_DB=str(fresh)))
    assert imported.returncode == 0, imported.stderr
    assert Store(str(fresh)).run(document["run"]["run_id"]).timed_steps == 398
    assert other_bytes  # the replacing database was a real, empty dlbench database


def test_a_run_killed_after_training_keeps_every_timed_step(db_path, tmp_path):
    """The steps are flushed as the train phase ends, not only on the heartbeat: a child
    SIGKILLed while it validates keeps all of them."""
    import signal

    from fault_helpers import kill, pids_of

    env = cli_env(db_path)
    run = subprocess.Popen(
        ["dlbench", "run", "lenet-mnist", "--device", "cpu", "--steps", "60", "--warmup", "5",
         "--data", "digits", "--batch-size", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        found = wait_for(
            lambda: (r := row(db_path)) and r["phase_reached"] in ("validate", "infer") and r,
            every_s=0.01,
        )
        child = [p for p in pids_of(found) if p != run.pid][0]
        kill(child, signal.SIGKILL)
        run.communicate(timeout=120)
    finally:
        run.kill()
    closed = row(db_path)
    assert closed["status"] == "failed" and "died of SIGKILL" in closed["error"]
    with sqlite3.connect(db_path) as conn:
        (steps,) = conn.execute(
            "SELECT count(*) FROM steps WHERE run_id = ?", (closed["run_id"],)
        ).fetchone()
    assert steps == 55
