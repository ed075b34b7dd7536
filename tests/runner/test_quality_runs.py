"""Runs beside other work are called contended, with the numbers, wherever runs are shown."""

import csv
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dlbench.cli import app

from conftest import run_dlbench

# Busy loops beside a real run: they would slow every test beside them, and be slowed.
pytestmark = pytest.mark.serial

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"
LENET = ["lenet-mnist", "--device", "cpu", "--steps", "40", "--warmup", "5", "--val-batches", "1"]


@pytest.mark.slow
def test_a_run_beside_busy_loops_is_contended_and_every_view_says_so(db_path, tmp_path):
    cores = len(os.sched_getaffinity(0))
    loops = [subprocess.Popen([sys.executable, "-c", BUSY.format(s=600)]) for _ in range(cores)]
    try:
        done = run_dlbench(db_path, "run", *LENET, "--json", str(tmp_path / "run.json"))
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    assert done.returncode == 0, done.stderr
    assert "warning: the machine is busy as the run starts: other work takes" in done.stderr
    assert "quality: contended" in done.stdout
    assert "other work took" in done.stdout and "(contended above 25%)" in done.stdout
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["quality_verdict"] == "contended"
    assert summary["foreign_cpu_cores"] > 0.25 * cores
    assert summary["quality"]["own_cpu_cores"] > 0.1
    run_id = summary["run_id"]

    def cli(*args):  # reading commands, in this process: no need for one of their own
        return CliRunner().invoke(app, [*args, "--db", str(db_path)], env={"COLUMNS": "200"})

    shown = cli("show", run_id)
    assert "quality: contended" in shown.output and "contended: other work took" in shown.output
    listed = cli("runs", "--quality", "contended")
    assert run_id in listed.output and "contended" in listed.output
    assert run_id not in cli("runs", "--quality", "clean").output
    exported = cli("export", "--format", "csv", "--out", str(tmp_path / "r.csv"))
    assert exported.exit_code == 0, exported.output
    with (tmp_path / "r.csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert row["quality_verdict"] == "contended" and float(row["foreign_cpu_cores"]) > 0.5
    assert 0 < float(row["speed_ci95_low"]) <= float(row["mean_speed"])
