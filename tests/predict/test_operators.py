"""The operator-level predictor: per-operator curves, their composition into a step, the walk
of a real module, and the transfer to a device by operator-class ratios, on constructed data
where the truth is known."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dlbench.config import build_spec
from dlbench.engines.pytorch.describe import (
    _meta_model,
    describe_model,
    describe_question,
    run_operators,
)
from dlbench.engines.pytorch.operators import walk
from dlbench.predict.calculator import answer
from dlbench.predict.evaluate import evaluate, family_folds
from dlbench.predict.operators import (
    ELEMENT_BYTES,
    Composition,
    OpCurve,
    OperatorModel,
    OpUse,
    bound,
    class_ratios,
    fit_curves,
    op_sum,
    scaled,
    work,
)
from dlbench.predict.question import Question
from dlbench.records import RunResult, SpeedStats
from dlbench.store import operators as stored_ops
from dlbench.tools.op_calibrate import KINDS, shapes

# A device's law per call: a launch cost, FLOPs at a speed, bytes at a bandwidth.
LAUNCH_S, FLOP_S, BYTE_S = 20e-6, 1 / 80e9, 1 / 15e9


def law(kind, dims, flop_s=FLOP_S, byte_s=BYTE_S, launch_s=LAUNCH_S):
    flops, moved = work(kind, dims, ELEMENT_BYTES["fp32"])
    return launch_s + flops * flop_s + moved * byte_s


def measured(take=40, **device):
    rows = [
        {"kind": kind, "precision": "fp32", "shape": dims, "train_s": law(kind, dims, **device)}
        for kind in KINDS
        for dims in shapes(kind, "cpu", "fp32")[:take]
    ]
    return pd.DataFrame(rows)


def test_an_operator_curve_recovers_a_synthetic_law_exactly_on_shapes_it_never_saw():
    grid = shapes("conv2d", "cpu", "fp32")
    seen, unseen = grid[:60], grid[60:]
    curve = OpCurve.fit("conv2d", "fp32", seen, np.array([law("conv2d", d) for d in seen]))
    truth = np.array([law("conv2d", d) for d in unseen])
    assert np.allclose(curve.seconds(unseen), truth, rtol=1e-6)
    assert curve.coefficients == pytest.approx([LAUNCH_S, FLOP_S, BYTE_S], rel=1e-6)


def test_a_measured_shape_is_predicted_as_measured_and_never_below_the_roofline():
    grid = shapes("linear", "cpu", "fp32")[:30]
    noisy = np.array([law("linear", d) * (1.3 if i % 2 else 0.8) for i, d in enumerate(grid)])
    curve = OpCurve.fit("linear", "fp32", grid, noisy)
    assert np.allclose(curve.seconds(grid), noisy, rtol=1e-6)  # the neighbours' correction
    fast = OpCurve.fit("linear", "fp32", grid, noisy, peak_flops=1e9)  # a 1 GFLOP/s roof
    flops = np.array([work("linear", d)[0] for d in grid])
    assert (fast.seconds(grid) >= flops / 1e9 * (1 - 1e-9)).all()


def _runs(curves, composition, models):
    rows = []
    for family, ops in models:
        total, calls, _ = op_sum(ops, "fp32", curves)
        step = composition.step(np.array([total]), np.array([calls]))[0]
        rows.append({"family": family, "precision": "fp32", "ops": ops, "step_s": step})
    return pd.DataFrame(rows)


def _models():
    found = []
    for family, workload in (
        ("vgg", "param-vgg"),
        ("resnet", "param-resnet"),
        ("mlp", "param-mlp"),
    ):
        for depth, width, batch in ((8, 8, 4), (11, 16, 8), (14, 8, 16), (12, 24, 2)):
            if family == "mlp":
                depth, width = depth // 3 + 2, width * 16
            if family == "resnet":
                depth = 10 + depth
            spec = build_spec(
                workload=workload, depth=depth, width=width, batch_size=batch, image_size=16
            )
            model, _ = _meta_model(spec)
            found.append((family, walk(model, spec.input_shape, batch)))
    return found


def test_the_operator_model_recovers_a_synthetic_composition_and_holds_a_family_out():
    curves = fit_curves(measured())
    truth = Composition(scale=1.15, per_call_s=4e-6, fixed_s=2e-3)
    table = _runs(curves, truth, _models())
    model = OperatorModel(curves).fit(table)
    assert model.composition.scale == pytest.approx(1.15, rel=1e-6)
    assert model.composition.per_call_s == pytest.approx(4e-6, rel=1e-4)
    assert model.composition.fixed_s == pytest.approx(2e-3, rel=1e-4)
    held_out = evaluate(lambda: OperatorModel(curves), table, "leave one family out")
    assert held_out is not None and held_out.mape < 1e-3  # the law is family-free
    for train, test in family_folds(table):
        assert not set(table["family"].iloc[test]) & set(table["family"].iloc[train])


def test_class_ratios_carry_a_model_to_a_device_with_only_operator_measurements():
    source, target = measured(), measured(flop_s=FLOP_S / 4, byte_s=BYTE_S / 2)
    # No ridge known: convolutions, matmuls and attention are compute-bound, the rest memory.
    ratios = class_ratios(source, target, None)
    assert set(ratios.shared) == {"compute", "memory"}
    # Launch costs are the same on both devices, so the ratio is not exactly 1/4 or 1/2: it
    # is measured, between the launch-bound 1 and the pure speed-up.
    assert 0.25 <= ratios.ratios["compute"] < 0.6 and 0.5 <= ratios.ratios["memory"] < 0.8
    curves = fit_curves(source)
    on_target = scaled(curves, ratios)
    conv = shapes("conv2d", "cpu", "fp32")[5]
    expected = curves[("conv2d", "fp32")].seconds([conv])[0] * ratios.ratios["compute"]
    assert on_target[("conv2d", "fp32")].seconds([conv])[0] == pytest.approx(expected)
    # Without launch costs, and with FLOPs and bytes sped up alike, the law's ratio comes back.
    exact = class_ratios(
        measured(launch_s=0.0), measured(flop_s=FLOP_S / 4, byte_s=BYTE_S / 4, launch_s=0.0), None
    )
    assert exact.ratios == pytest.approx({"compute": 0.25, "memory": 0.25})
    assert exact.spread == pytest.approx(0.0, abs=1e-9)


def test_an_operator_is_compute_bound_above_the_device_ridge_point():
    big = {"rows": 512, "in_features": 4096, "out_features": 4096}
    small = {"elements": 10_000}
    ridge = 100.0  # FLOPs per byte
    assert bound("linear", big, "fp32", ridge) == "compute"
    assert bound("elementwise", small, "fp32", ridge) == "memory"
    assert (
        bound("linear", {"rows": 1, "in_features": 64, "out_features": 64}, "fp32", ridge)
        == "memory"
    )


@pytest.mark.parametrize(
    ("workload", "depth", "width"),
    [
        ("param-resnet", 18, 16),
        ("param-inception", 4, 16),
        ("param-vgg", 11, 8),
        ("param-mlp", 4, 128),
    ],
)
def test_the_walk_on_the_meta_device_matches_the_real_modules_flops(workload, depth, width):
    spec = build_spec(workload=workload, depth=depth, width=width, batch_size=4, image_size=16)
    meta, batch = _meta_model(spec)
    ops = walk(meta, spec.input_shape, batch)
    walked = sum(
        work(o.kind, o.dims)[0] / 3 * o.count for o in ops if o.kind in ("conv2d", "linear")
    )
    real, _ = _meta_model(spec)
    real = real.to_empty(device="cpu")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        real(torch.randn(batch, *spec.input_shape))
    assert walked == counter.get_total_flops()
    optimizer = [o for o in ops if o.kind == "optimizer"]
    assert optimizer[0].dims["params"] == sum(p.numel() for p in real.parameters())
    assert run_operators(dict(spec.model_dump())) == ops  # the stored configuration's walk


def test_a_transformer_walks_into_attention_layer_norms_embeddings_and_adam():
    """SDPA is one attention operator (not the math path's products it decomposes into on
    the meta device); the walked products and attention equal FlopCounterMode's forward
    count on the real module, the CPU's flash kernel included."""
    import dlbench.engines.pytorch.flops  # noqa: F401 - registers the CPU flash kernel's FLOPs

    spec = build_spec(workload="param-transformer", depth=2, width=128, seq_len=64, batch_size=4)
    ops = run_operators(dict(spec.model_dump()))
    counts = {k: sum(o.count for o in ops if o.kind == k) for k in {o.kind for o in ops}}
    assert counts["attention"] == 2 and counts["layernorm"] == 5 and counts["embedding"] == 2
    assert "optimizer" not in counts and counts["adam"] == 1  # AdamW, the workload's
    (attention,) = [o for o in ops if o.kind == "attention"]
    assert attention.dims == {"batch": 4, "heads": 2, "length": 64, "head_dim": 64}
    tables = sorted(o.dims["vocab"] for o in ops if o.kind == "embedding")
    assert tables == [64, 256]  # positions, tokens
    walked = sum(
        work(o.kind, o.dims)[0] / 3 * o.count for o in ops if o.kind in ("linear", "attention")
    )
    real, batch = _meta_model(spec)
    real = real.to_empty(device="cpu")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        real(torch.zeros(batch, 64, dtype=torch.long))
    assert walked == counter.get_total_flops()


def test_a_residual_add_and_a_concatenation_are_operators_too():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return torch.cat([self.a(x) + x, self.b(x)], dim=1).flatten(1)

    ops = walk(Block(), (4, 8, 8), 2)
    kinds = sorted(o.kind for o in ops for _ in range(o.count))
    assert kinds == ["conv2d", "conv2d", "elementwise", "elementwise", "optimizer"]
    convs = sorted((o.dims["kernel"], o.dims["padding"]) for o in ops if o.kind == "conv2d")
    assert convs == [(1, 0), (3, 1)]
    added = [o for o in ops if o.kind == "elementwise"]
    assert sorted(o.dims["elements"] for o in added) == [2 * 4 * 8 * 8, 2 * 8 * 8 * 8]  # add, cat
    assert OpUse.of("activation", elements=10).dims == {"elements": 10}


def _store_operators(store, device, take=40, peak=None, **law_of_device):
    rows = [
        {**row, "device_name": device, "calls": 5, "quality_verdict": "clean", "peak_tflops": peak}
        for row in measured(take, **law_of_device).to_dict("records")
    ]
    stored_ops.add(store, rows)


def _store_model_runs(store, device, composition):
    """Whole-model runs on ``device`` of real parametric configurations, each step the
    composition of its walked operators' law."""
    curves = fit_curves(measured())
    specs = []
    for workload, depths, width in (
        ("param-vgg", (8, 11, 14), 8), ("param-resnet", (10, 14, 18), 8),
        ("param-mlp", (3, 4, 5), 128),
    ):  # fmt: skip
        for depth in depths:
            for batch in (4, 16):
                specs.append(build_spec(workload=workload, depth=depth, width=width,
                                        batch_size=batch, image_size=16))  # fmt: skip
    for i, spec in enumerate(specs):
        config = spec.model_dump(mode="json")
        ops = run_operators(config)
        total, calls, _ = op_sum(ops, "fp32", curves)
        step = float(composition.step(np.array([total]), np.array([calls]))[0])
        run_id = f"{device}-{i}"
        store.create_run(run_id, "train", config, workload=spec.workload)
        store.set_hardware(run_id, {"hostname": "h"}, device="cpu", device_name=device, num_gpus=0)
        speed = SpeedStats(10, step, step, step, 1.0, 1.0, 1.0, 1.0, None, 0.0, 0.0, 0.0)
        descriptors = {**describe_model(spec), "device_name": device}
        store.finish_run(
            RunResult(run_id=run_id, status="ok", speed=speed, descriptors=descriptors)
        )
    return curves


def test_predict_adds_a_model_up_from_its_operators_and_carries_it_to_another_device(store):
    truth = Composition(scale=1.1, per_call_s=5e-6, fixed_s=1e-3)
    _store_operators(store, "cpu A")
    curves = _store_model_runs(store, "cpu A", truth)
    question = describe_question(
        Question(family="inception", depth=5, width=16, input_size=16, batch_size=8)
    )
    ops = tuple(OpUse.of(o["kind"], o["count"], **o["shape"]) for o in question["operators"])
    total, calls, _ = op_sum(ops, "fp32", curves)
    expected = float(truth.step(np.array([total]), np.array([calls]))[0])
    # A family the runs never saw (inception: pools, concatenations), predicted from operators.
    found = answer(store, question, "cpu A", 1000, 1, operators_of=run_operators)
    assert found.predictor.name == "operators"
    assert found.step_s[0] == pytest.approx(expected, rel=1e-3)
    assert found.predictor.training["operator_measurements"] == 40 * len(KINDS)
    assert set(found.predictor.alternatives) == {"roofline"}  # 18 runs: too few for the trees
    # Without the engine's walk the whole-model predictors answer, as before.
    assert answer(store, question, "cpu A", 1000, 1).predictor.name != "operators"
    # Device B: operator measurements only, everything twice as fast and no launch cost gain.
    _store_operators(store, "gpu B", flop_s=FLOP_S / 2, byte_s=BYTE_S / 2)
    moved = answer(store, question, "gpu B", 1000, 1, operators_of=run_operators)
    assert moved.transfer is not None and moved.transfer.method == "operator classes"
    assert moved.transfer.source == "cpu A" and moved.device == "gpu B"
    assert 0.5 < moved.transfer.ratio < 1.0
    assert moved.step_s[0] == pytest.approx(expected * moved.transfer.ratio, rel=1e-6)
    low, high = moved.step_s[1], moved.step_s[2]
    assert low < moved.step_s[0] < high  # widened by the class ratios' spread


def test_a_non_square_convolution_is_counted_by_both_sides():
    model = nn.Sequential(
        nn.Conv2d(4, 6, (1, 7), padding=(0, 3)), nn.Conv2d(6, 5, (7, 1), padding=(3, 0))
    )
    ops = walk(model, (4, 17, 17), 3)
    convs = [o.dims for o in ops if o.kind == "conv2d"]
    assert [(c["kernel"], c["kernel_w"], c["padding"], c["padding_w"]) for c in convs] == [
        (1, 7, 0, 3),
        (7, 1, 3, 0),
    ]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(3, 4, 17, 17))
    assert sum(work("conv2d", c)[0] / 3 for c in convs) == counter.get_total_flops()
    # A shape stored before the width fields existed reads as a square kernel.
    old = {"batch": 1, "in_channels": 3, "out_channels": 8, "kernel": 3, "stride": 1,
           "padding": 1, "groups": 1, "size": 8}  # fmt: skip
    assert work("conv2d", old) == work("conv2d", {**old, "kernel_w": 3, "padding_w": 1})
