"""Step and phase timing with ``time.perf_counter_ns`` and the device synchronised.

The clock is read only after ``sync()`` returns, so queued device work is inside the step it
belongs to (AlgoPerf's ``_get_monotonic_time`` does the same). Timings are kept as integer
nanoseconds in preallocated lists and converted once at the end, to keep the loop cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dlbench.records import StepRecord

NS = 1e-9


class StepTimer:
    """Times each step (total and data-wait) and the whole phase end to end."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        self._clock = time.perf_counter_ns
        self._starts: list[int] = []
        self._ready: list[int] = []
        self._ends: list[int] = []
        self._epochs: list[int] = []
        self._phase_start = 0
        self._phase_end = 0

    def start_phase(self) -> None:
        self._sync()
        self._phase_start = self._clock()

    def step_start(self) -> None:
        self._starts.append(self._clock())

    def data_ready(self, epoch: int) -> None:
        self._ready.append(self._clock())
        self._epochs.append(epoch)

    def step_end(self) -> None:
        self._sync()
        self._ends.append(self._clock())

    def end_phase(self) -> float:
        """Wall seconds of the phase, with one sync at its end."""
        self._sync()
        self._phase_end = self._clock()
        return (self._phase_end - self._phase_start) * NS

    @property
    def completed_steps(self) -> int:
        return len(self._ends)

    def step_times_s(self) -> list[float]:
        """The completed steps' times so far, in seconds."""
        return [(end - start) * NS for start, end in zip(self._starts, self._ends, strict=False)]

    def steps(self, start: int = 0) -> tuple[StepRecord, ...]:
        """Every completed step from ``start``; a step cut short by an interrupt is left out.
        Safe to call from another thread while steps are timed."""
        return tuple(
            StepRecord(
                step=i,
                epoch=self._epochs[i],
                step_time_s=(self._ends[i] - self._starts[i]) * NS,
                data_wait_s=(self._ready[i] - self._starts[i]) * NS,
            )
            for i in range(start, len(self._ends))
        )

    def elapsed_s(self) -> float:
        """Seconds since the phase started, up to the last completed step (for interrupts)."""
        end = self._phase_end or (self._ends[-1] if self._ends else self._phase_start)
        return (end - self._phase_start) * NS


def time_calls(
    call: Callable[[], object], sync: Callable[[], None], repeats: int, budget_s: float
) -> list[float]:
    """Seconds per call, device synchronised around each, stopping at ``repeats`` calls or
    once ``budget_s`` is spent (at least one call is always timed)."""
    clock = time.perf_counter_ns
    durations: list[float] = []
    deadline = clock() + int(budget_s / NS)
    sync()
    while len(durations) < repeats:
        start = clock()
        call()
        sync()
        end = clock()
        durations.append((end - start) * NS)
        if end > deadline:
            break
    return durations
