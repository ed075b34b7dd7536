"""The sampler: a background thread that reads every source at fixed deadlines.

Deadlines are ``next += interval`` on the monotonic clock, so the period does not drift; a
deadline already passed is skipped rather than sampled late in a burst. Samples are handed to
``sink`` in batches (every ``flush_s`` seconds or ``flush_samples`` samples), so memory stays
bounded and a crash loses at most one batch. A source that raises is closed and dropped with
one warning; the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dlbench.records import TelemetrySample
from dlbench.telemetry.base import Source, SourceUnavailable

log = logging.getLogger("dlbench.telemetry")


def derived(tick: dict[str, float]) -> dict[str, float]:
    """Metrics computed from others of the same tick: ``cpu.foreign_cores``, the busy cores
    of the run's CPUs that its own process tree did not use (other work, tick by tick)."""
    busy, own = tick.get("cpu.busy_cores"), tick.get("proc.cpu_percent")
    if busy is None or own is None:
        return {}
    return {"cpu.foreign_cores": max(0.0, busy - own / 100.0)}


MAX_UNSAVED_SAMPLES = 500_000  # ~100 MB of samples kept while the store refuses them
RETRY_AFTER_FAILURE_S = 30.0
Sink = Callable[[list[TelemetrySample]], None]


def next_deadline(last: float, now: float, interval_s: float) -> tuple[float, int]:
    """The tick after the one due at ``last``, on the fixed grid last + k x interval (so the
    period never drifts), and how many deadlines already passed at ``now`` were skipped."""
    deadline = last + interval_s
    if deadline >= now:
        return deadline, 0
    skipped = int((now - deadline) // interval_s) + 1  # fell behind: keep the grid
    return deadline + skipped * interval_s, skipped


@dataclass
class SamplerReport:
    """How sampling went: what was sampled, what was missing and why, and what it cost."""

    interval_s: float
    ticks: int = 0
    samples: int = 0
    missed_ticks: int = 0
    cpu_time_per_tick_s: float | None = None
    sources: dict[str, str] = field(default_factory=dict)  # name -> ok | unavailable: ... | ...


class Sampler:
    def __init__(
        self,
        sources: Sequence[Source],
        interval_s: float,
        sink: Sink,
        flush_s: float = 5.0,
        flush_samples: int = 20_000,
        on_sink_error: Callable[[Exception], None] | None = None,
        on_tick: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        """``on_tick`` sees each tick's values as they are read (the Prometheus endpoint)."""
        self.interval_s = interval_s
        self._on_tick = on_tick
        self._sink, self._flush_s, self._flush_samples = sink, flush_s, flush_samples
        self._on_sink_error = on_sink_error
        self._phase = "setup"
        self._buffer: list[TelemetrySample] = []
        self.unsaved: list[TelemetrySample] = []  # refused by the sink, newest kept
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dlbench-sampler", daemon=True)
        self.report = SamplerReport(interval_s)
        self._sources: list[Source] = []
        self._cpu_s = 0.0
        for source in sources:
            try:
                source.open()
            except SourceUnavailable as exc:
                self.report.sources[source.name] = f"unavailable: {exc}"
                continue
            notes = getattr(source, "notes", None)
            self.report.sources[source.name] = f"ok ({'; '.join(notes)})" if notes else "ok"
            self._sources.append(source)

    def set_phase(self, phase: str) -> None:
        self._phase = phase  # read by the sampler thread; a str assignment is atomic

    def start(self) -> Sampler:
        self._t0 = time.monotonic()
        self._wall0 = time.time()
        self._thread.start()
        return self

    def _loop(self) -> None:
        next_tick = time.monotonic()
        last_flush = next_tick
        while not self._stop.is_set():
            self._tick()
            now = time.monotonic()
            if now - last_flush >= self._flush_s or len(self._buffer) >= self._flush_samples:
                self._flush()
                last_flush = now
            next_tick, skipped = next_deadline(next_tick, now, self.interval_s)
            self.report.missed_ticks += skipped
            self._stop.wait(next_tick - time.monotonic())

    def _tick(self) -> None:
        cpu_start = time.thread_time()
        now = time.monotonic()
        t_s, wall, phase = now - self._t0, self._wall0 + (now - self._t0), self._phase
        tick: dict[str, float] = {}
        for source in list(self._sources):
            try:
                tick.update(source.read(now))
            except Exception as exc:  # noqa: BLE001 - one broken source must not stop the rest
                self._disable(source, exc)
        tick.update(derived(tick))
        if self._on_tick is not None:
            try:
                self._on_tick(tick)
            except Exception as exc:  # noqa: BLE001 - serving must never stop the sampling
                log.warning("telemetry not served: %s", exc)
                self._on_tick = None
        self._buffer.extend(
            TelemetrySample(t_s, wall, phase, metric, float(value))
            for metric, value in tick.items()
        )
        self.report.ticks += 1
        self._cpu_s += time.thread_time() - cpu_start

    def _disable(self, source: Source, exc: Exception) -> None:
        self._sources.remove(source)
        self.report.sources[source.name] = f"disabled: {type(exc).__name__}: {exc}"
        log.warning("telemetry source %s failed and is disabled: %s", source.name, exc)
        try:
            source.close()
        except Exception:  # noqa: BLE001
            pass

    def _flush(self, final: bool = False) -> None:
        batch, self._buffer = self._buffer, []
        self.report.samples += len(batch)
        # After a failure (a full disk) what the store refused is kept in memory, up to a
        # bound, for the run's saved result; it is retried only every RETRY_AFTER_FAILURE_S
        # and at the end, so that a refusing store does not cost the run CPU every flush.
        if self.unsaved and not final and time.monotonic() < self._retry_at:
            self.unsaved.extend(batch)
            del self.unsaved[:-MAX_UNSAVED_SAMPLES]
            return
        pending = self.unsaved + batch
        if not pending:
            return
        try:
            self._sink(pending)
        except Exception as exc:  # noqa: BLE001 - losing a batch must not kill the run
            if self._on_sink_error is not None:
                self._on_sink_error(exc)
            elif not self.unsaved:
                log.warning("telemetry not stored, kept in memory meanwhile: %s", exc)
            self.unsaved = pending[-MAX_UNSAVED_SAMPLES:]
            self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
        else:
            self.unsaved = []

    def stop(self) -> SamplerReport:
        """Take a last sample, stop the thread, flush everything, close the sources."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._tick()  # the state at the very end (e.g. the energy counter)
        self._flush(final=True)
        for source in self._sources:
            try:
                source.close()
            except Exception:  # noqa: BLE001
                pass
        if self.report.ticks:
            self.report.cpu_time_per_tick_s = self._cpu_s / self.report.ticks
        return self.report


class NullSampler:
    """Telemetry off: the same calls, doing nothing, so call sites never branch."""

    def __init__(self) -> None:
        self.report = SamplerReport(0.0)
        self.unsaved: list[TelemetrySample] = []

    def set_phase(self, phase: str) -> None:
        pass

    def start(self) -> NullSampler:
        return self

    def stop(self) -> SamplerReport:
        return self.report
