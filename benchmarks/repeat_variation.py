"""Run-to-run variation: repeats of one configuration against each run's own interval.

Each workload is run N times, each a fresh ``dlbench run`` process, workloads interleaved
(A, B, A, B, ...) so that the machine's drift hits them alike; the table sets the between-run
coefficient of variation and 95% interval beside the runs' own (within-run) intervals, and
counts the quality verdicts.

    .venv/bin/python benchmarks/repeat_variation.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from dlbench.measure.stats import between_runs

from _report import dlbench_run, machine, write_section

CASES = {"lenet-mnist": 200, "cifar10-cnn": 60}  # timed steps: ~5-10 s of training each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {w: [] for w in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "repeats.sqlite"
        for r in range(args.repeats):
            order = list(CASES) if r % 2 == 0 else list(CASES)[::-1]
            for workload in order:
                summary = dlbench_run(workload, 10, CASES[workload], db, "--device", "cpu")
                runs[workload].append(summary)
                print(
                    f"{workload}: {summary['mean_speed']:,.1f} img/s "
                    f"({summary['quality_verdict']})",
                    flush=True,
                )
    rows = []
    for workload, summaries in runs.items():
        spread = between_runs([s["mean_speed"] for s in summaries])
        assert spread is not None and spread.ci95 is not None and spread.cv is not None
        within = statistics.median(
            (s["speed_ci95"][1] - s["speed_ci95"][0]) / 2 / s["mean_speed"] for s in summaries
        )
        verdicts = Counter(s["quality_verdict"] for s in summaries)
        rows.append(
            f"| {workload} | {CASES[workload]} | {spread.runs} | {spread.mean_speed:,.1f} | "
            f"{spread.cv:.1%} | {spread.ci95[0]:,.1f}–{spread.ci95[1]:,.1f} | "
            f"{spread.low:,.1f}–{spread.high:,.1f} | ±{within:.1%} | "
            + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
            + " |"
        )
    table = "\n".join(
        [
            f"On the CPU; {machine()}; {args.repeats} fresh processes per workload, interleaved.",
            "",
            "| workload | timed steps | runs | mean img/s | between-run CV | 95% CI of the mean "
            "| range | within-run 95% CI (median half-width) | quality |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Command: `.venv/bin/python benchmarks/repeat_variation.py --repeats {args.repeats}`",
        ]
    )
    print(table)
    if not args.no_write:
        write_section("repeat-variation-cpu", table)


if __name__ == "__main__":
    main()
