"""dlbench quickstart: the command as a user runs it, its plan, and its estimate from earlier
quickstarts on this machine."""

import math
import time
from datetime import datetime, timedelta, timezone

import pytest

from dlbench.records import RunResult
from dlbench.store import columns, database
from dlbench.store.database import Store
from dlbench.tools.quickstart import estimate, plan

from conftest import run_dlbench


def test_the_estimate_is_each_runs_whole_life_in_earlier_quickstarts_here(store, monkeypatch):
    specs = plan("cpu")
    assert estimate(store, specs) == (0.0, len(specs))  # nothing to go by: said as such
    clock = [datetime(2026, 1, 1, tzinfo=timezone.utc)]

    def now():
        return clock[0].isoformat(timespec="milliseconds")

    monkeypatch.setattr(database, "utc_now", now)
    monkeypatch.setattr(columns, "utc_now", now)
    for i, (spec, took) in enumerate([(specs[0], 10.0), (specs[0], 14.0), (specs[1], 30.0)]):
        run_id = f"q{i}"
        store.create_run(run_id, "train", spec.model_dump(mode="json"), **spec.columns())
        clock[0] += timedelta(seconds=took)  # from the row's creation to the run's end
        store.finish_run(RunResult(run_id=run_id, status="ok", wall_time_s=1.0))
    assert estimate(store, specs) == (12.0 + 30.0, len(specs) - 2)  # the median of each


@pytest.mark.slow
@pytest.mark.serial  # the main job as a user runs it, alone: seven real runs in about 40 s
def test_quickstart_runs_every_workload_and_learns_digits(db_path):
    started = time.monotonic()
    done = run_dlbench(db_path, "quickstart", timeout=600)
    assert done.returncode == 0, done.stderr
    runs = Store(str(db_path)).list_runs()
    assert len(runs) == 7 and {r["status"] for r in runs} == {"ok"}
    assert {r["workload"] for r in runs} == {
        "lenet-mnist",
        "deepmnist",
        "cifar10-cnn",
        "mlp-mnist",
        "resnet18",
        "gpt",
    }
    (digits,) = [r for r in runs if r["data"] == "digits"]
    assert digits["accuracy"] > 0.9
    (text,) = [r for r in runs if r["data"] == "stdlib"]
    assert text["result"]["val_loss"] < 0.75 * math.log(256) and text["result"]["tokens_per_s"]
    assert (
        "7 of 7 runs ok" in done.stdout and "TFLOP/s" in done.stdout and str(db_path) in done.stdout
    )
    print(f"quickstart took {time.monotonic() - started:.0f} s")
