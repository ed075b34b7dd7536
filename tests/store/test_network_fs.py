"""A SQLite database on a network file system: its rollback journal (WAL does not work there)
and one warning that several nodes need PostgreSQL."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import psutil

from dlbench.store.database import Store
from dlbench.store.engine import network_filesystem


def _mounted(monkeypatch, mountpoint, fstype):
    parts = [SimpleNamespace(device="/dev/vda", mountpoint="/", fstype="ext4", opts="rw"),
             SimpleNamespace(device="srv:/home", mountpoint=str(mountpoint), fstype=fstype,
                             opts="rw")]  # fmt: skip
    monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: parts)


def test_a_database_on_nfs_uses_the_rollback_journal_and_says_why(tmp_path, monkeypatch, capsys):
    _mounted(monkeypatch, tmp_path, "nfs4")
    assert network_filesystem(str(tmp_path / "deep" / "x.sqlite")) == "nfs4"
    store = Store(str(tmp_path / "results.sqlite"))
    store.create_run("20260101-000000-000001", "train", {"tags": {}}, workload="lenet-mnist")
    err = capsys.readouterr().err
    assert "is on nfs4, a network file system" in err and "PostgreSQL" in err
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert mode == "delete"
    store.close()


def test_a_local_disk_keeps_wal_and_says_nothing(tmp_path, monkeypatch, capsys):
    _mounted(monkeypatch, tmp_path / "elsewhere", "nfs4")
    store = Store(str(tmp_path / "results.sqlite"))
    store.count_runs()
    assert "network file system" not in capsys.readouterr().err
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"
    store.close()
