import dataclasses
import json

import pytest

from dlbench import workloads
from dlbench.config import build_spec
from dlbench.runner.benchmark import execute

from conftest import run_dlbench, write_mnist


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
    # End to end: the images over the timed phase's wall time, which holds every step.
    assert result.throughput_e2e == pytest.approx(result.images_trained / result.train_time_s)
    assert result.train_time_s >= sum(s.step_time_s for s in store.get_steps("r"))
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
    # the 14th forward raised: one counted the FLOPs in setup, 5 were warm-up
    assert result.speed.timed_steps == 13 - 1 - 5
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
    assert result.speed.timed_steps == 17 - 1 - 5  # FLOP count, warm-up, then 11 timed
    assert len(store.get_steps("r")) == 11


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


def test_time_to_accuracy_stops_at_the_target_and_counts_every_step(store):
    spec, result = _run(
        store, workload="lenet-mnist", data="digits", target_accuracy=0.8, epochs=15, warmup=5
    )
    tta = result.time_to_accuracy
    assert result.status == "ok" and spec.warmup == 0  # no step escapes the clock
    assert tta.reached and tta.accuracy_by_epoch[-1] >= 0.8 > max(tta.accuracy_by_epoch[:-1])
    assert tta.epochs == len(tta.accuracy_by_epoch) < 15
    assert 0 < tta.train_time_s < tta.wall_time_s
    assert result.speed.timed_steps == tta.epochs * (len(store.get_steps("r")) // tta.epochs)
    assert result.accuracy == tta.accuracy_by_epoch[-1]
    stored = store.get_run("r")["result"]["time_to_accuracy"]
    assert stored["reached"] and stored["epochs"] == tta.epochs


def test_an_unreachable_target_says_so_after_the_epoch_cap(store):
    _, result = _run(store, workload="mlp-mnist", data="digits", target_accuracy=1.0, epochs=2)
    assert result.status == "ok"
    assert not result.time_to_accuracy.reached and result.time_to_accuracy.epochs == 2


def test_feasibility_projects_epochs_of_the_dataset_at_the_measured_step_time(store):
    _, result = _run(
        store, workload="mlp-mnist", steps=20, warmup=5, dataset_size=1000, epochs=3, batch_size=64
    )
    plan = result.feasibility
    assert result.speed.timed_steps == 15  # --epochs projects, it does not train
    assert plan.fits and plan.steps_per_epoch == 16 and plan.epochs == 3
    assert plan.projected_train_s == pytest.approx(3 * 16 * result.speed.mean_step_time_s)


def test_feasibility_of_a_batch_that_runs_out_of_memory(store, faulty):
    _, result = _run(store, workload=faulty("host_oom"), steps=30, warmup=5, dataset_size=500)
    assert result.status == "oom"
    assert not result.feasibility.fits and result.feasibility.projected_train_s is None


def test_flops_and_mfu_are_stored_with_their_peak_source(store):
    _, result = _run(store, workload="mlp-mnist", steps=15, warmup=5, precision="amp-bf16")
    model = result.model
    assert model.params == 669_706 and model.layers == {"Linear": 3}
    # 784-512-512-10 MLP: forward 2 x batch x MACs, backward twice that but the first
    # layer's input gradient (the images need none).
    macs = 784 * 512 + 512 * 512 + 512 * 10
    assert model.flops_per_step == 128 * 2 * (3 * macs - 784 * 512)
    assert result.achieved_tflops == pytest.approx(
        model.flops_per_step / result.speed.mean_step_time_s / 1e12
    )
    assert result.peak_source
    if result.peak_tflops:  # known CPU clock and ISA
        assert result.mfu == pytest.approx(result.achieved_tflops / result.peak_tflops)
    assert store.get_run("r")["config"]["precision"] == "amp-bf16"


def test_a_checkpoint_is_saved_where_asked(store, tmp_path):
    path = tmp_path / "lenet.pt"
    _run(store, workload="lenet-mnist", steps=12, warmup=2, val_batches=1, checkpoint=str(path))
    from dlbench.engines.pytorch.checkpoint import read_checkpoint

    saved = read_checkpoint(path)
    assert saved["meta"]["workload"] == "lenet-mnist" and saved["meta"]["image_size"] == 28
    assert "0.weight" in saved["model"]


@pytest.mark.slow
def test_a_compiled_model_trains_and_saves_plain_weights(store, tmp_path):
    path = tmp_path / "mlp.pt"
    _, result = _run(
        store,
        workload="mlp-mnist",
        steps=12,
        warmup=2,
        val_batches=1,
        compile=True,
        checkpoint=str(path),
    )
    assert result.status == "ok", result.error
    assert result.warmup_time_s > result.speed.mean_step_time_s * 2  # compilation is in warm-up
    from dlbench.engines.pytorch.checkpoint import read_checkpoint

    assert not any(key.startswith("_orig_mod") for key in read_checkpoint(path)["model"])


def test_every_run_stores_its_model_descriptors(store):
    _, result = _run(store, workload="mlp-mnist", steps=12, warmup=2, val_batches=1)
    d = result.descriptors
    assert d["family"] == "mlp" and d["depth"] == 3 and d["width"] == 512
    assert d["params"] == 669_706 and d["flops_per_step"] == result.model.flops_per_step
    # one forward pass at batch 128, fp32: flatten 784, then per layer the outputs
    # (linear 512, relu 512, dropout 512, linear 512, relu 512, dropout 512, linear 10)
    assert d["activation_bytes"] == 128 * 4 * (784 + 6 * 512 + 10)
    assert d["input_size"] == 28 and d["batch_size"] == 128 and d["precision"] == "fp32"
    assert d["device_bandwidth_gb_s"] is None  # a CPU run: no datasheet bandwidth
    assert store.get_run("r")["result"]["descriptors"]["layers"] == {"Linear": 3}


def test_descriptors_counted_without_running_match_those_of_a_run(store):
    from dlbench.engines.pytorch.describe import describe_model

    spec, result = _run(store, workload="cifar10-cnn", steps=12, warmup=2, val_batches=1)
    described = describe_model(spec)  # the model on the meta device: no data, no compute
    for key in ("params", "flops_per_step", "activation_bytes", "width", "layers", "depth"):
        assert described[key] == result.descriptors[key], key


def test_feasibility_under_ddp_counts_every_process_batch():
    from dlbench.records import SpeedStats
    from dlbench.runner.result import _feasibility

    spec = build_spec(workload="resnet18", batch_size=64, gpus=4, dataset_size=10_000, epochs=2)
    speed = SpeedStats(10, 0.5, 0.5, 0.5, 512.0, 512.0, 1, 1, 1.0, 1.0, 0.0, 0.0)
    plan = _feasibility(spec, "ok", speed)
    assert plan.steps_per_epoch == 40  # ceil(10,000 / (64 x 4))
    assert plan.projected_train_s == pytest.approx(2 * 40 * 0.5)


def test_every_run_accounts_for_other_work_in_its_timed_phase(store):
    _, result = _run(store, workload="mlp-mnist", steps=200, warmup=5, val_batches=1)
    quality = result.quality
    assert quality is not None and quality.verdict in ("clean", "noisy", "contended")
    assert quality.window_s == pytest.approx(result.train_time_s, rel=0.2, abs=0.05)
    # This process trained: its own CPU is most of a core at least, however busy the machine.
    assert quality.own_cpu_cores > 0.3
    assert 0 <= quality.foreign_cpu_cores <= quality.usable_cores
    assert quality.reasons and "usable cores" in " ".join(quality.reasons)
    row = store.get_run("r")
    assert row["quality_verdict"] == quality.verdict
    assert row["foreign_cpu_cores"] == pytest.approx(quality.foreign_cpu_cores)
    low, high = result.speed.speed_ci95
    assert 0 < low <= result.speed.mean_speed <= high


def test_until_stable_adds_timed_steps_until_the_interval_is_narrow(store):
    _, result = _run(store, workload="mlp-mnist", steps=12, warmup=2, until_stable=20.0,
                     max_time=30.0, val_batches=1)  # fmt: skip
    found = result.stability
    assert found.target_percent == 20.0 and found.max_time_s == 30.0
    assert found.stable and found.reached_percent <= 20.0
    assert result.speed.timed_steps >= 10
    steps = store.get_steps("r")
    assert len(steps) == result.speed.timed_steps


def test_until_stable_gives_up_at_max_time_and_says_how_far_it_got(store):
    _, result = _run(store, workload="mlp-mnist", steps=12, warmup=2, until_stable=0.001,
                     max_time=1.5, val_batches=1)  # fmt: skip
    found = result.stability
    assert not found.stable and found.reached_percent > 0.001
    assert result.train_time_s >= 1.5  # it gave up at the time limit, never before
    assert result.speed.timed_steps > 10


def test_until_stable_is_refused_with_epochs_and_max_time_needs_it():
    from dlbench.errors import ConfigError

    with pytest.raises(ConfigError, match="--until-stable: .* cannot be combined with --epochs"):
        build_spec(workload="mlp-mnist", epochs=2, until_stable=2)
    with pytest.raises(ConfigError, match="--max-time: caps --until-stable"):
        build_spec(workload="mlp-mnist", max_time=10)
    assert build_spec(workload="mlp-mnist", until_stable=2).max_time == 300.0
    # Unset, the new options leave the sweep keys of earlier runs as they were.
    import hashlib
    import json

    spec = build_spec(workload="mlp-mnist")
    from dlbench.config import AFTER_TIMING_FIELDS, LATER_FIELDS, SERVING_FIELDS

    # As an earlier dlbench dumped the spec: without the fields added since.
    added = {"tags", *LATER_FIELDS, *AFTER_TIMING_FIELDS, *SERVING_FIELDS}
    before = spec.model_dump(mode="json", exclude=added)
    digest = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert spec.run_key == digest
    assert build_spec(workload="mlp-mnist", until_stable=2).run_key != digest
    # Skipping validation or inference, or profiling after, trains the same configuration.
    same = build_spec(workload="mlp-mnist", no_validate=True, no_infer=True, profile=True)
    assert same.run_key == digest


def test_accounting_that_breaks_never_loses_the_run(store, monkeypatch):
    from dlbench.telemetry.interference import InterferenceMeter

    def broken(self):
        raise OSError("/proc vanished")

    monkeypatch.setattr(InterferenceMeter, "stop", broken)
    _, result = _run(store, workload="mlp-mnist", steps=12, warmup=2, val_batches=1)
    assert result.status == "ok" and result.quality is None
    assert store.get_run("r")["status"] == "ok"


def test_a_short_run_spends_at_most_a_quarter_of_its_training_on_latency():
    from dlbench.runner.inference import LATENCY_BUDGET_S, MIN_LATENCY_BUDGET_S, latency_budget

    assert latency_budget(None) == LATENCY_BUDGET_S
    assert latency_budget(600.0) == LATENCY_BUDGET_S  # a long run: the full budget
    assert latency_budget(2.0) == 0.5
    assert latency_budget(0.1) == MIN_LATENCY_BUDGET_S  # never so short it times nothing


def test_a_profiled_run_says_where_its_step_time_goes(db_path, capsys):
    from conftest import call_main

    done = run_dlbench(
        db_path, "run", "cifar10-cnn", "--steps", "13", "--warmup", "3", "--batch-size", "16",
        "--val-batches", "1", "--no-infer", "--profile", "--json", "-",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["timed_steps"] == 10  # the profiled steps come after, never counted
    assert "Where a step's time goes" in done.stderr  # run prints it too (JSON on stdout)
    assert "USDT" not in done.stderr and "profiler_start" not in done.stderr  # kineto's log
    profile = summary["profile"]
    assert profile["available"] and profile["steps"] == 5
    categories = profile["categories"]
    assert sum(c["share"] for c in categories.values()) == pytest.approx(1.0)
    total = sum(c["seconds_per_step"] for c in categories.values())
    assert total == pytest.approx(summary["mean_step_time_s"], rel=0.10)
    # The CIFAR-10 CNN: convolutions, and its LocalResponseNorm layers as normalisation.
    assert categories["convolution"]["share"] > 0.05 and categories["normalisation"]["share"] > 0
    assert categories["convolution"]["tflops"] > 0
    layers = profile["layers"]
    assert {layer["module"] for layer in layers} >= {"Conv2d", "LocalResponseNorm"}
    assert all(layer["forward_s"] > 0 for layer in layers)
    code, out, _ = call_main(capsys, "show", summary["run_id"], "--db", str(db_path))
    assert code == 0 and "Where a step's time goes" in out and "LocalResponseNorm" in out


@pytest.mark.slow
def test_a_profiled_transformer_shows_attention_as_its_own_category(db_path):
    done = run_dlbench(
        db_path, "run", "param-transformer", "--depth", "2", "--width", "128", "--seq-len",
        "128", "--batch-size", "8", "--steps", "8", "--warmup", "2", "--val-batches", "1",
        "--no-infer", "--profile", "--no-telemetry", "--json", "-",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    profile = json.loads(done.stdout)["profile"]
    categories = profile["categories"]
    assert categories["attention"]["share"] > 0.01 and categories["matmul"]["share"] > 0.1
    assert categories["normalisation"]["share"] > 0  # the blocks' layer norms
    # the slowest leaf layers (the top 15 of 18): products first, never the blocks themselves
    modules = {layer["module"] for layer in profile["layers"]}
    assert "Linear" in modules and modules <= {"Linear", "LayerNorm", "Embedding", "GELU"}


def test_an_engine_without_a_profiler_says_so_and_the_run_goes_on():
    from types import SimpleNamespace

    from dlbench.runner.benchmark import NullProgress, _profile
    from dlbench.runner.result import Measured

    found = _profile(SimpleNamespace(name="tensorflow"), Measured(None, "r"), NullProgress())
    assert found == {"available": False, "reason": "the tensorflow engine has no profiler here"}
