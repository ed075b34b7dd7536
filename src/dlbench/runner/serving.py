"""A run's progress on its Prometheus endpoint (``dlbench run --metrics-port``): the steps done,
images/s over the last seconds, the phase, beside the run's telemetry. It wraps the run's
progress reporter, so it sees every step as the terminal's bar does, at no cost beyond a
counter; a scrape computes the rate from the last few seconds of step times."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric, StateSetMetricFamily

from dlbench.telemetry.prometheus import MetricsServer, TelemetryCollector, constant_labels

PHASES = ("setup", "warm-up", "train", "train to accuracy", "profile", "validate", "infer", "done")
RATE_WINDOW_S = 5.0


class RunMetrics:
    """A progress reporter (``runner.benchmark.Progress``) that also counts for Prometheus."""

    def __init__(self, inner: Any, images_per_step: int, labels: dict[str, str]) -> None:
        self.inner, self.images_per_step, self.labels = inner, images_per_step, labels
        self.phase_name = "setup"
        self.steps = 0
        self._times: collections.deque[float] = collections.deque(maxlen=4096)
        self._lock = threading.Lock()

    def phase(self, name: str, total: int | None) -> None:
        self.phase_name = name
        self.inner.phase(name, total)

    def advance(self) -> None:
        with self._lock:
            self.steps += 1
            self._times.append(time.monotonic())
        self.inner.advance()

    def close(self) -> None:
        self.phase_name = "done"
        self.inner.close()

    def images_per_second(self, now: float | None = None) -> float:
        """Images/s over the steps of the last RATE_WINDOW_S (0 when none ended there)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._times if now - t <= RATE_WINDOW_S]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) * self.images_per_step / (recent[-1] - recent[0])

    def __call__(self) -> Iterator[Metric]:
        names, values = list(self.labels), list(self.labels.values())
        steps = GaugeMetricFamily(
            "dlbench_run_steps_completed", "steps done (warm-up and timed)", labels=names
        )
        steps.add_metric(values, self.steps)
        rate = GaugeMetricFamily(
            "dlbench_run_images_per_second",
            f"images/s over the last {RATE_WINDOW_S:g} s of steps",
            labels=names,
        )
        rate.add_metric(values, self.images_per_second())
        phase = StateSetMetricFamily("dlbench_run_phase", "the run's phase", labels=names)
        known = self.phase_name if self.phase_name in PHASES else "setup"
        phase.add_metric(values, {p: p == known for p in PHASES})
        yield from (steps, rate, phase)


def serve_run(
    spec: Any, run_id: str, progress: Any
) -> tuple[MetricsServer, RunMetrics, TelemetryCollector]:
    """The run's endpoint on ``spec.metrics_port``: its progress and its telemetry."""
    labels = constant_labels(run_id, spec.workload)
    run = RunMetrics(progress, int(spec.batch_size or 0) * spec.processes, labels)
    collector = TelemetryCollector(labels, extra=run)
    return MetricsServer(collector, spec.metrics_port, spec.metrics_host), run, collector


__all__ = ["RunMetrics", "serve_run"]
