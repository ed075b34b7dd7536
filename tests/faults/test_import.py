"""``dlbench import`` of crafted files and databases: each is refused in one line naming the
field, before anything is written; a row that readers cannot use never reaches them, and one
that another program put in the store is left out with a warning instead of breaking them."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from fault_helpers import call_main, one_line_error

from dlbench.records import RunResult, SpeedStats, StepRecord, TelemetrySample
from dlbench.store import unsaved
from dlbench.store.database import Store

RUN_ID = "20260101-000000-abcdef"


def _finished(store, run_id=RUN_ID):
    store.create_run(run_id, "train", {"workload": "lenet-mnist", "tags": {}},
                     workload="lenet-mnist", device="cpu", batch_size=8)  # fmt: skip
    speed = SpeedStats(3, 0.1, 0.1, 0.1, 80.0, 80.0, 70.0, 90.0, 0.5, 0.2, 0.0, 0.0, (75.0, 85.0))
    steps = tuple(StepRecord(i, 0, 0.1, 0.0) for i in range(3))
    store.finish_run(RunResult(run_id=run_id, status="ok", speed=speed, steps=steps))
    samples = [TelemetrySample(i, 1e9 + i, "train", "cpu.util_percent", 50.0) for i in range(4)]
    store.add_samples(run_id, samples)
    return store.get_run(run_id), list(steps), samples


@pytest.fixture
def saved(tmp_path):
    """A run saved to a file as a full disk leaves it, read back as JSON to be tampered with."""
    other = Store(str(tmp_path / "elsewhere" / "db.sqlite"))
    row, steps, samples = _finished(other)
    path = unsaved.save(other, row, steps, samples)
    other.close()
    return path, json.loads(path.read_text())


def _write(path, document):
    path.write_text(json.dumps(document))
    return path


def _nothing_written(db_path):
    return not db_path.exists() or Store(str(db_path)).count_runs() == 0


RUN_FIELDS = {
    "tags that are a string": ("tags", "x", "tags: Input should be a valid dictionary"),
    "a result that is a list": ("result", [1], "result: Input should be a valid dictionary"),
    "a config that is a string": ("config", "s", "config: Input should be a valid dictionary"),
    "no run id": ("run_id", None, "run_id: Field required"),
    "an integer run id": ("run_id", 7, "run_id: Input should be a valid string"),
    "a run id with ../": ("run_id", "../../etc", "run_id: String should match pattern"),
    "a status that does not exist": ("status", "great", "status: Input should be 'running'"),
    "a kind that does not exist": ("kind", "rootkit", "kind: Input should be 'train'"),
    "a 1 MB workload name": ("workload", "w" * 2**20, "workload: String should have at most 64"),
    "a NaN speed": ("mean_speed", float("nan"), "mean_speed: Input should be a finite number"),
    "a garbage time": ("created_at", "yesterday", "created_at: not an ISO 8601 time"),
    "the year 9999": ("heartbeat_at", "9999-01-01T00:00:00+00:00", "not a time between 2000"),
    "a heartbeat of 1e12 s": ("heartbeat_s", 1e12, "heartbeat_s: Input should be less than"),
    "pid 1": ("pids", [[1, 0.0]], "pids.0.0: Input should be greater than 1"),
    "quality reasons that are numbers": (
        "result",
        {"quality": {"verdict": "clean", "reasons": [1]}, "speed": {"mean_speed": "fast"}},
        "cannot be read: mean_speed",
    ),
    "a document nested 100 deep": (
        "config",
        {"a": json.loads("[" * 100 + "]" * 100)},
        "nests deeper than 64 levels",  # the whole file is refused before its fields
    ),
}


@pytest.mark.parametrize("case", RUN_FIELDS, ids=str)
def test_a_crafted_saved_run_is_refused_naming_its_field(db_path, tmp_path, capsys, saved, case):
    path, document = saved
    field, value, expected = RUN_FIELDS[case]
    if value is None:
        document["run"].pop(field)
    else:
        document["run"][field] = value
    line = one_line_error(*call_main(capsys, "import", str(_write(path, document)))[::2])
    assert expected in line and str(path) in line, line
    assert _nothing_written(db_path)


@pytest.mark.parametrize(
    "part,value,expected",
    [
        ("steps", "all of them", "steps is a list, not a str"),
        ("steps", ["fast"], "step 1: itself: Input should be a valid dictionary"),
        (
            "steps",
            [{"step": 0, "epoch": 0, "step_time_s": "x", "data_wait_s": 0}],
            "step 1: step_time_s: Input should be a valid number",
        ),  # fmt: skip
        (
            "telemetry",
            [{"metric": "m", "wall": 1.0, "phase": "train", "value": 1.0}],
            "telemetry row 1: t_s: Field required",
        ),  # fmt: skip
        (
            "telemetry",
            [{"metric": "m", "t_s": "1", "wall": 1, "phase": "p", "value": 1}],
            "telemetry row 1: t_s: Input should be a valid",
        ),  # fmt: skip
    ],
)
def test_crafted_steps_and_telemetry_are_refused(db_path, capsys, saved, part, value, expected):
    path, document = saved
    document[part] = value
    line = one_line_error(*call_main(capsys, "import", str(_write(path, document)))[::2])
    assert expected in line, line
    assert _nothing_written(db_path)


def test_json_nested_100000_deep_is_refused_in_one_line(db_path, tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    line = one_line_error(*call_main(capsys, "import", str(path))[::2])
    assert "nests deeper than 64 levels" in line
    assert _nothing_written(db_path)


@pytest.mark.parametrize("kind", ["link to /dev/zero", "folder", "not UTF-8"])
def test_a_saved_run_that_is_not_a_file_is_refused_at_once(db_path, tmp_path, capsys, kind):
    path = tmp_path / "x.json"
    if kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b'{"format": "\xff"}')
    line = one_line_error(*call_main(capsys, "import", str(path))[::2])
    assert any(w in line for w in ("not a regular file", "is a folder", "not UTF-8")), line
    assert _nothing_written(db_path)


def test_a_running_row_from_elsewhere_comes_in_lost(db_path, capsys, saved):
    path, document = saved
    document["run"].update(status="running", hostname="another-node", finished_at=None,
                           heartbeat_at=document["run"]["created_at"])  # fmt: skip
    code, out, err = call_main(capsys, "import", str(_write(path, document)))
    assert code == 0, err
    row = Store(str(db_path)).get_run(RUN_ID)
    assert row["status"] == "lost" and "imported while still marked running" in row["error"]
    assert row["finished_at"]


def test_an_import_never_replaces_a_live_run(db_path, capsys, saved):
    path, document = saved
    store = Store(str(db_path))
    store.create_run(RUN_ID, "train", {"tags": {}}, workload="lenet-mnist")  # this process's
    line = one_line_error(*call_main(capsys, "import", str(_write(path, document)))[::2])
    assert f"run {RUN_ID} is running here now" in line
    assert store.get_run(RUN_ID)["status"] == "running"


def test_completing_a_run_a_reader_marked_lost_clears_the_lost_text(db_path, capsys, saved):
    path, document = saved
    store = Store(str(db_path))
    store.create_run(RUN_ID, "train", {"tags": {}}, workload="lenet-mnist")
    store.end_unfinished(RUN_ID, "lost", "lost: its processes are gone")
    code, _, err = call_main(capsys, "import", str(path))
    assert code == 0, err
    row = store.get_run(RUN_ID)
    assert row["status"] == "ok" and row["error"] is None
    assert len(store.get_steps(RUN_ID)) == 3


def _poison(db_path, run_id, **columns):
    """Write ``columns`` into a stored row as another program could (no dlbench code)."""
    with sqlite3.connect(db_path) as conn:
        for column, value in columns.items():
            conn.execute(f"UPDATE runs SET {column} = ? WHERE run_id = ?", (value, run_id))


def test_a_database_with_one_malformed_run_is_refused_whole(db_path, tmp_path, capsys):
    other_path = tmp_path / "other.sqlite"
    other = Store(str(other_path))
    _finished(other, "20260101-000000-000001")
    _finished(other, "20260101-000000-000002")
    other.close()
    _poison(other_path, "20260101-000000-000002", tags='"x"')
    line = one_line_error(*call_main(capsys, "import", str(other_path))[::2])
    assert "run '20260101-000000-000002'" in line and "tags" in line
    assert not db_path.exists()  # nothing written, not even an empty database


@pytest.mark.parametrize(
    "columns,left_out",
    [({"tags": '"x"'}, True), ({"result": "[1]"}, True), ({"config": '"s"'}, True),
     ({"mean_speed": "fast"}, True),
     # a garbled record inside a readable run: the record is not shown, the run is
     ({"result": '{"quality": {"verdict": "clean", "reasons": [1]}}'}, False)],
    ids=str,
)  # fmt: skip
def test_readers_leave_out_a_malformed_row_with_one_warning(db_path, tmp_path, capsys, columns,
                                                            left_out):  # fmt: skip
    store = Store(str(db_path))
    _finished(store, "20260101-000000-000001")
    _finished(store, "20260101-000000-000002")
    _poison(db_path, "20260101-000000-000002", **columns)
    report = tmp_path / "r.html"
    for args in (["runs"], ["export", "-o", "-"], ["export", "--format", "json", "-o", "-"],
                 ["scaling"], ["report", "--all", "-o", str(report)]):  # fmt: skip
        code, out, err = call_main(capsys, *args)
        assert code == 0, (args, err)
        if args[0] != "scaling":
            shown = report.read_text() if args[0] == "report" else out
            assert "20260101-000000-000001" in shown
            assert ("20260101-000000-000002" in shown) is not left_out
        warned = "left out: run '20260101-000000-000002' cannot be read" in err
        assert warned is left_out, err
    from dlbench.dashboard.data import runs_frame

    listed = list(runs_frame(Store(str(db_path), read_only=True))["run_id"])
    assert "20260101-000000-000001" in listed


def test_show_names_a_malformed_run_in_one_line(db_path, capsys):
    store = Store(str(db_path))
    _finished(store)
    _poison(db_path, RUN_ID, tags='"x"')
    line = one_line_error(*call_main(capsys, "show", RUN_ID)[::2])
    assert f"run '{RUN_ID}' cannot be read: tags" in line


def test_a_reader_shows_a_killed_run_lost_at_once(db_path, capsys):
    """A row whose processes on this host are all gone is lost to the next reader, even a
    read-only one, without waiting for its heartbeat to age."""
    import subprocess
    import sys

    store = Store(str(db_path))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    store.create_run(RUN_ID, "train", {"tags": {}}, pids=[child.pid], workload="lenet-mnist")
    assert Store(str(db_path), read_only=True).run(RUN_ID).status == "running"
    child.kill()
    child.wait()
    seen = Store(str(db_path), read_only=True).run(RUN_ID)
    assert seen.status == "lost" and "are gone without storing a result" in (seen.error or "")
    assert os.path.exists(db_path)
