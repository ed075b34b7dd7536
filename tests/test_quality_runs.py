"""Runs beside other work are called contended, with the numbers, wherever runs are shown."""

import csv
import json
import os
import subprocess
import sys

from conftest import run_dlbench

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"
LENET = ["lenet-mnist", "--device", "cpu", "--steps", "70", "--warmup", "10", "--val-batches", "1"]


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
    shown = run_dlbench(db_path, "show", run_id)
    assert "quality: contended" in shown.stdout and "contended: other work took" in shown.stdout
    listed = run_dlbench(db_path, "runs", "--quality", "contended")
    assert run_id in listed.stdout and "contended" in listed.stdout
    assert run_id not in run_dlbench(db_path, "runs", "--quality", "clean").stdout
    exported = run_dlbench(db_path, "export", "--format", "csv", "--out", str(tmp_path / "r.csv"))
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "r.csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert row["quality_verdict"] == "contended" and float(row["foreign_cpu_cores"]) > 0.5
    assert 0 < float(row["speed_ci95_low"]) <= float(row["mean_speed"])
