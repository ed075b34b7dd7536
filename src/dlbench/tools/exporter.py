"""``dlbench exporter``: a node exporter of dlbench's own: this machine's telemetry (CPU, memory,
disk, network, GPUs, energy) on ``/metrics`` without a run, and the last stored run's figures
per workload and device, so a Grafana panel can set today's throughput beside the machine's
state. Runs until Ctrl-C or SIGTERM (a systemd service's stop)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from dlbench.store.database import Store
from dlbench.telemetry import build_sources
from dlbench.telemetry.prometheus import MetricsServer, TelemetryCollector, constant_labels
from dlbench.telemetry.sampler import Sampler

RUNS_REFRESH_S = 30.0  # the store is read at most this often, however often it is scraped
LAST_RUN = (  # column, metric, help
    ("mean_speed", "dlbench_last_run_images_per_second", "images/s of the last ok run"),
    ("mean_step_time_s", "dlbench_last_run_step_seconds", "mean step time of the last ok run"),
)


class LastRuns:
    """The newest ok training run of each (workload, device) in the store, as gauges."""

    def __init__(self, store: Store | None, host: str, refresh_s: float = RUNS_REFRESH_S) -> None:
        self.store, self.host, self.refresh_s = store, host, refresh_s
        self._rows: list[dict[str, Any]] = []
        self._read_at = -float("inf")
        self._lock = threading.Lock()

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            if self.store is not None and time.monotonic() - self._read_at >= self.refresh_s:
                self._read_at = time.monotonic()
                newest: dict[tuple[str, str], dict[str, Any]] = {}
                for row in self.store.run_table():  # newest first
                    if row["kind"] == "train" and row["status"] == "ok":
                        newest.setdefault((row["workload"], row["device_name"] or ""), row)
                self._rows = list(newest.values())
            return self._rows

    def __call__(self) -> Iterator[Metric]:
        labels = ["host", "workload", "device"]
        rows = self.rows()
        for column, name, text in LAST_RUN:
            family = GaugeMetricFamily(name, text, labels=labels)
            for row in rows:
                if row[column] is not None:
                    family.add_metric(
                        [self.host, row["workload"], row["device_name"] or ""], row[column]
                    )
            yield family
        ended = GaugeMetricFamily(
            "dlbench_last_run_end_timestamp_seconds", "when the last ok run ended", labels=labels
        )
        for row in rows:
            if row["finished_at"]:
                when = datetime.fromisoformat(row["finished_at"]).timestamp()
                ended.add_metric([self.host, row["workload"], row["device_name"] or ""], when)
        yield ended


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
    sampler = Sampler(build_sources(), interval_s, lambda _batch: None, on_tick=collector.update)
    sampler.start()
    try:
        if on_ready is not None:
            on_ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        sampler.stop()
        server.close()


__all__ = ["LastRuns", "serve"]
