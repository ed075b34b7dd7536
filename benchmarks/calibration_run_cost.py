"""What one calibration run costs with and without its validation and inference phases.

A calibration run is a short training of one model shape (``dlbench calibrate``); only its
step time is learned from, so since issue 18 it skips validation and inference. This times the
same run both ways, interleaved (A, B, A, B ...), each a real `dlbench run` in a fresh process.

    .venv/bin/python benchmarks/calibration_run_cost.py [--pairs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import machine, write_section

RUN = [
    "run", "param-vgg", "--depth", "8", "--width", "16", "--image-size", "32",
    "--batch-size", "32", "--device", "cpu", "--warmup", "3", "--steps", "23",
    "--val-batches", "1", "--no-telemetry",
]  # fmt: skip
SKIP = ["--no-validate", "--no-infer"]


def wall(db: Path, extra: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dlbench", *RUN, *extra, "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-400:])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    full, short = [], []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cost.sqlite"
        for _ in range(args.pairs):
            full.append(wall(db, []))
            short.append(wall(db, SKIP))
    ratio = statistics.median(short) / statistics.median(full)
    text = (
        f"Machine: {machine()}. `dlbench {' '.join(RUN)}`, {args.pairs} pairs interleaved, "
        "wall seconds of the whole command.\n\n"
        "| Phases | Median (s) | Min | Max |\n|---|---|---|---|\n"
        f"| train, validate, infer | {statistics.median(full):.1f} | {min(full):.1f} | "
        f"{max(full):.1f} |\n"
        f"| train only (`--no-validate --no-infer`, as calibration runs now) | "
        f"{statistics.median(short):.1f} | {min(short):.1f} | {max(short):.1f} |\n\n"
        f"A calibration run takes {ratio:.2f} of the time it took: a budget buys "
        f"{1 / ratio:.2f}x the configurations. Command: "
        f"`.venv/bin/python benchmarks/calibration_run_cost.py --pairs {args.pairs}`"
    )
    print(text)
    write_section("calibration-run-cost", text)


if __name__ == "__main__":
    main()
