"""Scaling over nodes and processes: weak and strong series, speed-up and efficiency with their
intervals, and the communication share from the ranks, on constructed runs."""

from __future__ import annotations

import pytest

from dlbench.analysis.scaling import scaling
from dlbench.store.stored import StoredRun
from synthetic_runs import rank_record


def _run(run_id, nodes, gpus, batch, speed, half_width=0.0, ranks=()):
    config = {"workload": "lenet-mnist", "device": "cpu", "precision": "fp32", "gpus": gpus}
    if nodes > 1:
        config["nodes"] = nodes
    return StoredRun.from_summary(
        {
            "kind": "train",
            "run_id": run_id,
            "status": "ok",
            "batch_size": batch,
            "mean_speed": speed,
            "timed_steps": 50,
            "speed_ci95": (speed - half_width, speed + half_width) if half_width else None,
            "config": config,
            "ranks": list(ranks),
        }
    )


def _series(runs, axis):
    return [s for s in scaling(runs) if s.axis == axis]


def test_nodes_and_strong_scaling_series_with_efficiency_and_intervals():
    runs = [
        _run("a", 1, 2, 64, 1000.0, 50.0),  # 1 node x 2
        _run("b", 2, 2, 64, 1800.0, 90.0),  # 2 nodes x 2, same batch per process: weak
        _run("c", 1, 4, 32, 950.0, 50.0),  # 1 node x 4, half the batch: strong vs "a"
    ]
    (weak,) = _series(runs, "nodes")
    assert [p.value for p in weak.points] == [1, 2]
    second = weak.points[1]
    assert second.relative == pytest.approx(1.8)
    assert second.efficiency == pytest.approx(0.9)  # 1800 / (2 x 1000)
    # Both speeds +-5%: the ratio's relative half-width is 5% x sqrt(2).
    low, high = second.relative_ci95
    assert low == pytest.approx(1.8 * (1 - 0.05 * 2**0.5))
    assert high == pytest.approx(1.8 * (1 + 0.05 * 2**0.5))
    assert second.efficiency_ci95 == pytest.approx((low / 2, high / 2))
    (strong,) = _series(runs, "processes")
    assert [p.value for p in strong.points] == [2, 4]  # global batch 128 both
    assert strong.points[1].efficiency == pytest.approx(950 / (2 * 1000))
    assert "global_batch=128" in strong.label and "nodes=1" in strong.label
    # Layouts are not mixed: 2 nodes x 2 at batch 32 is no point of one node's series.
    mixed = [*runs, _run("d", 2, 2, 32, 900.0, 50.0)]
    assert [p.runs for p in _series(mixed, "processes")[0].points] == [1, 1]


def test_a_gpu_series_on_one_node_is_unchanged_and_says_communication():
    ranks = [rank_record(0, "h", 0.2, 0.15), rank_record(1, "h", 0.2, 0.15)]
    runs = [_run("one", 1, 1, 64, 500.0), _run("two", 1, 2, 64, 800.0, ranks=ranks)]
    (gpus,) = _series(runs, "gpus")
    assert [p.efficiency for p in gpus.points] == pytest.approx([1.0, 0.8])
    assert gpus.points[0].communication_share is None
    assert gpus.points[1].communication_share == pytest.approx(0.25)
    assert not _series(runs, "nodes") and not _series(runs, "processes")
