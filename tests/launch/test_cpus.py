"""--cpus: a run measured on the CPUs other work leaves free, said in its verdict."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dlbench.errors import ConfigError
from dlbench.launch import cpus
from dlbench.store.database import Store

from conftest import call_main, one_line_error, run_dlbench


def test_lists_parse_and_show_back():
    assert cpus.parse_list("0,2-3,7") == [0, 2, 3, 7]
    assert cpus.shown([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    for bad in ("auto", "1-", "3-1", "a"):
        with pytest.raises(ConfigError):
            cpus.parse_list(bad)


def test_auto_takes_the_idle_cpus_or_warns_and_takes_all(monkeypatch):
    mine = cpus.allowed()
    warnings = []
    monkeypatch.setattr(cpus.psutil, "cpu_percent", lambda **_: [95.0] + [3.0] * 63)
    assert cpus.choose("auto", warnings.append, 0) == [c for c in mine if c != 0] or mine == [0]
    monkeypatch.setattr(cpus.psutil, "cpu_percent", lambda **_: [95.0] * 64)
    assert cpus.choose("auto", warnings.append, 0) == mine
    assert "none of the CPUs" in warnings[-1] and "measuring on all of them" in warnings[-1]


def test_pinning_lasts_for_the_block_only():
    before = cpus.allowed()
    with cpus.pinned(str(before[-1]), print) as chosen:
        assert cpus.allowed() == chosen == [before[-1]]
    assert cpus.allowed() == before


def test_cpus_this_process_may_not_use_are_one_line(db_path, capsys):
    line = one_line_error(*call_main(capsys, "run", "lenet-mnist", "--cpus", "4096")[::2])
    assert "--cpus 4096: CPU(s) 4096 are not this machine's usable CPUs" in line
    line = one_line_error(*call_main(capsys, "run", "lenet-mnist", "--cpus", "two")[::2])
    assert "--cpus: 'two' is not auto or a list of CPUs like 0,2-3" in line


@pytest.mark.serial  # a busy loop on one CPU, the run measured clean on the other
@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_run_beside_a_busy_core_is_clean_on_the_free_one(db_path):
    """Other work pinned to one CPU, the run to the other: measured clean, and it says so."""
    busy_cpu, free_cpu = sorted(os.sched_getaffinity(0))[:2]
    loop = subprocess.Popen(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{busy_cpu}}})\nwhile 1: pass"]
    )
    try:
        done = run_dlbench(db_path, "run", "lenet-mnist", "--device", "cpu", "--steps", "60",
                           "--warmup", "5", "--no-infer", "--cpus", str(free_cpu))  # fmt: skip
    finally:
        loop.kill()
        loop.wait()
    assert done.returncode == 0, done.stderr
    run = Store(str(db_path)).runs()[0]
    assert run.quality.usable_cores == 1
    assert f"measured on CPUs {free_cpu} of the" in run.quality.reasons[-1]
    assert run.quality_verdict != "contended", run.quality.reasons
    assert run.config["cpus"] == str(free_cpu)


def test_a_refused_repeat_is_never_announced(db_path, monkeypatch, capsys):
    """--require-quiet on a busy machine: no "(1/3) RUN" line before the refusal."""
    from dlbench.launch import quiet as quiet_module
    from dlbench.telemetry.interference import Survey

    busy = Survey(1.0, 2, 1.9, 0.02, 0.0, (), None)
    monkeypatch.setattr(quiet_module, "survey", lambda *a, **k: busy)
    code, out, err = call_main(capsys, "run", "lenet-mnist", "--device", "cpu", "--steps", "12",
                               "--warmup", "2", "--repeat", "3", "--require-quiet")  # fmt: skip
    assert "the machine is busy" in one_line_error(code, err)
    assert "(1/3)" not in out
