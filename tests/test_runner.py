import dataclasses

import pytest

from dlbench import workloads
from dlbench.config import build_spec
from dlbench.runner import execute

from conftest import write_mnist


def _run(store, run_id="r", **options):
    spec = build_spec(**options)
    store.create_run(run_id, "train", spec.model_dump(mode="json"))
    return spec, execute(spec, run_id, store)


@pytest.fixture
def faulty(monkeypatch):
    """Register a workload whose model fails as ``faulty_models.<name>`` says."""

    def register(builder: str) -> str:
        base = workloads.WORKLOADS["mlp-mnist"]
        spec = dataclasses.replace(
            base, name=f"faulty-{builder}", builders={"pytorch": f"faulty_models:{builder}"}
        )
        monkeypatch.setitem(workloads.WORKLOADS, spec.name, spec)
        return spec.name

    return register


def test_a_run_measures_every_phase_and_stores_it(store):
    spec, result = _run(store, workload="mlp-mnist", steps=25, warmup=5, val_batches=3, seed=1)
    assert result.status == "ok" and result.error is None and result.phase_reached == "done"
    assert result.speed is not None and result.speed.timed_steps == 20
    assert result.images_trained == 20 * spec.batch_size
    assert result.throughput_e2e == pytest.approx(result.speed.mean_speed, rel=0.5)
    assert result.total_time_s == pytest.approx(result.train_time_s + result.val_time_s)
    assert 0.0 <= result.accuracy <= 1.0
    inference = result.inference
    assert inference.predict_images == 3 * spec.batch_size
    assert inference.batch_latency_size == spec.batch_size
    assert 0 < inference.latency_p50_ms <= inference.latency_p95_ms
    assert result.peak_memory_bytes > 0 and result.peak_memory_source == "process_max_rss"
    row = store.get_run("r")
    assert row["status"] == "ok" and row["timed_steps"] == 20
    assert row["device"] == "cpu" and row["hardware"]["cpu"]["usable_cpus"] >= 1
    assert len(store.get_steps("r")) == 20


def test_synthetic_validation_is_not_the_training_data(store):
    # An MLP that memorises four training batches must not score it on validation.
    _, result = _run(store, workload="mlp-mnist", steps=160, warmup=0, val_batches=2)
    assert result.final_train_loss < 0.5
    assert result.accuracy < 0.3


def test_epochs_over_real_files_time_whole_epochs(store, tmp_path):
    write_mnist(tmp_path, n_train=250, n_test=60)
    _, result = _run(
        store,
        workload="lenet-mnist",
        data=str(tmp_path),
        epochs=2,
        warmup=2,
        batch_size=50,
        workers=1,
    )
    assert result.status == "ok", result.error
    steps = store.get_steps("r")
    assert len(steps) == 2 * (250 // 50)
    assert [s.epoch for s in steps] == [0] * 5 + [1] * 5
    assert all(0 <= s.data_wait_s < s.step_time_s for s in steps)
    assert result.inference.predict_images == 60


@pytest.mark.parametrize("builder", ["cuda_oom", "host_oom"])
def test_out_of_memory_is_stored_as_oom_with_the_steps_done(store, faulty, builder):
    _, result = _run(store, workload=faulty(builder), steps=30, warmup=5)
    assert result.status == "oom"
    assert result.phase_reached == "train"
    assert "(in the train phase" in result.error
    assert result.speed.timed_steps == 13 - 5  # the 14th forward raised; 5 were warm-up
    assert store.get_run("r")["status"] == "oom"


def test_a_failure_keeps_what_was_measured_before_it(store, faulty):
    _, result = _run(store, workload=faulty("bug_in_validation"), steps=15, warmup=5)
    assert result.status == "failed"
    assert result.error.startswith("ValueError: shapes do not match (in the validate phase")
    assert result.speed.timed_steps == 10 and result.train_time_s > 0
    assert result.accuracy is None
    assert store.get_run("r")["mean_speed"] == pytest.approx(result.speed.mean_speed)


def test_ctrl_c_stores_interrupted_with_the_steps_so_far(store, faulty):
    _, result = _run(store, workload=faulty("ctrl_c"), steps=100, warmup=5)
    assert result.status == "interrupted"
    assert result.error == "interrupted during the train phase"
    assert result.speed.timed_steps == 12
    assert len(store.get_steps("r")) == 12


def test_lenet_learns_the_real_digits(store):
    _, result = _run(store, workload="lenet-mnist", data="digits", epochs=8, warmup=2)
    assert result.status == "ok"
    assert result.accuracy > 0.9


def test_telemetry_is_sampled_and_tagged_with_every_phase(store):
    _, result = _run(
        store, workload="cifar10-cnn", steps=25, warmup=5, val_batches=10, interval=0.05
    )
    phases = {s.phase for s in store.get_samples("r", ["cpu.util_percent"])}
    assert {"warmup", "train", "validate", "infer"} <= phases
    telemetry = result.telemetry
    assert telemetry["enabled"] and telemetry["interval_s"] == 0.05
    train = telemetry["phases"]["train"]["metrics"]
    assert train["proc.cpu_percent"]["max"] > 50  # this process trained, on at least one core
    assert telemetry["sources"]["gpu"].startswith(("unavailable", "ok"))
    assert store.get_run("r")["result"]["telemetry"]["phases"]["train"]["duration_s"] > 0


def test_no_telemetry_means_no_samples_and_says_so(store):
    _, result = _run(store, workload="mlp-mnist", steps=15, warmup=5, telemetry=False)
    assert store.get_samples("r") == []
    assert result.telemetry == {
        "enabled": False,
        "reason": "telemetry was off for this run (--no-telemetry)",
    }


def test_a_failed_run_still_stops_and_flushes_its_sampler(store, faulty):
    _, result = _run(store, workload=faulty("cuda_oom"), steps=30, warmup=5, interval=0.02)
    assert result.status == "oom"
    assert result.telemetry["ticks"] > 0
    assert len(store.get_samples("r")) > 0
