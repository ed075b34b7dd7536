"""What a new user waits for: the phases of a short run, the quick start, a maxbatch search;
and, on a machine that is never quiet, where each command leaves them.

Each is a real `dlbench` command in its own process, as a user types it; wall times are the
command's whole life (interpreter, imports, every phase). The phase times come from the run's
own stored figures (setup, warm-up, train, validate, and the rest: checkpoint, reload,
prediction and latency). The contended case runs the quick start, repeats, ``baseline set``
and ``check`` beside two busy loops (as many as this machine's 2 cores) started by this script,
and records what each ended with.

    .venv/bin/python benchmarks/first_hour.py [--skip-quickstart] [--skip-maxbatch]
        [--skip-contended | --only-contended]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _report import busy_loops, machine, stop, write_section

SHORT_RUNS = (
    ("lenet-mnist", ["--steps", "40"]),
    ("resnet18", ["--device", "cpu", "--steps", "2", "--warmup", "1", "--batch-size", "2"]),
)


def dlbench(db: Path | None, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    where = ["--db", str(db)] if db else []  # maxbatch stores nothing: it takes no --db
    done = subprocess.run(
        [sys.executable, "-m", "dlbench", *args, *where],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started, done


def short_run(db: Path, workload: str, options: list[str]) -> str:
    wall, done = dlbench(db, "run", workload, *options, "--json", "-")
    if done.returncode != 0:
        raise SystemExit(f"dlbench run {workload}: {done.stderr[-400:]}")
    s = json.loads(done.stdout)
    train, val, setup = s["train_time_s"] or 0, s["val_time_s"] or 0, s["setup_time_s"] or 0
    warm = s["warmup_time_s"] or 0
    rest = wall - setup - warm - train - val  # inference, storing, the launcher's own start
    return (
        f"| `dlbench run {workload} {' '.join(options)}` | {wall:,.1f} | {setup:,.1f} | "
        f"{warm:,.1f} | {train:,.1f} | {val:,.1f} | {max(rest, 0):,.1f} |"
    )


def _verdicts(db: Path) -> str:
    _, done = dlbench(db, "runs", "--json", "--limit", "1000")
    found = Counter(r.get("quality_verdict") or "none" for r in json.loads(done.stdout))
    return ", ".join(f"{n} {verdict}" for verdict, n in sorted(found.items()))


def _said(done: subprocess.CompletedProcess[str], *marks: str) -> str:
    """The output's first line that holds one of ``marks``, as the user reads it."""
    for line in (done.stderr + done.stdout).splitlines():
        if any(mark in line for mark in marks):
            return line.strip().replace("|", "/")[:300]
    return "(nothing)"


def contended_case(db: Path) -> list[str]:
    """Beside two busy loops: what the quick start, a repeat, ``baseline set`` (refused, then
    with ``--accept-contended``) and ``check`` end with."""
    lines = ["| Command | Wall (s) | Exit | Ends with |", "|---|---|---|---|"]
    loops = busy_loops(2)
    try:
        time.sleep(0.5)
        wall, done = dlbench(db, "quickstart")
        lines.append(
            f"| `dlbench quickstart` | {wall:,.1f} | {done.returncode} | runs: {_verdicts(db)}; "
            f"{_said(done, 'measured contended')} |"
        )
        repeats = ["run", "lenet-mnist", "--steps", "60", "--repeat", "3"]
        for extra in ([], ["--cpus", "auto"]):
            wall, done = dlbench(db, *repeats, *extra, "--json", "-")
            runs = json.loads(done.stdout)["runs"] if done.stdout.startswith("{") else []
            verdicts = Counter(r["quality_verdict"] for r in runs)
            speeds = "/".join(f"{r['mean_speed']:,.0f}" for r in runs if r["mean_speed"])
            lines.append(
                f"| `dlbench {' '.join(repeats + extra)}` | {wall:,.1f} | {done.returncode} | "
                f"{dict(verdicts)}, {speeds} img/s; {_said(done, 'accept-contended', 'idle')} |"
            )
        ids = [r["run_id"] for r in runs if r["status"] == "ok"]
        for extra in ([], ["--accept-contended"]):
            wall, done = dlbench(db, "baseline", "set", "busy-lenet", *ids, *extra)
            lines.append(
                f"| `dlbench baseline set busy-lenet RUN RUN RUN {' '.join(extra)}` | "
                f"{wall:,.1f} | {done.returncode} | {_said(done, 'accepted', 'contended')} |"
            )
        wall, done = dlbench(db, "check", "busy-lenet")
        lines.append(
            f"| `dlbench check busy-lenet` | {wall:,.1f} | {done.returncode} | "
            f"{_said(done, 'inconclusive', 'pass', 'regression', 'improvement')} |"
        )
    finally:
        stop(loops)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-quickstart", action="store_true")
    parser.add_argument("--skip-maxbatch", action="store_true")
    parser.add_argument("--skip-contended", action="store_true")
    parser.add_argument("--only-contended", action="store_true")
    args = parser.parse_args()
    if not args.only_contended:
        quiet_case(args)
    if args.skip_contended:
        return
    with tempfile.TemporaryDirectory() as tmp:
        busy = contended_case(Path(tmp) / "busy.sqlite")
    text = (
        f"Machine: {machine()}. Beside two busy loops (as many as the usable CPUs) that this "
        "script started, on a fresh database: what a user meets on a machine that is never "
        "quiet, and what each command ends with.\n\n"
        + "\n".join(busy)
        + "\n\nCommand: `.venv/bin/python benchmarks/first_hour.py` (this part alone: "
        "`--only-contended`)"
    )
    print(text)
    write_section("first-hour-contended", text)


def quiet_case(args: argparse.Namespace) -> None:
    lines = [
        "| Command | Wall (s) | Setup | Warm-up | Train (timed) | Validate | Infer and rest |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "first-hour.sqlite"
        lines += [short_run(db, workload, options) for workload, options in SHORT_RUNS]
        if not args.skip_quickstart:
            wall, done = dlbench(db, "quickstart")
            lines.append(f"| `dlbench quickstart` (6 runs) | {wall:,.1f} | | | | | |")
            if done.returncode != 0:
                lines.append(f"| (quickstart exited {done.returncode}) | | | | | | |")
        if not args.skip_maxbatch:
            wall, done = dlbench(
                None, "maxbatch", "mlp-mnist", "--device", "cpu", "--memory-limit", "1GiB", "--json"
            )
            found = json.loads(done.stdout) if done.returncode == 0 else {}
            lines.append(
                f"| `dlbench maxbatch mlp-mnist --memory-limit 1GiB`: batch "
                f"{found.get('max_batch_size')}, {len(found.get('probes', []))} probes, "
                f"{(found.get('bytes_per_sample') or 0) / 2**10:,.0f} KiB per sample | "
                f"{wall:,.1f} | | | | | |"
            )
    text = (
        f"Machine: {machine()}. Synthetic data; each command in a fresh process on a fresh "
        "database, one after another. Setup counts from the run's process start (imports, "
        "data, model); the last column is the rest of the command's life: checkpoint, reload, "
        "test-set prediction, latency, storing, and the launcher's own start.\n\n"
        + "\n".join(lines)
        + "\n\nCommand: `.venv/bin/python benchmarks/first_hour.py`"
    )
    print(text)
    write_section("first-hour", text)


if __name__ == "__main__":
    main()
