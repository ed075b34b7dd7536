"""The run's process-tree CPU and the machine's CPU against sysstat, on the same windows.

Three workloads, each ~15 s, each sampled once a second by dlbench's sources while
``pidstat -T CHILD -p ROOT 1`` (the root and its reaped children, in ms per interval) and
``mpstat 1`` run beside them:

- short-lived children: the root starts, one after another, children that each burn 0.1 s of
  CPU and exit (a build, a data-preparation script);
- a long-lived child plus short-lived ones (a trainer with input workers);
- a multi-threaded root (torch's intra-op threads).

The reference is the kernel's own count: the root prints ``os.times()`` (its CPU and its
reaped children's) after waiting for every child. Also shown: the method dlbench used before
(psutil's per-process ``cpu_percent``, which reads 0 on a process's first sight and never
sees a child that starts and ends between two reads).

    .venv/bin/python benchmarks/process_cpu_accuracy.py   # needs sysstat (apt-get install sysstat)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

import psutil

from dlbench.telemetry.cpu import CpuSource
from dlbench.telemetry.process import ProcessTreeSource, proc_descendants

from _report import machine, write_section

SHORT = "import time\nwhile time.process_time() < 0.1: pass"
WORKLOADS = {
    "short-lived children": f"""
import os, subprocess, sys, time
end = time.time() + {{seconds}}
while time.time() < end:
    subprocess.run([sys.executable, "-c", {SHORT!r}])
""",
    "a long-lived child + short-lived ones": f"""
import os, subprocess, sys, time
long = subprocess.Popen([sys.executable, "-c",
    "import time\\nend = time.time() + {{seconds}}\\nwhile time.time() < end: pass"])
end = time.time() + {{seconds}}
while time.time() < end:
    subprocess.run([sys.executable, "-c", {SHORT!r}])
    time.sleep(0.2)
long.wait()
""",
    "a multi-threaded process": """
import os, threading, time
def spin(seconds):
    end = time.time() + seconds
    while time.time() < end:
        sum(range(1000))
threads = [threading.Thread(target=spin, args=({seconds},)) for _ in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
""",
}
EPILOGUE = """
time.sleep(1.5)  # let the last interval be read before this process ends
t = os.times()
print(t.user + t.system + t.children_user + t.children_system, flush=True)
time.sleep(1.5)
"""


class OldTree:
    """The method dlbench used before: psutil's per-process cpu_percent, summed."""

    def __init__(self, pid: int) -> None:
        self.pid, self.known = pid, {}

    def read(self) -> float:
        total = 0.0
        for pid in [self.pid, *proc_descendants(self.pid)]:
            proc = self.known.get(pid)
            try:
                if proc is None:
                    proc = self.known[pid] = psutil.Process(pid)
                total += proc.cpu_percent()  # 0.0 on the first call for each process
            except psutil.Error:
                continue
        return total


def _pidstat_total_s(output: str) -> float:
    total = 0.0
    for line in output.splitlines():
        parts = line.split()
        # "HH:MM:SS UID PID usr-ms system-ms guest-ms Command": the per-interval CHILD lines.
        if len(parts) == 7 and parts[0][:1].isdigit() and parts[3].isdigit():
            total += (int(parts[3]) + int(parts[4])) / 1000
    return total


def _mpstat_means(output: str) -> tuple[float, float]:
    """Mean busy % (100 - idle - iowait - steal) and steal % over mpstat's intervals."""
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["Average:", "all"]:
            usr, nice, sys_, iowait, irq, soft, steal, guest, gnice, idle = map(float, parts[2:12])
            return 100 - idle - iowait - steal, steal
    return float("nan"), float("nan")


def measure(name: str, seconds: float) -> dict[str, float]:
    code = WORKLOADS[name].format(seconds=seconds) + EPILOGUE
    env = dict(os.environ, LC_ALL="C")
    root = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pidstat = subprocess.Popen(
        ["pidstat", "-T", "CHILD", "-p", str(root.pid), "1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    mpstat = subprocess.Popen(["mpstat", "1"], stdout=subprocess.PIPE, text=True, env=env)
    tree, cpu, old = ProcessTreeSource(root.pid), CpuSource(), OldTree(root.pid)
    tree.open()
    cpu.open()
    old.read()
    new_s = old_s = 0.0
    util, steal = [], []
    last = time.monotonic()
    while root.poll() is None:
        time.sleep(1.0 - (time.monotonic() - last) % 1.0)
        now = time.monotonic()
        reading = tree.read(now)
        new_s += reading.get("proc.cpu_percent", 0.0) / 100 * (now - last)
        old_s += old.read() / 100 * (now - last)
        machine_reading = cpu.read(now)
        if "cpu.util_percent" in machine_reading:
            util.append(machine_reading["cpu.util_percent"])
            steal.append(machine_reading.get("cpu.steal_percent", 0.0))
        last = now
    truth = float(root.stdout.read().split()[-1])
    for tool in (pidstat, mpstat):
        tool.send_signal(2)  # SIGINT: print the averages and end
    pid_out, _ = pidstat.communicate(timeout=10)
    mp_out, _ = mpstat.communicate(timeout=10)
    mp_busy, mp_steal = _mpstat_means(mp_out)
    return {
        "truth": truth,
        "pidstat": _pidstat_total_s(pid_out),
        "dlbench": new_s,
        "old": old_s,
        "util": sum(util) / len(util),
        "mpstat_util": mp_busy,
        "steal": sum(steal) / len(steal),
        "mpstat_steal": mp_steal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not (shutil.which("pidstat") and shutil.which("mpstat")):
        raise SystemExit("needs sysstat's pidstat and mpstat: apt-get install sysstat")
    rows = []
    for name in WORKLOADS:
        m = measure(name, args.seconds)
        print(name, m, flush=True)
        rows.append(
            f"| {name} | {m['truth']:.2f} | {m['pidstat']:.2f} | {m['dlbench']:.2f} "
            f"({m['dlbench'] / m['pidstat'] - 1:+.1%}) | {m['old']:.2f} "
            f"({m['old'] / m['pidstat'] - 1:+.1%}) | {m['util']:.1f} / {m['mpstat_util']:.1f} | "
            f"{m['steal']:.1f} / {m['mpstat_steal']:.1f} |"
        )
    table = "\n".join(
        [
            f"{machine()}; each workload {args.seconds:g} s, sampled every second.",
            "",
            "| workload | kernel's count (CPU s) | pidstat -T CHILD (CPU s) | dlbench proc.cpu "
            "(CPU s, vs pidstat) | before: psutil per process (vs pidstat) | machine busy %, "
            "dlbench / mpstat | steal %, dlbench / mpstat |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Command: `.venv/bin/python benchmarks/process_cpu_accuracy.py`",
        ]
    )
    print(table)
    if not args.no_write:
        write_section("process-cpu-accuracy", table)


if __name__ == "__main__":
    main()
