"""What the fault tests share: a run started as a user would, the store read from outside,
and time made to pass for a row's heartbeat."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from conftest import call_main, cli_env, one_line_error, wait_for  # noqa: F401 - shared

LONG_RUN = ["run", "lenet-mnist", "--device", "cpu", "--steps", "1000000", "--warmup", "2"]


def start_dlbench(db_path: Path, *args: str) -> subprocess.Popen[str]:
    """``dlbench ARGS`` in the background, in its own session (as from a shell)."""
    return subprocess.Popen(
        ["dlbench", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cli_env(db_path),
        start_new_session=True,
    )


def row(db_path: Path) -> dict[str, Any] | None:
    """The newest run's row, read with sqlite3 (no dlbench code in between)."""
    if not db_path.exists():
        return None
    with sqlite3.connect(db_path, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
    return dict(found) if found else None


def wait_for_stored_steps(db_path: Path) -> dict[str, Any]:
    """The row, once some completed steps are in the store (the heartbeat stores them)."""

    def stored() -> dict[str, Any] | None:
        found = row(db_path)
        if found and _steps(db_path, found["run_id"]) > 0:
            return found
        return None

    return wait_for(stored)


def _steps(db_path: Path, run_id: str) -> int:
    with sqlite3.connect(db_path, timeout=30) as conn:
        (count,) = conn.execute("SELECT count(*) FROM steps WHERE run_id = ?", (run_id,)).fetchone()
    return int(count)


def pids_of(found: dict[str, Any]) -> list[int]:
    import json

    return [int(pid) for pid, _started in json.loads(found["pids"])]


def age_heartbeat(db_path: Path, run_id: str) -> None:
    """Make the row's last heartbeat an hour old, as if that much time had passed."""
    with sqlite3.connect(db_path, timeout=30) as conn:
        conn.execute(
            "UPDATE runs SET heartbeat_at = '2000-01-01T00:00:00.000+00:00' WHERE run_id = ?",
            (run_id,),
        )


def kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
