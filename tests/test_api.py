"""The Python API a notebook uses: dlbench.open_store() and dlbench.run()."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import dlbench
from dlbench.errors import ConfigError, StoreError
from dlbench.records import Quality
from dlbench.store.database import Store
from dlbench.store.summary import run_summary


def test_a_run_from_python_is_stored_and_read_back_typed(db_path):
    stored = dlbench.run(
        "lenet-mnist",
        device="cpu",
        steps=22,
        warmup=2,
        interval=0.2,
        db=db_path,
        tags={"from": "notebook"},
    )
    assert isinstance(stored, dlbench.StoredRun)
    assert stored.status == "ok" and stored.timed_steps == 20 and stored.mean_speed > 0
    assert stored.tags == {"from": "notebook"} and stored.config["workload"] == "lenet-mnist"
    # Synthetic data: validation and prediction cover half the timed steps' batches, no more.
    assert stored.inference.predict_images == 10 * stored.batch_size
    low, high = stored.speed_ci95
    assert low <= stored.mean_speed <= high
    assert isinstance(stored.quality, Quality) and stored.quality.verdict in (
        "clean",
        "noisy",
        "contended",
    )

    results = dlbench.open_store(db_path)
    assert [r.run_id for r in results.runs(workload="lenet-mnist")] == [stored.run_id]
    assert results.runs(workload="resnet50") == []
    assert results.run(stored.run_id[:12]) == stored
    steps = results.steps(stored.run_id)
    assert list(steps.columns) == ["step", "epoch", "step_time_s", "data_wait_s"]
    assert len(steps) == 20 and steps["step_time_s"].gt(0).all()
    assert steps["step_time_s"].mean() == pytest.approx(stored.mean_step_time_s)
    cpu = results.telemetry(stored.run_id, ["cpu.util_percent"])
    assert set(cpu["metric"]) == {"cpu.util_percent"} and len(cpu) >= 2
    assert list(cpu.columns) == ["t_s", "wall", "phase", "metric", "value"]
    every = results.telemetry(stored.run_id)
    assert isinstance(every, pd.DataFrame) and every["metric"].nunique() > 5


def test_a_stored_run_gives_back_exactly_the_json_summary(db_path):
    stored = dlbench.run("mlp-mnist", device="cpu", steps=14, warmup=2, db=db_path)
    row = Store(str(db_path)).get_run(stored.run_id)
    assert stored.to_dict() == run_summary(row)


def test_open_store_never_creates_a_database(tmp_path):
    with pytest.raises(StoreError, match="no results database at"):
        dlbench.open_store(tmp_path / "none.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_the_clis_errors(db_path):
    with pytest.raises(ConfigError, match="--batch-size"):
        dlbench.run("lenet-mnist", batch_size=0, db=db_path)
    with pytest.raises(ConfigError, match="timeout_s"):
        dlbench.run("lenet-mnist", device="cpu", timeout_s=float("nan"), db=db_path)
    assert not db_path.exists()


def test_importing_dlbench_stays_light():
    code = "import sys, dlbench; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_readmes_best_run_leaves_out_monitor_runs(store):
    """The Python API guide: max(store.runs(status="ok", kind="train"), key=mean_speed) with
    a monitor run stored (it has no training speed) picks the fastest training run."""
    from dlbench.records import RunResult
    from synthetic_runs import stored_device_run

    stored_device_run(store, "slow", "cpu", 0.2, 50)
    stored_device_run(store, "fast", "cpu", 0.1, 50)
    store.create_run("watch", "monitor", {"command": ["make"]}, workload="make")
    store.finish_run(RunResult(run_id="watch", status="ok", wall_time_s=1.0))
    runs = dlbench.open_store(store.url.removeprefix("sqlite:///")).runs(status="ok", kind="train")
    assert max(runs, key=lambda r: r.mean_speed).run_id == "fast"
