"""Four processes writing runs at once lose nothing (SQLite and PostgreSQL); dlbench import
merges another machine's database."""

import subprocess
import sys

import pytest

from dlbench.records import RunResult, SpeedStats, StepRecord, TelemetrySample
from dlbench.store.database import Store

from conftest import cli_env

WRITERS, RUNS_EACH = 4, 25


@pytest.fixture
def store(backend_store):
    """Each store test runs on SQLite and on PostgreSQL."""
    return backend_store


WRITER = """
import sys
from dlbench.records import RunResult, StepRecord
from dlbench.store.database import Store


store = Store(sys.argv[1])
for i in range(int(sys.argv[3])):
    run_id = f"w{sys.argv[2]}-{i:03d}"
    store.create_run(run_id, "train", {"workload": "mlp-mnist"}, workload="mlp-mnist")
    steps = tuple(StepRecord(s, 0, 0.01, 0.001) for s in range(20))
    store.finish_run(RunResult(run_id=run_id, status="ok", steps=steps))
"""


def test_four_processes_writing_at_once_lose_no_run(backend_url):
    Store(backend_url).close()  # the schema exists before the race, as after any first run
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, backend_url, str(w), str(RUNS_EACH)])
        for w in range(WRITERS)
    ]
    assert [w.wait(timeout=300) for w in writers] == [0] * WRITERS
    store = Store(backend_url)
    runs = store.list_runs()
    assert len(runs) == WRITERS * RUNS_EACH and {r["status"] for r in runs} == {"ok"}
    assert all(len(store.get_steps(r["run_id"])) == 20 for r in runs[:: RUNS_EACH // 5])
    store.close()


def _stored_run(store, run_id):
    store.create_run(run_id, "train", {"workload": "lenet-mnist"}, workload="lenet-mnist")
    speed = SpeedStats(3, 0.1, 0.1, 0.1, 10.0, 10.0, 9.0, 11.0, 0.5, 0.2, 0.0, 0.0)
    steps = tuple(StepRecord(i, 0, 0.1, 0.0) for i in range(3))
    store.finish_run(RunResult(run_id=run_id, status="ok", speed=speed, steps=steps))
    store.add_samples(
        run_id, [TelemetrySample(i, 1e9 + i, "train", "cpu.util_percent", i) for i in range(5)]
    )


def test_import_merges_runs_with_their_steps_and_telemetry_once(store, tmp_path):
    other = Store(str(tmp_path / "laptop.sqlite"))
    a, b = "20260101-000000-00000a", "20260101-000000-00000b"
    for run_id in (a, b):
        _stored_run(other, run_id)
    here = store
    _stored_run(here, a)  # already here: not duplicated
    assert here.import_from(other) == (1, 1)
    assert here.import_from(other) == (0, 2)
    assert sorted(r["run_id"] for r in here.list_runs()) == [a, b]
    assert len(here.get_steps(b)) == 3 and len(here.get_samples(b)) == 5
    assert here.get_run(b)["mean_speed"] == 10.0
    other.close()


def test_import_from_the_command_line(db_path, tmp_path):
    other = Store(str(tmp_path / "cluster.sqlite"))
    _stored_run(other, "20260101-000000-0000ff")
    done = subprocess.run(
        ["dlbench", "import", str(tmp_path / "cluster.sqlite")],
        capture_output=True,
        text=True,
        env=cli_env(db_path),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "imported 1 run(s)" in done.stdout
    missing = subprocess.run(
        ["dlbench", "import", str(tmp_path / "nowhere.sqlite")],
        capture_output=True,
        text=True,
        env=cli_env(db_path),
        timeout=120,
    )
    assert missing.returncode == 2 and "no results database at" in missing.stderr


def test_import_copies_operator_measurements_once(store, tmp_path):
    from dlbench.store import operators as stored_ops
    from dlbench.store.merge import import_operators

    gpu = Store(str(tmp_path / "gpu.sqlite"))
    rows = [
        {"device_name": "H200", "kind": "linear", "precision": "fp32", "calls": 5,
         "shape": {"rows": n, "in_features": 64, "out_features": 64}, "train_s": n * 1e-6}
        for n in (1, 2, 3)
    ]  # fmt: skip
    stored_ops.add(gpu, rows)
    assert import_operators(store, gpu) == 3
    assert import_operators(store, gpu) == 0
    copied = stored_ops.table(store, "H200")
    assert sorted(copied["train_s"]) == [1e-6, 2e-6, 3e-6]
    assert copied["shape"].iloc[0] == {"rows": 1, "in_features": 64, "out_features": 64}
    gpu.close()


def _open_when_told(path, barrier, answers):
    barrier.wait()
    try:
        Store(path).close()
        answers.put("ok")
    except Exception as exc:  # noqa: BLE001 - the answer is what the test reads
        answers.put(repr(exc))


def test_processes_opening_a_new_database_together_all_open_it(tmp_path):
    """Runs of a sweep, or the nodes of a run, that open a database nobody has created yet:
    SQLite refuses a journal-mode change at once while another process makes the file, so
    each must wait its turn instead of failing with 'database is locked'."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # Store imported once, here
    failures = []
    for trial in range(20):
        path = str(tmp_path / f"t{trial}" / "results.sqlite")
        (tmp_path / f"t{trial}").mkdir()
        barrier, answers = context.Barrier(4), context.Queue()
        openers = [
            context.Process(target=_open_when_told, args=(path, barrier, answers))
            for _ in range(4)
        ]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(timeout=60)
        failures += [a for a in (answers.get(timeout=10) for _ in openers) if a != "ok"]
    assert not failures, failures
