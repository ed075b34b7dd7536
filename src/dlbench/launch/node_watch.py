"""A node's own watch over its share of a run over several nodes (node K > 0).

Rank 0 samples node 0 and judges it. Each other node's dlbench samples its own processes and
machine the same way, storing its telemetry in the run with the node's name before each
metric (``node1/cpu.util_percent``), follows the run's phase from the store, and accounts
the other work on its CPUs. Once node 0 has closed the run, the node's verdict joins the
run's: the run's verdict is its worst node's, and every node's reasons are listed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from dlbench.measure.quality import judge
from dlbench.records import Quality, TelemetrySample
from dlbench.runner.storing import phase_metrics
from dlbench.store.database import Store
from dlbench.telemetry import build_sources
from dlbench.telemetry.interference import InterferenceMeter
from dlbench.telemetry.sampler import Sampler
from dlbench.telemetry.summary import summarise

log = logging.getLogger(__name__)
PHASE_POLL_S = 1.0


@dataclass(frozen=True)
class WatchPlan:
    interval_s: float  # the run's telemetry period
    gpus: bool  # the run computes on GPUs (their other processes count as other work)
    timed_phase: str = "train"  # over which other work is accounted


class NodeWatch:
    def __init__(self, store: Store, run_id: str, node: str, plan: WatchPlan) -> None:
        self.store, self.run_id, self.node = store, run_id, node
        self.interval_s, self.gpus, self.timed = plan.interval_s, plan.gpus, plan.timed_phase
        self.samples: list[TelemetrySample] = []  # as read, before the node's name is added
        self._sampler: Sampler | None = None
        self._meter: InterferenceMeter | None = None
        self._interference: Any = None
        self._timed_seen = False
        self._polled = 0.0
        self._pid = 0

    def start(self, pid: int) -> None:
        """Watch the process tree of ``pid`` (this node's torchrun) from now on. Other work is
        accounted from here until the timed phase is seen, then over that phase alone (to a
        poll's precision); a timed phase shorter than a poll keeps the whole life's account."""
        self._pid = pid
        try:
            self._meter = self._new_meter()
            self._sampler = Sampler(
                build_sources(pid=pid),
                self.interval_s,
                self._sink,
                on_sink_error=self.store.warn_write_failure,
                on_tick=self._follow_phase,
            ).start()
        except Exception as exc:  # noqa: BLE001 - the run matters more than its watch
            log.warning("node %s: telemetry did not start: %s", self.node, exc)

    def _new_meter(self) -> InterferenceMeter | None:
        try:
            return InterferenceMeter(self._pid, None if self.gpus else ()).start()
        except Exception as exc:  # noqa: BLE001 - a run without a verdict, never without a run
            log.warning("node %s: interference accounting did not start: %s", self.node, exc)
            return None

    def _sink(self, samples: list[TelemetrySample]) -> None:
        self.samples.extend(samples)
        named = [dataclasses.replace(s, metric=f"{self.node}/{s.metric}"[:96]) for s in samples]
        self.store.add_samples(self.run_id, named)

    def _follow_phase(self, _values: dict[str, float]) -> None:
        now = time.monotonic()
        if self._sampler is None or now - self._polled < PHASE_POLL_S:
            return
        self._polled = now
        try:
            phase = str(self.store.get_run(self.run_id)["phase_reached"])
        except Exception:  # noqa: BLE001 - a missed poll keeps the last phase
            return
        self._sampler.set_phase(phase)
        if phase == self.timed and not self._timed_seen:
            self._timed_seen = True
            self._close_meter()  # the account so far is setup's: start the timed phase's
            self._interference = None
            self._meter = self._new_meter()
        elif phase != self.timed and self._timed_seen and self._meter is not None:
            self._close_meter()

    def _close_meter(self) -> None:
        meter, self._meter = self._meter, None
        try:
            self._interference = meter.stop() if meter is not None else None
        except Exception as exc:  # noqa: BLE001
            log.warning("node %s: interference accounting failed: %s", self.node, exc)

    def stop(self) -> Quality | None:
        """End the watch: this node's verdict over the timed phase (None if it never began)."""
        if self._meter is not None:
            self._close_meter()
        if self._sampler is not None:
            self._sampler.stop()
        summary: dict[str, Any] = summarise(self.samples, {self.timed: 0}) if self.samples else {}
        return judge(self._interference, phase_metrics(summary, self.timed))


NODE_FAILURE = re.compile(r"node \d+ \([^)]*, ranks \d+-\d+\): ")
CLOSED_GRACE_S = 30.0  # a run's processes may take this long to exit once it is closed


class _RunRowWatch:
    """Polls the run's row while this node's processes (torchrun, ``pid``) run, and SIGTERMs
    them once ``_stop_for`` finds a reason in it: torchrun stops its processes, then itself.
    ``said`` is that reason."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.said: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._watch, args=(pid,), daemon=True)
        self._thread.start()

    def _watch(self, pid: int) -> None:
        while not self._stop.wait(PHASE_POLL_S):
            try:
                row = self.store.get_run(self.run_id)
            except Exception:  # noqa: BLE001 - a missed poll; the next one may read it
                continue
            reason = self._stop_for(row)
            if reason is not None:
                self.said = reason
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                return

    def _stop_for(self, row: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class PeerFailures(_RunRowWatch):
    """Node 0 of a run over several nodes: when another node says, in the run's error, that
    its processes failed, stop this node's (they would wait on the lost ranks until the
    backend's timeout). ``said`` is what that node wrote."""

    def _stop_for(self, row: dict[str, Any]) -> str | None:
        error = row.get("error") or ""
        return error if row["status"] == "running" and NODE_FAILURE.search(error) else None


class RunClosed(_RunRowWatch):
    """Once the run is closed (its result stored by rank 0, or the run failed), the
    processes this launcher started have nothing left to do but exit; still running
    ``grace_s`` later, they are stuck (tearing down a process group whose peer is gone, on a
    rendezvous that never came) and are stopped, instead of waiting on the backend's
    timeout. Node K watches node 0's closing; node 0 and a node alone, their own rank 0's."""

    def __init__(
        self, store: Store, run_id: str, grace_s: float = CLOSED_GRACE_S, closer: str = "node 0"
    ) -> None:
        super().__init__(store, run_id)
        self.grace_s, self.closer = grace_s, closer
        self._closed_at: float | None = None

    def _stop_for(self, row: dict[str, Any]) -> str | None:
        if row["status"] in ("running", "lost"):
            return None
        now = time.monotonic()
        self._closed_at = self._closed_at or now
        if now - self._closed_at < self.grace_s:
            return None
        return (
            f"its processes were still running {self.grace_s:.0f} s after {self.closer} "
            f"closed the run ({row['status']}), and were stopped"
        )
