"""Stragglers found on constructed per-rank steps."""

from __future__ import annotations

import pytest

from dlbench.analysis.stragglers import stragglers
from dlbench.store.measurements import rank_from
from synthetic_runs import rank_record


def _rank(rank, host, synced, own=None):
    return rank_from(rank_record(rank, host, synced, own))


def test_a_slow_rank_is_named_with_its_host_and_flagged():
    ranks = [
        _rank(0, "node0", 0.20, 0.10),
        _rank(1, "node0", 0.20, 0.10),
        _rank(2, "node1", 0.20, 0.102),
        _rank(3, "node1", 0.20, 0.125),
    ]
    found = stragglers(ranks)
    assert found.basis == "sync-free steps"
    assert found.median_step_time_s == pytest.approx(0.101)
    assert found.slowest.rank == 3 and found.slowest.host == "node1"
    assert found.slowest.excess == pytest.approx(0.125 / 0.101 - 1)
    assert [p.rank for p in found.flagged] == [3]
    assert "slowest rank 3 on node1: +23.8% over the median rank" in found.line()
    assert "a straggler" in found.line()
    # Half of the synchronised step is spent waiting for the others and communicating.
    assert found.communication_share == pytest.approx(1 - 0.10675 / 0.20)


def test_ranks_within_ten_percent_are_not_flagged():
    found = stragglers([_rank(0, "a", 0.1, 0.100), _rank(1, "b", 0.1, 0.109)])
    assert not found.flagged
    assert "within 10% of the median" in found.line()


def test_synchronised_steps_are_the_fallback_and_one_rank_is_no_comparison():
    found = stragglers([_rank(0, "a", 0.1), _rank(1, "b", 0.2)])
    assert found.basis == "synchronised steps" and found.communication_share is None
    assert stragglers([_rank(0, "a", 0.1, 0.1)]) is None
    assert stragglers([rank_from({"rank": 0}), rank_from({"rank": 1})]) is None
