"""The pre-run check: warn on a busy machine, wait for quiet with a countdown, or refuse."""

import os
import signal
import sys
import time

import pytest

from dlbench.launch.quiet import MachineBusy, QuietGate, QuietPolicy, describe
from dlbench.store.database import Store
from dlbench.telemetry.interference import ProcessUse, Survey

from conftest import run_dlbench

# Whether this machine is quiet, measured live, and busy loops that make it busy.
pytestmark = pytest.mark.serial

BUSY = Survey(
    seconds=1.0,
    usable_cores=2,
    foreign_cpu_cores=1.9,
    resolution_cores=0.02,
    steal_percent=0.5,
    busiest=(ProcessUse(4242, "stress", 97.0), ProcessUse(7, "python", 93.0, 2**31)),
    gpu_processes=None,
)
QUIET = Survey(1.0, 2, 0.02, 0.02, 0.5, (ProcessUse(9, "sshd", 1.0),), None)


class Words:
    def __init__(self):
        self.warnings, self.countdown, self.done = [], [], []

    def warn(self, message):
        self.warnings.append(message)

    def waiting(self, seconds_left, why):
        self.countdown.append((round(seconds_left), why))

    def done_waiting(self, message):
        self.done.append(message)


class Machine:
    """Surveys in turn from a script; each takes a second of a fake clock."""

    def __init__(self, *surveys):
        self.surveys, self.now, self.looks = list(surveys), 0.0, 0

    def look(self, seconds, gpus):
        self.looks += 1
        self.now += seconds
        return self.surveys.pop(0) if len(self.surveys) > 1 else self.surveys[0]

    def clock(self):
        return self.now


def test_a_busy_machine_gets_one_warning_naming_the_busiest_and_the_run_goes_on():
    words, machine = Words(), Machine(BUSY)
    gate = QuietGate(QuietPolicy(), words, look=machine.look, clock=machine.clock)
    gate.before()  # nothing to do before: the survey runs while the run starts up
    gate.on_start(12345)
    gate.finish()
    (warning,) = words.warnings
    assert "other work takes 1.90 of the 2 usable cores" in warning
    assert "pid 4242 stress 97% CPU, pid 7 python 93% CPU 2.0 GiB GPU" in warning
    assert "--wait-quiet" in warning and "--require-quiet" in warning


def test_a_quiet_machine_says_nothing():
    words, machine = Words(), Machine(QUIET)
    gate = QuietGate(QuietPolicy(), words, look=machine.look, clock=machine.clock)
    gate.on_start(1)
    gate.finish()
    assert words.warnings == [] and describe(QUIET) == []


def test_waiting_counts_down_until_the_machine_is_quiet_for_a_while():
    words, machine = Words(), Machine(BUSY, BUSY, QUIET, BUSY, QUIET, QUIET, QUIET, QUIET)
    gate = QuietGate(QuietPolicy(wait_s=60), words, look=machine.look, clock=machine.clock)
    gate.before()
    assert words.warnings == []
    # One quiet second was not enough: quiet from the 5th second to the 8th.
    assert words.done == ["the machine is quiet after 6 s"]
    lefts = [left for left, _ in words.countdown]
    assert lefts == [60, 59, 58, 57, 56, 55]
    assert "stress" in words.countdown[0][1]
    gate.on_start(1)  # surveyed already: no second survey during start-up
    gate.finish()
    assert machine.looks == 7


def test_a_wait_that_runs_out_warns_and_measures_anyway():
    words, machine = Words(), Machine(BUSY)
    QuietGate(QuietPolicy(wait_s=5), words, look=machine.look, clock=machine.clock).before()
    (warning,) = words.warnings
    assert warning.startswith("the machine is still busy after 5 s: other work takes 1.90")


def test_require_quiet_refuses_a_busy_machine_after_any_wait():
    with pytest.raises(MachineBusy, match="the machine is busy: other work takes 1.90") as error:
        QuietGate(QuietPolicy(require=True), Words(), look=Machine(BUSY).look).before()
    assert "nothing was run" in error.value.message and "--wait-quiet" in error.value.hint
    machine = Machine(BUSY, QUIET, QUIET, QUIET, QUIET)
    gate = QuietGate(QuietPolicy(wait_s=30, require=True), Words(), look=machine.look,
                     clock=machine.clock)  # fmt: skip
    gate.before()  # quiet in time: it starts


def _detached_busy_loops(count, folder):
    """Busy loops that are not dlbench's descendants (re-parented to init), their pids."""
    import subprocess

    pids = []
    for i in range(count):
        pid_file = folder / f"busy{i}"
        code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        code += "end = time.time() + 60\nwhile time.time() < end: pass"
        subprocess.run(["sh", "-c", f'{sys.executable} -c "{code}" >/dev/null 2>&1 &'])
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pids.append(int(pid_file.read_text()))
    return pids


def test_require_quiet_on_a_busy_machine_is_one_line_exit_2_and_stores_nothing(db_path, tmp_path):
    pids = _detached_busy_loops(len(os.sched_getaffinity(0)), tmp_path)
    try:
        done = run_dlbench(
            db_path, "run", "mlp-mnist", "--steps", "12", "--warmup", "2", "--require-quiet"
        )
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the machine is busy: other work")
    assert f"pid {pids[0]} python" in done.stderr or f"pid {pids[1]} python" in done.stderr
    assert Store(str(db_path)).count_runs() == 0
