"""Before a run: is the machine quiet? Warn, wait for it, or refuse, as the user asked.

By default the machine is surveyed for about a second while the run's process starts up (its
imports and data loading are the run's own work, told apart as its process tree), so the check
costs no time, and a busy machine gets one warning naming the busiest other processes.
``--wait-quiet SECONDS`` surveys before starting instead, and waits, with a countdown, until
the machine has been quiet for ``QUIET_FOR_S`` seconds or the time is up; ``--require-quiet``
refuses to start on a busy machine (after the wait, if one was given).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dlbench.errors import DlbenchError
from dlbench.measure.quality import busy_reasons
from dlbench.telemetry.interference import Survey, survey

SURVEY_S = 1.0
QUIET_FOR_S = 3.0  # a wait ends after this long quiet, not at one quiet moment
BUSIEST_SHOWN = 3
BUSIEST_MIN_PERCENT = 5.0


class MachineBusy(DlbenchError):
    """--require-quiet and the machine is busy: nothing is run."""


@dataclass(frozen=True)
class QuietPolicy:
    wait_s: float | None = None  # --wait-quiet
    require: bool = False  # --require-quiet

    @property
    def blocking(self) -> bool:
        return self.wait_s is not None or self.require


class QuietReport(Protocol):
    """Where the check's words go (the CLI prints them on stderr)."""

    def warn(self, message: str) -> None: ...

    def waiting(self, seconds_left: float, why: str) -> None: ...

    def done_waiting(self, message: str) -> None: ...


class SilentReport:
    def warn(self, message: str) -> None:
        pass

    def waiting(self, seconds_left: float, why: str) -> None:
        pass

    def done_waiting(self, message: str) -> None:
        pass


def describe(found: Survey) -> list[str]:
    """Why ``found`` is not quiet, the busiest other processes named (empty: quiet)."""
    reasons = busy_reasons(
        found.foreign_cpu_cores,
        found.resolution_cores,
        found.usable_cores,
        found.steal_percent,
        found.gpu_processes,
    )
    if reasons and found.foreign_cpu_cores > 0:
        named = [p for p in found.busiest if p.cpu_percent >= BUSIEST_MIN_PERCENT]
        if named:
            shown = ", ".join(
                f"pid {p.pid} {p.name} {p.cpu_percent:.0f}% CPU"
                + (f" {p.gpu_memory_bytes / 2**30:.1f} GiB GPU" if p.gpu_memory_bytes else "")
                for p in named[:BUSIEST_SHOWN]
            )
            reasons.append(f"busiest: {shown}")
        else:
            reasons.append("the busy processes are not visible from here (another container?)")
    return reasons


class QuietGate:
    """The check around one run: ``before`` it starts, ``on_start`` (its pid), ``finish``."""

    def __init__(
        self,
        policy: QuietPolicy,
        report: QuietReport,
        gpus: tuple[int, ...] = (),
        survey_s: float = SURVEY_S,
        look: Callable[..., Survey] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``look`` surveys the machine (default: ``survey``; tests give their own)."""
        self.policy, self.report, self.gpus = policy, report, gpus
        self._survey_s, self._look, self._clock = survey_s, look or survey, clock
        self._thread: threading.Thread | None = None

    def before(self) -> None:
        """With --wait-quiet or --require-quiet: survey now, wait, or refuse."""
        if not self.policy.blocking:
            return
        reasons = describe(self._look(self._survey_s, self.gpus))
        if reasons and self.policy.wait_s:
            reasons = self._wait(self.policy.wait_s, reasons)
        if not reasons:
            return
        if self.policy.require:
            raise MachineBusy(
                f"the machine is busy: {'; '.join(reasons)}; nothing was run",
                "stop that work, wait for it (--wait-quiet SECONDS), or drop --require-quiet",
            )
        self.report.warn(
            f"the machine is still busy after {self.policy.wait_s:g} s: {'; '.join(reasons)}; "
            "measuring anyway (the run's quality verdict will say how much it interfered)"
        )

    def _wait(self, wait_s: float, reasons: list[str]) -> list[str]:
        started = self._clock()
        quiet_since: float | None = None
        while True:
            now = self._clock()
            left = wait_s - (now - started)
            if quiet_since is not None and now - quiet_since >= QUIET_FOR_S:
                self.report.done_waiting(f"the machine is quiet after {now - started:.0f} s")
                return []
            if left <= 0:
                self.report.done_waiting("")
                return reasons
            self.report.waiting(left, "; ".join(reasons) if reasons else "quiet, confirming")
            reasons = describe(self._look(min(self._survey_s, max(left, 0.1)), self.gpus))
            if reasons:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = self._clock() - self._survey_s

    def on_start(self, pid: int) -> None:
        """Without a blocking policy: survey while the run's process starts up."""
        if self.policy.blocking:
            return
        self._thread = threading.Thread(target=self._survey_startup, daemon=True)
        self._thread.start()

    def _survey_startup(self) -> None:
        try:
            reasons = describe(self._look(self._survey_s, self.gpus))
        except Exception:  # noqa: BLE001 - a failed survey must not touch the run
            return
        if reasons:
            self.report.warn(
                f"the machine is busy as the run starts: {'; '.join(reasons)}; measuring "
                "anyway (--wait-quiet SECONDS waits for quiet, --require-quiet refuses)"
            )

    def finish(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
