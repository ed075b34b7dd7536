"""--gpus N: DistributedDataParallel under torchrun; gloo joins CPU processes here."""

import json

import pytest

from dlbench.store.database import Store

from conftest import run_dlbench


def _run(db_path, *args):
    done = run_dlbench(
        db_path,
        "run",
        "lenet-mnist",
        "--data",
        "digits",
        "--device",
        "cpu",
        "--batch-size",
        "50",
        "--warmup",
        "1",
        "--workers",
        "0",
        "--json",
        "-",
        *args,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_two_gloo_processes_train_the_same_global_batches_as_one(db_path):
    one = _run(db_path, "--epochs", "1")
    two = _run(db_path, "--epochs", "1", "--gpus", "2")
    shown = json.dumps(
        {k: two.get(k) for k in ("status", "error", "timed_steps", "images_trained", "ranks")},
        default=str,
    )
    # 1,437 training digits, batch 50: 28 batches in one process; 14 on each of two ranks.
    assert one["timed_steps"] == 28 and two["timed_steps"] == 14, shown
    assert one["images_trained"] == two["images_trained"] == 1400, shown
    assert [r["rank"] for r in two["ranks"]] == [0, 1]
    assert all(r["timed_steps"] == 14 and r["mean_step_time_s"] > 0 for r in two["ranks"])
    assert two["num_gpus"] == 0 and two["config"]["gpus"] == 2  # CPU processes, not GPUs
    # global speed: 2 x 50 images per step
    assert two["mean_speed"] == pytest.approx(100 / two["mean_step_time_s"])
    # the same global batches train the same model: validation, split across the two ranks
    # and summed, scores it as one process does (float reduction order aside)
    assert two["status"] == "ok" and two["accuracy"] == pytest.approx(one["accuracy"], abs=0.05)
    assert len(Store(str(db_path)).list_runs()) == 2  # rank 1 stored nothing of its own
