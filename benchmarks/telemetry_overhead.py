"""Training throughput with telemetry on vs off, and what each sampler tick costs.

In one process on one model (lenet-mnist on the CPU, the most Python-heavy workload, so the
most sensitive to a sampler thread competing for the interpreter), blocks of training with
the real sampler running (every standard source, samples flushed to a real SQLite store)
alternate with blocks without it; the figure is the median of the per-pair throughput ratios.
Goals: >= 0.99 at a 1 s interval, >= 0.98 at 0.1 s. With ``--serve`` the on blocks also serve
``/metrics`` (prometheus-client) and a thread scrapes it every second, as Prometheus would:
the goal there is >= 0.99 too.

    .venv/bin/python benchmarks/telemetry_overhead.py [--pairs 8] [--block-s 4]
    .venv/bin/python benchmarks/telemetry_overhead.py --device cuda --workload resnet18 \
        --intervals 0.1   # on a GPU: the NVML source sampled every 0.1 s too
    .venv/bin/python benchmarks/telemetry_overhead.py --serve --intervals 1
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
from pathlib import Path

from dlbench.config import build_spec
from dlbench.engines import get_engine
from dlbench.store.database import Store
from dlbench.telemetry import build_sources
from dlbench.telemetry.sampler import Sampler
from dlbench.workloads import get_workload

from _report import machine, write_section
from harness_loop_overhead import plain_block

WORKLOAD = "lenet-mnist"


class Served:
    """A sampler whose ticks are served on /metrics and scraped every ``every_s``."""

    def __init__(self, sources, interval, sink, workload, every_s=1.0):
        import threading

        from dlbench.telemetry.prometheus import MetricsServer, TelemetryCollector, constant_labels

        self.collector = TelemetryCollector(constant_labels("bench", workload))
        self.server = MetricsServer(self.collector, 0)
        self.sampler = Sampler(sources, interval, sink, on_tick=self.collector.update)
        self.every_s, self.scrapes, self._stop = every_s, 0, threading.Event()
        self._thread = threading.Thread(target=self._scrape, daemon=True)

    def _scrape(self):
        import urllib.request

        while not self._stop.wait(self.every_s):
            with urllib.request.urlopen(f"http://127.0.0.1:{self.server.port}/metrics") as r:
                r.read()
            self.scrapes += 1

    def start(self):
        self.sampler.start()
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        report = self.sampler.stop()
        self.server.close()
        return report


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--block-s", type=float, default=4.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workload", default=WORKLOAD)
    parser.add_argument("--intervals", default="1,0.1", help="comma-separated seconds")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--serve", action="store_true", help="serve /metrics, scraped every 1 s")
    args = parser.parse_args(argv)
    spec = build_spec(workload=args.workload, device=args.device, precision="fp32")
    engine = get_engine("pytorch")
    engine.setup(spec, get_workload(args.workload), None)
    speed = plain_block(spec, engine, 30)
    steps = max(10, int(args.block_s * speed / spec.batch_size))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "bench.sqlite"))
        store.create_run("bench", "train", spec.model_dump(mode="json"))
        sink = functools.partial(store.add_samples, "bench")
        for interval in (float(x) for x in args.intervals.split(",")):
            ratios, ticks_cpu, samples_per_tick = [], [], []
            for pair in range(args.pairs):
                sources = build_sources(pid=os.getpid())
                sampler = (
                    Served(sources, interval, sink, args.workload)
                    if args.serve
                    else Sampler(sources, interval, sink)
                )
                if pair % 2:
                    off = plain_block(spec, engine, steps)
                    sampler.start()
                    on = plain_block(spec, engine, steps)
                    report = sampler.stop()
                else:
                    sampler.start()
                    on = plain_block(spec, engine, steps)
                    report = sampler.stop()
                    off = plain_block(spec, engine, steps)
                ratios.append(on / off)
                ticks_cpu.append(report.cpu_time_per_tick_s)
                samples_per_tick.append(report.samples / report.ticks)
                named = report.sources
                print(
                    f"interval {interval}: on/off {on / off:.4f}, {report.ticks} ticks, "
                    f"{report.cpu_time_per_tick_s * 1e3:.2f} ms CPU per tick",
                    flush=True,
                )
            cpu_ms = statistics.median(ticks_cpu) * 1e3
            rows.append(
                f"| {interval:g} s | {statistics.median(ratios):.4f} | "
                f"{min(ratios):.4f}–{max(ratios):.4f} | {cpu_ms:.2f} | "
                f"{statistics.median(samples_per_tick):.0f} | {cpu_ms / interval / 10:.3f}% |"
            )
    device = engine.resolve_device(args.device)
    sampled = ", ".join(f"{name} {state.split(' (')[0]}" for name, state in named.items())
    served = " The on blocks also serve /metrics, scraped every second." if args.serve else ""
    table = "\n".join(
        [
            f"`{args.workload}` on `{args.device}` ({device.device_name}); {machine()}; "
            f"{args.pairs} pairs of ~{args.block_s:g} s training blocks ({steps} steps), order "
            f"alternating. Sources: {sampled}.{served}",
            "",
            "| interval | throughput on/off (median) | range | sampler CPU per tick (ms) | "
            "samples per tick | sampler CPU share of one core |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Command: `.venv/bin/python benchmarks/telemetry_overhead.py --pairs {args.pairs} "
            f"--block-s {args.block_s:g} --device {args.device} --workload {args.workload} "
            f"--intervals {args.intervals}{' --serve' if args.serve else ''}`",
        ]
    )
    print(table)
    if not args.no_write:
        served_name = "-served" if args.serve else ""
        write_section(f"telemetry-overhead{served_name}-{device.kind}", table)
    return table


if __name__ == "__main__":
    main()
