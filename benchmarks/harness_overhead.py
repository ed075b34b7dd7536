"""dlbench's measured throughput vs a minimal hand-written PyTorch loop.

Each measurement is a fresh process (as dlbench runs are), in pairs whose order alternates
(A B, B A, A B, ...) so that machine noise and any first-in-pair effect hit both alike; the
figure is the median of the per-pair ratios.
Goal: dlbench / plain >= 0.97.

    .venv/bin/python benchmarks/harness_overhead.py [--pairs 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import dlbench_run as run_summary
from _report import machine, write_section

HERE = Path(__file__).resolve().parent
# Timed steps per workload: about 10-15 s of training each on a 2-core CPU.
CASES = {"lenet-mnist": 400, "cifar10-cnn": 100}
WARMUP = 10


def dlbench_run(workload: str, steps: int, device: str, db: Path) -> dict:
    return run_summary(workload, WARMUP, steps, db, "--device", device)


def plain_run(workload: str, steps: int, device: str) -> float:
    done = subprocess.run(
        [sys.executable, str(HERE / "plain_loop.py"), workload, str(WARMUP), str(steps), device],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        for workload, steps in CASES.items():
            mean_ratio, e2e_ratio, plain_speeds, dl_speeds = [], [], [], []
            for pair in range(args.pairs):
                if pair % 2:
                    plain = plain_run(workload, steps, args.device)
                    summary = dlbench_run(workload, steps, args.device, db)
                else:
                    summary = dlbench_run(workload, steps, args.device, db)
                    plain = plain_run(workload, steps, args.device)
                plain_speeds.append(plain)
                dl_speeds.append(summary["throughput_e2e"])
                mean_ratio.append(summary["mean_speed"] / plain)
                e2e_ratio.append(summary["throughput_e2e"] / plain)
                print(
                    f"{workload} pair {pair + 1}: plain {plain:,.0f} img/s, dlbench mean "
                    f"{summary['mean_speed']:,.0f}, e2e {summary['throughput_e2e']:,.0f}",
                    flush=True,
                )
            rows.append(
                f"| {workload} | {steps} | {statistics.median(plain_speeds):,.0f} | "
                f"{statistics.median(dl_speeds):,.0f} | {statistics.median(e2e_ratio):.3f} | "
                f"{statistics.median(mean_ratio):.3f} | {min(e2e_ratio):.3f}–{max(e2e_ratio):.3f} |"
            )
    table = "\n".join(
        [
            f"Device `{args.device}`; {machine()}; {args.pairs} pairs of fresh processes, "
            "order alternating.",
            "",
            "| workload | timed steps | plain loop (img/s, median) | dlbench e2e (img/s, median) "
            "| e2e ratio (median) | mean_speed ratio (median) | e2e ratio range |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Command: `.venv/bin/python benchmarks/harness_overhead.py --pairs "
            f"{args.pairs} --device {args.device}`",
        ]
    )
    print(table)
    if not args.no_write:
        write_section(f"harness-overhead-{args.device}", table)


if __name__ == "__main__":
    main()
