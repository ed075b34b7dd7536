"""``dlbench exporter``: a node exporter of dlbench's own: this machine's telemetry (CPU, memory,
disk, network, GPUs, energy) on ``/metrics`` without a run, and the last stored run's figures
per workload and device, so a Grafana panel can set today's throughput beside the machine's
state. Runs until Ctrl-C or SIGTERM (a systemd service's stop)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from dlbench.errors import DlbenchError
from dlbench.store.database import Store
from dlbench.telemetry import build_sources
from dlbench.telemetry.prometheus import MetricsServer, TelemetryCollector, constant_labels
from dlbench.telemetry.sampler import Sampler

RUNS_REFRESH_S = 30.0  # the store is read at most this often, however often it is scraped
# What tells one configuration's series from another's (each its newest ok run), and its
# measurement quality, so that a contended run is never read as the machine's speed.
LABELS = ("host", "workload", "device", "framework", "batch_size", "precision", "gpus", "quality")


@dataclass(frozen=True)
class LastRun:
    labels: tuple[str, ...]  # the values of LABELS
    speed: float | None  # images or sequences per second
    language: bool  # a language model's: sequences (and tokens) per second
    tokens_per_s: float | None
    step_s: float | None
    ended_at: float | None  # Unix time


class LastRuns:
    """The newest ok training run of each configuration in the store, as gauges."""

    def __init__(self, store: Store | None, host: str, refresh_s: float = RUNS_REFRESH_S) -> None:
        self.store, self.host, self.refresh_s = store, host, refresh_s
        self._runs: list[LastRun] = []
        self._read_at = -float("inf")
        self._lock = threading.Lock()

    def runs(self) -> list[LastRun]:
        with self._lock:
            if self.store is not None and time.monotonic() - self._read_at >= self.refresh_s:
                self._read_at = time.monotonic()
                self._runs = self._read(self.store)
            return self._runs

    def _read(self, store: Store) -> list[LastRun]:
        newest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in store.run_table():  # newest first; without the documents: fast
            if row["kind"] == "train" and row["status"] == "ok":
                key = tuple(row[c] for c in ("hostname", "workload", "device_name", "framework",
                                             "batch_size", "precision", "num_gpus"))  # fmt: skip
                newest.setdefault(key, row)
        found = []
        for row in newest.values():
            try:
                run = store.run(row["run_id"])  # the few newest, whole: a sequence's tokens
            except DlbenchError:
                continue
            ended = datetime.fromisoformat(run.finished_at).timestamp() if run.finished_at else None
            # host: where the run was measured (a shared store holds other machines' runs)
            measured_on = str((run.hardware or {}).get("hostname") or self.host)
            labels = (measured_on, str(run.workload), run.device_name or str(run.device),
                      str(run.framework), str(run.batch_size), str(run.precision),
                      str(run.num_gpus or 0), run.quality_verdict or "not measured")  # fmt: skip
            found.append(LastRun(labels, run.mean_speed, run.seq_len is not None,
                                 run.tokens_per_s, run.mean_step_time_s, ended))  # fmt: skip
        return found

    def __call__(self) -> Iterator[Metric]:
        runs = self.runs()
        families = (
            ("dlbench_last_run_images_per_second",
             "Training speed of the newest ok run of this configuration, images per second",
             lambda r: None if r.language else r.speed),
            ("dlbench_last_run_sequences_per_second",
             "Training speed of the newest ok run of this language-model configuration, "
             "sequences per second", lambda r: r.speed if r.language else None),
            ("dlbench_last_run_tokens_per_second",
             "Training speed of the newest ok run of this language-model configuration, "
             "tokens per second", lambda r: r.tokens_per_s),
            ("dlbench_last_run_step_seconds",
             "Mean training step time of the newest ok run of this configuration, seconds",
             lambda r: r.step_s),
            ("dlbench_last_run_end_timestamp_seconds",
             "When the newest ok run of this configuration ended, Unix time",
             lambda r: r.ended_at),
        )  # fmt: skip
        for name, text, value in families:
            family = GaugeMetricFamily(name, text, labels=list(LABELS))
            for run in runs:
                figure = value(run)
                if figure is not None:
                    family.add_metric(list(run.labels), figure)
            yield family


def serve(
    store: Store | None,
    port: int,
    host: str,
    interval_s: float,
    stop: threading.Event,
    on_ready: Callable[[MetricsServer], None] | None = None,
) -> None:
    """Sample and serve until ``stop`` is set (or Ctrl-C)."""
    labels = constant_labels()
    collector = TelemetryCollector(labels, extra=LastRuns(store, labels["host"]))
    server = MetricsServer(collector, port, host, option="--port")
    # The machine, not the exporter: its own process is no run (no proc_* series).
    sources = build_sources(process=False)
    sampler = Sampler(sources, interval_s, lambda _batch: None, on_tick=collector.update)
    sampler.start()
    try:
        if on_ready is not None:
            on_ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        sampler.stop()
        server.close()


__all__ = ["LastRun", "LastRuns", "serve"]
