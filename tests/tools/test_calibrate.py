"""dlbench calibrate's design and its resumable loop."""

import re

import pytest

from dlbench.config import build_spec
from dlbench.errors import ConfigError
from dlbench.predict.question import FAMILIES
from dlbench.records import RunResult
from dlbench.tools.calibrate import (
    BATCH_SIZES,
    DESIGN_POINTS,
    INPUT_SIZES,
    RANGES,
    TIMED,
    WARMUP,
    calibrate,
    design,
    specs,
    sweep_name,
)


def test_the_design_fills_each_familys_ranges_and_interleaves_families():
    points = design(FAMILIES)
    assert len(points) == DESIGN_POINTS * len(FAMILIES)
    assert [p["family"] for p in points[: len(FAMILIES)]] == list(FAMILIES)  # any prefix: all
    for family in FAMILIES:
        mine = [p for p in points if p["family"] == family]
        depths = sorted(p["depth"] for p in mine)
        low, high = RANGES[family]["depth"]
        assert depths[0] <= low + 1 and depths[-1] >= high - 1  # spread end to end
        step = 64 if family in ("transformer", "llama") else 8
        assert all(p["width"] % step == 0 for p in mine)
        inputs = RANGES[family].get("input", INPUT_SIZES)
        batches = RANGES[family].get("batch", BATCH_SIZES)
        assert all(inputs[0] <= p["image_size"] <= inputs[1] for p in mine)
        assert all(batches[0] <= p["batch_size"] <= batches[1] for p in mine)
        assert len({(p["depth"], p["width"], p["batch_size"]) for p in mine}) > 0.8 * len(mine)


def test_calibration_runs_within_budget_and_resumes(store):
    ran = []

    def fake_run(spec):  # stores the run as a real one would, without training
        ran.append(spec)
        run_id = f"r{len(ran)}"
        store.create_run(
            run_id, "train", spec.model_dump(mode="json"), sweep=spec.sweep, run_key=spec.run_key
        )
        store.finish_run(RunResult(run_id=run_id, status="ok"))
        return "ok"

    ticks = iter([0.0] * 7 + [1e9] * 1000)  # the budget is spent after six runs
    made = calibrate(
        store,
        ("mlp", "vgg"),
        "cpu",
        "AMD EPYC",
        budget_s=10,
        repeats=2,
        run=fake_run,
        clock=lambda: next(ticks),
    )
    assert made == len(ran) == 6
    assert {s.workload for s in ran} == {"param-mlp", "param-vgg"}
    assert ran[0].depth == ran[1].depth and [s.repeat for s in ran[:2]] == [0, 1]
    first = len(ran)
    again = calibrate(store, ("mlp", "vgg"), "cpu", "AMD EPYC", budget_s=0, repeats=2, run=fake_run)
    assert again == 0 and len(ran) == first  # nothing rerun, budget spent at once
    assert sweep_name("NVIDIA H100 80GB HBM3") == "calibrate-nvidia-h100-80gb-hbm3"


def test_calibration_specs_are_valid_runs():
    (config,) = design(("resnet",))[:1]
    runs = specs(config, "cpu", "calibrate-x", 3)
    assert [r.repeat for r in runs] == [0, 1, 2] and runs[0].workload == "param-resnet"
    assert runs[0].depth == config["depth"] and runs[0].steps == WARMUP + TIMED == 23


def test_depth_and_width_belong_to_the_parametric_workloads():
    with pytest.raises(ConfigError, match="--depth and --width are for the param"):
        build_spec(workload="resnet50", depth=34)
    assert build_spec(workload="param-resnet", depth=34, width=16).architecture == {
        "depth": 34,
        "width": 16,
    }


def test_cli_calibrate_runs_stores_and_refuses_bad_families(db_path):
    from dlbench.store.database import Store

    from conftest import run_dlbench

    done = run_dlbench(
        db_path, "calibrate", "--families", "mlp", "--device", "cpu", "--budget", "0.1",
        "--repeats", "1",
    )  # fmt: skip
    # Six seconds make a run or two: too few for a fit, said, and exit 1.
    assert done.returncode == 1, done.stderr
    assert "calibrating mlp on" in done.stdout and "run(s) started now" in done.stdout
    assert "warning: a predictor needs at least 6 calibration runs" in done.stdout
    assert "predictor for" not in done.stdout
    assert "param-mlp depth" in done.stderr and re.search(r": ok(, \w+)? \(", done.stderr)
    runs = Store(str(db_path)).list_runs()
    assert runs and all(r["sweep"].startswith("calibrate-") for r in runs)
    assert all(r["status"] == "ok" for r in runs)
    bad = run_dlbench(db_path, "calibrate", "--families", "rnn")
    assert bad.returncode == 2 and "unknown ['rnn']" in bad.stderr


def test_the_design_runs_each_familys_cheapest_configurations_first():
    from dlbench.tools.calibrate import cost

    points = design(FAMILIES)
    for family in FAMILIES:
        costs = [cost(p) for p in points if p["family"] == family]
        assert costs == sorted(costs)


def test_one_slow_configuration_cannot_spend_the_whole_budget():
    from dlbench.predict.fitting import MIN_RUNS
    from dlbench.tools.calibrate import MIN_RUN_TIMEOUT_S, run_timeout

    assert run_timeout(120) == MIN_RUN_TIMEOUT_S  # a 2-minute budget: 30 s a run at most
    assert run_timeout(20 * 60) == 20 * 60 / MIN_RUNS


def test_the_transformer_family_is_calibrated_by_sequence_length():
    (first,) = [p for p in design(("transformer",))[:1]]
    (spec, _) = specs(first, "cpu", "calibrate-x", repeats=2)
    assert spec.workload == "param-transformer" and spec.seq_len == first["image_size"]
    assert spec.image_size is None and spec.input_shape == (1, first["image_size"], 1)
    assert spec.width % 64 == 0


def test_the_llama_family_is_calibrated_as_the_llama_workload_with_a_small_vocabulary():
    (first,) = [p for p in design(("llama",))[:1]]
    (spec, _) = specs(first, "cpu", "calibrate-x", repeats=2)
    assert spec.workload == "llama" and spec.seq_len == first["image_size"]
    assert spec.vocab == 256 and spec.depth == first["depth"] and spec.width % 64 == 0


def test_a_contended_configuration_is_run_again_a_bounded_number_of_times(store):
    """Contended runs are left out of the fit, so their configuration runs again at once,
    up to CONTENDED_TRIES times in all (earlier calls' included); then it is given up."""
    from dlbench.records import Quality
    from dlbench.tools.calibrate import CONTENDED_TRIES, Choices

    ran, heard = [], []

    def contended_run(spec):  # every run measured contended, as on a never-quiet machine
        ran.append(spec)
        run_id = f"r{len(ran)}"
        store.create_run(
            run_id, "train", spec.model_dump(mode="json"), sweep=spec.sweep, run_key=spec.run_key
        )
        quality = Quality("contended", ("busy",), 1.5, 0.0, None)
        store.finish_run(RunResult(run_id=run_id, status="ok", quality=quality))
        return "ok/contended"

    ticks = iter([0.0] * (2 * CONTENDED_TRIES + 1) + [1e9] * 1000)
    calibrate(store, ("mlp",), "cpu", "EPYC", budget_s=10, repeats=1, run=contended_run,
              clock=lambda: next(ticks), on_run=lambda s, st, v: heard.append(v))  # fmt: skip
    assert [s.run_key for s in ran[:CONTENDED_TRIES]] == [ran[0].run_key] * CONTENDED_TRIES
    assert ran[CONTENDED_TRIES].run_key != ran[0].run_key  # given up, the next one runs
    assert heard[:CONTENDED_TRIES] == ["contended"] * CONTENDED_TRIES
    again = calibrate(store, ("mlp",), "cpu", "EPYC", budget_s=10, repeats=1,
                      run=contended_run, clock=iter([0.0, 0.0, 1e9, 1e9]).__next__)  # fmt: skip
    assert ran[-again:][0].run_key != ran[0].run_key  # the given-up one is not tried again
    count = len(ran)
    calibrate(store, ("mlp",), "cpu", "EPYC", budget_s=10, repeats=1, run=contended_run,
              clock=iter([0.0] * 3 + [1e9] * 9).__next__,
              choices=Choices(include_contended=True))  # fmt: skip
    keys = [s.run_key for s in ran[count:]]
    assert len(keys) == len(set(keys))  # taken as they are: no configuration runs twice


def test_a_calibration_line_says_each_runs_verdict(capsys):
    from rich.console import Console

    from dlbench.render.calculator import CalibrationProgress

    console = Console(width=200, force_terminal=False)
    progress = CalibrationProgress(60, console)
    spec = specs(design(("mlp",))[0], "cpu", "calibrate-x", 1)[0]
    with console.capture() as captured:
        progress.end(spec, "ok", "contended")
    assert ": ok, contended (" in captured.get()
