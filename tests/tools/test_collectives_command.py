"""``dlbench collectives`` over gloo on this machine: every collective correct and stored as a run,
shown and compared."""

from __future__ import annotations

import json

import pytest

from dlbench.measure.collectives import OPERATIONS, bus_factor

from conftest import dlbench_here, run_dlbench


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 4])
def test_every_collective_is_correct_and_stored(db_path, processes, capsys):
    done = run_dlbench(
        db_path,
        "collectives",
        "--gpus-per-node",
        str(processes),
        "--sizes",
        "4:64KiB",
        "--rounds",
        "2",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--json",
        "-",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["kind"] == "collective" and summary["status"] == "ok", summary["error"]
    results = summary["collectives"]
    assert {r["operation"] for r in results} == set(OPERATIONS)
    assert all(r["correct"] and r["ranks"] == processes for r in results)
    for r in results:  # the figures are the definitions' (nccl-tests'), from the stored times
        time_s = sum(r["round_times_s"]) / len(r["round_times_s"])
        assert r["algbw_gb_s"] == pytest.approx(r["size_bytes"] / time_s / 1e9)
        factor = bus_factor(r["operation"], processes)
        assert r["busbw_gb_s"] == pytest.approx(r["algbw_gb_s"] * factor)
    assert summary["quality_verdict"] in ("clean", "noisy", "contended")
    shown = dlbench_here(capsys, "show", summary["run_id"])
    assert shown.returncode == 0 and "busbw" in shown.stdout and "one node" in shown.stdout
    again = run_dlbench(
        db_path, "collectives", "--gpus-per-node", "2", "--ops", "broadcast", "--sizes", "1KiB",
        "--rounds", "2", "--json", "-",
    )  # fmt: skip
    other = json.loads(again.stdout)["run_id"]
    compared = dlbench_here(capsys, "compare", summary["run_id"], other)
    assert compared.returncode == 0, compared.stderr
    assert "bus bandwidth by run" in compared.stdout and "broadcast" in compared.stdout
    page = db_path.parent / "report.html"
    made = dlbench_here(capsys, "report", summary["run_id"], other, "--out", str(page))
    assert made.returncode == 0, made.stderr
    text = page.read_text()
    assert "Collectives: bus bandwidth by message size" in text
    assert "all_reduce: bus bandwidth by message size" in text
