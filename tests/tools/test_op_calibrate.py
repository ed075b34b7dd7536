"""dlbench calibrate --ops: the shape grids, the budget, blocks stored whole with their
quality verdict, resuming, and the command on this machine's CPU."""

import json
import sqlite3

import pytest

from dlbench.predict.operators import SHAPES, work
from dlbench.records import Interference
from dlbench.store import operators as stored_ops
from dlbench.tools import op_calibrate
from dlbench.tools.calibrate import design
from dlbench.tools.op_calibrate import (
    KINDS,
    LIMITS,
    calibrate_ops,
    design_shapes,
    rounds,
    shapes,
)

from conftest import call_main


def fake_time(kind, dims, precision):
    flops, moved = work(kind, dims)
    seconds = 1e-5 + flops / 1e11 + moved / 1e10
    return [seconds / 3] * 3, [seconds] * 5


class Clock:
    def __init__(self, step_s):
        self.now, self.step_s = 0.0, step_s

    def __call__(self):
        self.now += self.step_s
        return self.now


class Meter:
    """An interference meter whose window saw ``foreign`` of 2 cores taken by other work."""

    def __init__(self, foreign):
        self.foreign = foreign

    def stop(self):
        return Interference(
            window_s=5.0, usable_cores=2, busy_cores=1.0 + self.foreign, own_cpu_cores=1.0,
            foreign_cpu_cores=self.foreign, resolution_cores=0.004, steal_percent=0.0,
            load_per_core=0.5,
        )  # fmt: skip


def test_every_grid_covers_its_kind_within_the_devices_work_limit():
    for kind in KINDS:
        cpu, gpu = shapes(kind, "cpu", "fp32"), shapes(kind, "cuda", "fp32")
        assert len(cpu) >= 60 and len(gpu) >= len(cpu)
        assert all(set(s) == set(SHAPES[kind]) for s in cpu)
        assert all(work(kind, s)[0] <= LIMITS["cpu"][0] for s in cpu)
    convs = shapes("conv2d", "cpu", "fp32")
    assert {s["kernel"] for s in convs} >= {1, 3, 5, 7} and {s["stride"] for s in convs} == {1, 2}
    assert any(s["groups"] > 1 for s in convs)  # depthwise convolutions too
    first = next(rounds(KINDS, ("fp32", "amp-bf16"), "cpu"))
    assert {(k, p) for k, p, _ in first} == {(k, p) for k in KINDS for p in ("fp32", "amp-bf16")}


def test_the_design_models_shapes_are_timed_in_turn_with_the_grid_and_once():
    grid = shapes("linear", "cpu", "fp32")
    model = [{"rows": 8, "in_features": 100, "out_features": 10}, grid[0]]  # one in both
    timed = [
        s for block in rounds(("linear",), ("fp32",), "cpu", {"linear": model}) for _, _, s in block
    ]
    assert timed[:3] == [grid[0], model[0], grid[1]]
    assert len(timed) == len(grid) + 1 and timed.count(grid[0]) == 1


def test_the_design_shapes_are_the_operators_of_the_calibration_models():
    found = design_shapes(("vgg",), "cpu")
    first = design(("vgg",))[0]
    assert {"conv2d", "linear", "pool", "activation", "optimizer"} <= set(found)
    assert any(s["size"] == first["image_size"] and s["batch"] == first["batch_size"]
               for s in found["conv2d"])  # fmt: skip


def test_blocks_are_stored_with_their_verdict_and_a_second_call_resumes(store):
    meters = iter([Meter(0.0), Meter(1.2), Meter(0.0), Meter(0.0), Meter(0.0)])
    found = calibrate_ops(
        store, "cpu X", "cpu", ("fp32",), 4.5, fake_time, {"fp32": (1.0, None)}, "pytorch 2",
        clock=Clock(1.0), meter=lambda: next(meters), block_s=0.0,
    )  # fmt: skip
    table = stored_ops.table(store, "cpu X")
    assert found.measured == len(table) and found.verdicts == {"clean": 1, "contended": 1}
    assert set(table["quality_verdict"]) == {"clean", "contended"}
    assert table["peak_tflops"].eq(1.0).all() and table["framework"].eq("pytorch 2").all()
    assert (table["forward_s"] < table["train_s"]).all() and table["calls"].eq(5).all()
    clean = stored_ops.usable(table)
    assert found.stored == len(clean) < len(table)  # a contended block is measured again
    again = calibrate_ops(
        store, "cpu X", "cpu", ("fp32",), 1.5, fake_time, {}, "pytorch 2", clock=Clock(1.0),
        meter=lambda: next(meters), block_s=0.0,
    )  # fmt: skip
    stored = stored_ops.table(store, "cpu X")
    new = stored.iloc[len(table) :]
    assert again.measured == len(new) > 0
    assert not _keys(new) & _keys(clean)
    assert len(_keys(stored)) < len(stored)  # the contended block's shapes, measured again


def _keys(frame):
    return {k + stored_ops.shape_key(s) for k, s in zip(frame["kind"], frame["shape"], strict=True)}


def test_a_block_that_fails_is_not_stored_half_and_earlier_blocks_stay(store):
    calls = []

    def failing(kind, dims, precision):
        calls.append(kind)
        if len(calls) > len(KINDS) + 4:  # inside the second block
            raise RuntimeError("device lost")
        return fake_time(kind, dims, precision)

    with pytest.raises(RuntimeError):
        calibrate_ops(store, "cpu X", "cpu", ("fp32",), 99, failing, {}, "pytorch 2", block_s=0)
    first_block = len(next(rounds(KINDS, ("fp32",), "cpu")))
    assert len(stored_ops.table(store, "cpu X")) == first_block


def test_short_rounds_are_gathered_into_a_block_long_enough_to_judge(store):
    windows = []

    class Timed(Meter):
        def __init__(self):
            super().__init__(0.0)
            windows.append(self)

    found = calibrate_ops(
        store, "cpu X", "cpu", ("fp32",), 9.5, fake_time, {}, "pytorch 2", clock=Clock(1.0),
        meter=Timed, block_s=4.0,
    )  # fmt: skip
    per_round = len(next(rounds(KINDS, ("fp32",), "cpu")))
    # The clock moves 1 s a reading: a block spans rounds until 4 s have passed.
    assert found.verdicts == {"clean": len(windows)} and 1 < len(windows)
    assert found.measured > per_round * len(windows)


def test_a_shape_the_device_has_no_memory_for_is_skipped(store):
    def no_memory_for_convs(kind, dims, precision):
        return ([], []) if kind == "conv2d" else fake_time(kind, dims, precision)

    found = calibrate_ops(
        store, "gpu", "cuda", ("fp32",), 1.5, no_memory_for_convs, {}, "pytorch 2",
        clock=Clock(1.0),
    )  # fmt: skip
    assert "conv2d" not in found.kinds and found.stored > 0


@pytest.mark.serial  # operator timings judged uncontended: no other test beside them
def test_calibrate_ops_times_operators_on_this_cpu(db_path, capsys, monkeypatch):
    asked = []
    real = op_calibrate.design_shapes
    monkeypatch.setattr(
        op_calibrate,
        "design_shapes",
        lambda families, device: asked.append(families) or real(families, device),
    )
    code, out, err = call_main(
        capsys, "calibrate", "--ops", "--device", "cpu", "--budget", "0.05", "--precisions",
        "fp32", "--families", "mlp", "--db", str(db_path),
    )  # fmt: skip
    assert code == 0, err
    assert asked == [("mlp",)]  # only the chosen families' models add their shapes
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT kind, precision, shape, forward_s, train_s, quality_verdict "
            "FROM op_measurements"
        ).fetchall()
    assert {r[0] for r in rows} == set(KINDS)  # the first round has every kind
    assert all(
        r[1] == "fp32" and r[4] > 0 and r[5] in ("clean", "noisy", "contended") for r in rows
    )
    assert all(set(json.loads(r[2])) == set(SHAPES[r[0]]) for r in rows)
    assert "usable for" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precisions", "tf32"], "does not run ['tf32']"),
        (["--families", "gpt"], "--families 'gpt': unknown ['gpt']"),
        (["--budget", "0"], "'--budget': 0.0 is not a finite number from 0.01"),
    ],
)
def test_calibrate_ops_bad_input_is_one_line(db_path, capsys, args, message):
    code, _, err = call_main(
        capsys, "calibrate", "--ops", "--device", "cpu", "--db", str(db_path), *args
    )
    assert code == 2 and message in err and "Traceback" not in err
