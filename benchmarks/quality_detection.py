"""How often dlbench calls a run clean, noisy or contended: quiet, and beside other work.

lenet-mnist on the CPU, each a fresh ``dlbench run``, N times in each condition, conditions
interleaved (quiet, 1 busy loop, 2 busy loops, a loop held on CPU 0 with the run unpinned, the
same with ``--cpus auto``, quiet, ...) with a pause between runs; then once beside a disk
writer. The busy loops and the writer are started by this script, so they are not the run's
processes. Goal: every run beside as many busy loops as the run's cores is contended, no quiet
run is, and ``--cpus auto`` beside a loop held on one CPU measures the others cleanly.

    .venv/bin/python benchmarks/quality_detection.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from dlbench.measure.quality import CONTENDED_FOREIGN_SHARE

from _report import busy_loops, dlbench_run, machine, stop, write_section

WRITER = """
import os, sys, time
data = os.urandom(8 << 20)
end = time.time() + 3600
while time.time() < end:
    with open(sys.argv[1], "wb") as f:
        for _ in range(16):
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
"""
SETTLE_S = 3.0


# condition: (background kind, how many, the CPU the loop is held on, dlbench run's options)
CONDITIONS: dict[str, tuple[str, int, int | None, tuple[str, ...]]] = {
    "quiet": ("busy", 0, None, ()),
    "1 busy loop": ("busy", 1, None, ()),
    "2 busy loops": ("busy", 2, None, ()),
    "1 busy loop held on CPU 0": ("busy", 1, 0, ()),
    "1 busy loop held on CPU 0, run with --cpus auto": ("busy", 1, 0, ("--cpus", "auto")),
    "a disk writer": ("disk", 1, None, ()),
}


def _background(kind: str, count: int, folder: Path, cpu: int | None) -> list[subprocess.Popen]:
    if kind == "busy":
        return busy_loops(count, cpu)
    return [
        subprocess.Popen([sys.executable, "-c", WRITER, str(folder / f"blob{i}")])
        for i in range(count)
    ]


def one(condition: str, db: Path, folder: Path, steps: int) -> dict:
    kind, count, cpu, options = CONDITIONS[condition]
    others = _background(kind, count, folder, cpu)
    try:
        time.sleep(0.5 if others else 0)
        return dlbench_run("lenet-mnist", 10, steps, db, "--device", "cpu", *options)
    finally:
        stop(others)
        time.sleep(SETTLE_S)  # let the machine go quiet again before the next run


def cause(summary: dict) -> str:
    """Why a contended run was called so: other work on this machine, or only the hypervisor
    taking the CPUs for other machines (steal)."""
    quality = summary["quality"] or {}
    share = quality.get("foreign_cpu_cores", 0) / (quality.get("usable_cores") or 1)
    return "other work" if share > CONTENDED_FOREIGN_SHARE else "steal only"


def _cpus(summaries: list[dict]) -> str:
    """The CPUs the runs were pinned to (``--cpus``, as their verdict says), or all."""
    chosen: Counter[str] = Counter()
    for s in summaries:
        said = [re.search(r"measured on CPUs? (\S+) of", r) for r in s["quality"]["reasons"]]
        found = [m.group(1) for m in said if m]
        chosen[f"CPU {found[0]}" if found else "all"] += 1
    return ", ".join(f"{where} ({n})" for where, n in chosen.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    conditions = [c for c in CONDITIONS if c != "a disk writer"]
    found: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
    with tempfile.TemporaryDirectory() as tmp:
        db, folder = Path(tmp) / "quality.sqlite", Path(tmp)
        for r in range(args.runs):
            order = conditions if r % 2 == 0 else conditions[::-1]
            for condition in order:
                summary = one(condition, db, folder, args.steps)
                found[condition].append(summary)
                print(
                    f"{condition}: {summary['quality_verdict']}, foreign "
                    f"{summary['foreign_cpu_cores']:.2f}, {summary['mean_speed']:,.0f} img/s",
                    flush=True,
                )
        found["a disk writer"].append(one("a disk writer", db, folder, args.steps))
    rows = []
    for condition, summaries in found.items():
        verdicts = Counter(s["quality_verdict"] for s in summaries)
        causes = Counter(cause(s) for s in summaries if s["quality_verdict"] == "contended")
        foreign = statistics.median(s["foreign_cpu_cores"] for s in summaries)
        steal = statistics.median((s["quality"] or {}).get("steal_percent") or 0 for s in summaries)
        speed = statistics.median(s["mean_speed"] for s in summaries)
        rows.append(
            f"| {condition} | {len(summaries)} | {verdicts['clean']} | {verdicts['noisy']} | "
            f"{verdicts['contended']} | {causes['other work']} | {causes['steal only']} | "
            f"{foreign:.2f} | {steal:.1f} | {speed:,.0f} | {_cpus(summaries)} |"
        )
    writer = found["a disk writer"][0]
    table = "\n".join(
        [
            f"`lenet-mnist` on the CPU, {args.steps} timed steps; {machine()}; "
            f"{os.cpu_count()} CPUs; conditions interleaved, {SETTLE_S:g} s between runs.",
            "",
            "| beside | runs | clean | noisy | contended | of which by other work here | "
            "by hypervisor steal only | other work, cores (median) | steal % (median) | "
            "img/s (median) | measured on |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "The disk writer's run: " + "; ".join((writer["quality"] or {}).get("reasons") or []),
            "",
            f"Command: `.venv/bin/python benchmarks/quality_detection.py --runs {args.runs}`",
        ]
    )
    print(table)
    if not args.no_write:
        write_section("quality-detection", table)


if __name__ == "__main__":
    main()
