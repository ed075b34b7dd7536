"""Other programs' databases are never changed, and read commands never create anything."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from fault_helpers import call_main, one_line_error

from dlbench.store.database import Store

READ_COMMANDS = [
    ["runs"],
    ["show", "x"],
    ["export", "--format", "csv"],
    ["compare", "a", "b"],
    ["scaling"],
    ["cost", "x"],
    ["report", "--all"],
    ["insights"],
    ["predict", "lenet-mnist", "--dataset-size", "1000", "--epochs", "1", "--read-only"],
    ["baseline", "list"],
]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign(path, ddl):
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        conn.execute(f"INSERT INTO {ddl.split()[2]} VALUES (1, 'theirs')")
    return _digest(path)


@pytest.mark.parametrize(
    "ddl",
    ["CREATE TABLE runs (id INTEGER, name TEXT)", "CREATE TABLE invoices (id INTEGER, who TEXT)"],
)
@pytest.mark.parametrize("command", [["runs"], ["run", "lenet-mnist", "--steps", "12"]])
def test_another_programs_database_is_refused_and_left_byte_identical(
    tmp_path, capsys, ddl, command
):
    path = tmp_path / "theirs.sqlite"
    before = _foreign(path, ddl)
    line = one_line_error(*call_main(capsys, *command, "--db", str(path))[::2])
    table = ddl.split()[2]
    assert f"is not a dlbench database: it holds other tables ({table})" in line
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.sqlite"]  # no -wal, no -shm


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_read_commands_never_create_a_database_or_its_folder(tmp_path, capsys, command):
    missing = tmp_path / "no" / "such" / "dir" / "x.sqlite"
    line = one_line_error(*call_main(capsys, *command, "--db", f"sqlite:///{missing}")[::2])
    assert "no results database at" in line
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_schema_version_is_one_line(db_path, capsys):
    Store(str(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = 'x7!' WHERE key = 'schema_version'")
    for command in (["runs"], ["insights"]):  # a writer and a read-only reader
        line = one_line_error(*call_main(capsys, *command, "--db", str(db_path))[::2])
        assert "damaged schema version ('x7!' is not a number)" in line


def test_a_database_dlbench_stamped_is_opened_and_migrated(db_path):
    Store(str(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "runs", "steps", "telemetry", "baselines"} <= tables
    Store(str(db_path)).close()  # its own tables are no reason to refuse it
