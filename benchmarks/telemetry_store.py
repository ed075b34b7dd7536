"""Telemetry in the store: ingest rate, and reading one metric of one run among a million.

Fills a fresh SQLite store with RUNS runs of METRICS metrics x TICKS ticks (1,000,000 samples)
in sampler-sized batches, then times reading one metric of one run, and one whole run.

    .venv/bin/python benchmarks/telemetry_store.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dlbench.records import TelemetrySample
from dlbench.store.database import Store

from _report import machine, write_section

RUNS, METRICS, TICKS = 10, 50, 2000  # 1,000,000 samples
BATCH_TICKS = 100  # a sampler flush every 5 s at 0.05 s: 100 ticks of every metric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    metrics = [f"m{i:02d}.value" for i in range(METRICS)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "bench.sqlite"))
        start = time.perf_counter()
        for run in range(RUNS):
            run_id = f"run{run}"
            store.create_run(run_id, "train", {"workload": "x"})
            for first in range(0, TICKS, BATCH_TICKS):
                batch = [
                    TelemetrySample(t * 0.05, 1e9 + t * 0.05, "train", m, float(t))
                    for t in range(first, first + BATCH_TICKS)
                    for m in metrics
                ]
                store.add_samples(run_id, batch)
        ingest_s = time.perf_counter() - start
        total = RUNS * METRICS * TICKS
        one_metric, whole_run = [], []
        for i in range(20):
            run_id, metric = f"run{i % RUNS}", metrics[(7 * i) % METRICS]
            t0 = time.perf_counter()
            assert len(store.get_samples(run_id, [metric])) == TICKS
            one_metric.append(time.perf_counter() - t0)
        for i in range(3):
            t0 = time.perf_counter()
            assert len(store.get_samples(f"run{i}")) == METRICS * TICKS
            whole_run.append(time.perf_counter() - t0)
        size_mb = (Path(tmp) / "bench.sqlite").stat().st_size / 2**20
    table = "\n".join(
        [
            f"SQLite file store; {machine()}.",
            "",
            "| samples in the table | ingest (samples/s) | one metric of one run "
            f"({TICKS:,} samples), median | one whole run ({METRICS * TICKS:,} samples), median | "
            "file size |",
            "|---|---|---|---|---|",
            f"| {total:,} | {total / ingest_s:,.0f} | {statistics.median(one_metric) * 1e3:.1f} ms "
            f"| {statistics.median(whole_run):.2f} s | {size_mb:.0f} MiB |",
            "",
            "Command: `.venv/bin/python benchmarks/telemetry_store.py`",
        ]
    )
    print(table)
    if not args.no_write:
        write_section("telemetry-store", table)


if __name__ == "__main__":
    main()
