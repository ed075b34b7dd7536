"""Stragglers of a multi-process run: which rank is slow, on which host, by how much.

Under DDP every rank waits for the slowest at each gradient all-reduce, so synchronised step
times hide a straggler. What shows it is each rank's own pace: its steps timed without the
gradient synchronisation (``sync_free_step_time_s``), where the run measured them, else its
synchronised step time. A rank more than STRAGGLER_EXCESS slower than the median rank is
flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlbench.store.measurements import RankSteps

STRAGGLER_EXCESS = 0.10


@dataclass(frozen=True)
class RankPace:
    rank: int
    host: str | None
    local_rank: int | None
    step_time_s: float  # its own pace (see the module's note)
    excess: float  # over the median rank's: 0.25 is 25% slower

    @property
    def flagged(self) -> bool:
        return self.excess > STRAGGLER_EXCESS


@dataclass(frozen=True)
class Stragglers:
    paces: tuple[RankPace, ...]
    median_step_time_s: float
    basis: str  # "sync-free steps" or "synchronised steps"
    # share of the synchronised step not spent computing: 1 - sync-free / synchronised
    communication_share: float | None

    @property
    def slowest(self) -> RankPace:
        return max(self.paces, key=lambda p: p.step_time_s)

    @property
    def flagged(self) -> tuple[RankPace, ...]:
        return tuple(p for p in self.paces if p.flagged)

    def line(self) -> str:
        """One sentence: the slowest rank and its excess, flagged or not."""
        slow = self.slowest
        where = f" on {slow.host}" if slow.host else ""
        verdict = "a straggler" if slow.flagged else "within 10% of the median"
        return (
            f"slowest rank {slow.rank}{where}: {slow.excess:+.1%} over the median rank "
            f"({self.basis}), {verdict}"
        )


def stragglers(ranks: Sequence[RankSteps]) -> Stragglers | None:
    """From a run's per-rank records; None for fewer than two ranks with a pace."""
    own = [r for r in ranks if _positive(r.sync_free_step_time_s)]
    synced = [r for r in ranks if r.speed is not None and _positive(r.speed.mean_step_time_s)]
    use_own = len(own) == len(ranks) and len(own) >= 2
    chosen = own if use_own else synced
    if len(chosen) < 2:
        return None
    times = np.array([_pace(r, use_own) for r in chosen])
    median = float(np.median(times))
    paces = tuple(
        RankPace(r.rank, r.host, r.local_rank, float(t), float(t) / median - 1)
        for r, t in zip(chosen, times, strict=True)
    )
    share = None
    if use_own and len(synced) == len(chosen):
        # The synchronised step less its wait for data: computing and communicating.
        busy = float(np.mean([_pace(r, False) - (r.speed.mean_data_wait_s or 0) for r in synced]))  # type: ignore[union-attr]
        share = max(0.0, 1 - float(times.mean()) / busy) if busy > 0 else None
    basis = "sync-free steps" if use_own else "synchronised steps"
    return Stragglers(paces, median, basis, share)


def _pace(rank: RankSteps, own: bool) -> float:
    if own:
        return float(rank.sync_free_step_time_s or 0)
    return float(rank.speed.mean_step_time_s) if rank.speed else 0.0


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
