"""The interference accounting on the real machine, and with a fake NVML for the GPU side."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from dlbench.telemetry.interference import NAMESPACE_NOTE, InterferenceMeter, survey

from .fake_pynvml import FakeNvml

# Other work's share of the CPUs, measured live: another test beside it would be that work.
pytestmark = pytest.mark.serial

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"
SLEEP = "import time; time.sleep({s})"


def _python(code):
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_busy_process_outside_the_runs_tree_is_foreign():
    run = _python(SLEEP.format(s=4))  # the "run": idle
    other = _python(BUSY.format(s=4))  # someone else's work, not in the run's tree
    try:
        time.sleep(0.3)
        meter = InterferenceMeter(run.pid).start()
        time.sleep(1.5)
        found = meter.stop()
    finally:
        for proc in (run, other):
            proc.kill()
            proc.wait()
    assert found.window_s == pytest.approx(1.5, abs=0.3)
    assert found.own_cpu_cores < 0.15
    # One core of busy loop, less what the hypervisor took from it.
    assert found.foreign_cpu_cores > 0.6 * (1 - (found.steal_percent or 0) / 100)
    assert found.resolution_cores < 0.1
    assert found.usable_cores == len(os.sched_getaffinity(0))
    assert found.other_gpu_processes is None and found.gpus == ()


def test_the_runs_own_children_are_its_own_work_even_short_lived_ones():
    burn = "import time\nwhile time.process_time() < 0.6: pass"  # 0.6 s of CPU, however busy
    code = (
        "import subprocess, sys, time\n"
        "time.sleep(0.3)\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}])\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}])\n"
        "print('done', flush=True)\n" + SLEEP.format(s=5)
    )
    run = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        meter = InterferenceMeter(run.pid).start()
        assert run.stdout.readline().strip() == "done"
        found = meter.stop()
    finally:
        run.kill()
        run.communicate()
    # 1.2 s of CPU in two children that started, ended and were reaped inside the window.
    assert found.own_cpu_cores * found.window_s == pytest.approx(1.2, abs=0.15)


def _meter_with_gpus(processes, gpus=(0,)):
    """The meter over a run with a fake NVML listing ``processes`` per GPU: "own" is the run,
    "other" a process beside it (not in its tree), "launcher" this test (the run's parent)."""
    run, other = _python(SLEEP.format(s=3)), _python(SLEEP.format(s=3))
    names = {"own": run.pid, "other": other.pid, "launcher": os.getpid()}
    fake = FakeNvml(gpus=2)
    fake.processes = {g: [(names.get(p, p), m) for p, m in found]
                      for g, found in processes.items()}  # fmt: skip
    try:
        found = InterferenceMeter(run.pid, gpus=gpus, nvml=fake).start().stop()
        other_name = psutil.Process(other.pid).name()
    finally:
        for proc in (run, other):
            proc.kill()
            proc.wait()
    return found, (other.pid, other_name)


def test_other_compute_processes_on_the_runs_gpu_are_named_with_their_memory():
    found, (other_pid, other_name) = _meter_with_gpus(
        {0: [("own", 2**30), ("other", 5 * 2**30), ("launcher", 2**20)], 1: [(1, 2**30)]}
    )
    assert found.gpu_note is None and found.gpus == (0,)
    # GPU 1's process is not on the run's GPU; dlbench's own launcher is not someone else.
    (other,) = found.other_gpu_processes
    assert other.pid == other_pid and other.memory_bytes == 5 * 2**30
    assert other.name == other_name


def test_none_of_the_runs_processes_listed_means_other_pids_cannot_be_told_apart():
    found, _ = _meter_with_gpus({0: [(999_999, 2**30)]})
    assert found.other_gpu_processes is None and found.gpu_note == NAMESPACE_NOTE


def test_a_monitored_commands_gpus_are_those_it_computes_on():
    found, _ = _meter_with_gpus({0: [(4242, 1)], 1: [("own", 1), (4343, 1)]}, gpus=None)
    assert found.gpus == (1,) and [p.pid for p in found.other_gpu_processes] == [4343]
    quiet, _ = _meter_with_gpus({0: [(4242, 1)]}, gpus=None)  # a command on the CPU only
    assert quiet.gpus == () and quiet.other_gpu_processes is None and quiet.gpu_note is None


def _detached_busy(seconds, pid_file):
    """A busy loop that is not this process's descendant (re-parented to init)."""
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
    code += BUSY.format(s=seconds)
    subprocess.run(["sh", "-c", f'{sys.executable} -c "{code}" >/dev/null 2>&1 &'], check=True)
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return int(pid_file.read_text())


def test_survey_names_the_busiest_other_process(tmp_path):
    pid = _detached_busy(5, tmp_path / "pid")
    try:
        time.sleep(0.3)
        found = survey(1.0)
    finally:
        os.kill(pid, signal.SIGKILL)
    assert found.foreign_cpu_cores > 0.5
    busiest = {p.pid: p for p in found.busiest}
    assert pid in busiest and busiest[pid].cpu_percent > 20  # less if the machine is busy
    assert busiest[pid].name.startswith("python")


def test_survey_counts_this_process_and_its_children_as_the_runs_own():
    child = _python(BUSY.format(s=3))
    try:
        time.sleep(0.2)
        found = survey(1.0)
    finally:
        child.wait()
    assert child.pid not in {p.pid for p in found.busiest}
