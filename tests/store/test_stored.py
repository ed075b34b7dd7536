"""StoredRun: what the store hands readers, typed, and its JSON exactly what was stored."""

import json
import pickle

import pytest

from dlbench.records import Quality
from dlbench.store.measurements import MetricSummary
from dlbench.store.stored import StoredRun
from dlbench.store.summary import run_summary
from synthetic_runs import stored_device_run, stored_runs, summaries

CONTENDED = Quality("contended", ("other work took 1.10 of the 2 usable cores",), 1.1, 0.2, None)


def test_a_stored_run_reads_back_as_typed_records(store):
    stored_device_run(store, "gpu-1", "cuda:0", 0.01, util=12, gpu_util=95, name="NVIDIA H100")
    run = store.run("gpu-1")
    assert isinstance(run, StoredRun) and run.device_name == "NVIDIA H100"
    assert run.timed_steps == 200 and run.mean_speed == pytest.approx(64 / run.mean_step_time_s)
    train = run.telemetry.phase("train")
    gpu = train.metrics["gpu0.util_percent"]
    assert isinstance(gpu, MetricSummary) and gpu.mean == pytest.approx(95.0)
    assert train.metrics["cpu.util_percent"].samples == 120
    with pytest.raises(TypeError):
        run.tags["x"] = "y"  # read-only, as the store's record is
    assert pickle.loads(pickle.dumps(run)) == run  # a notebook may cache or send it
    assert run.to_dict() == run_summary(store.get_run("gpu-1"))
    json.dumps(run.to_dict())  # plain JSON, as --json prints it


def test_quality_and_descriptors_are_records(store):
    stored_runs(store, summaries(n=1), quality=CONTENDED)
    (run,) = store.runs()
    assert run.quality.verdict == "contended" == run.quality_verdict
    assert run.quality.reasons == CONTENDED.reasons
    assert run.descriptors.family == "vgg" and run.descriptors.device_peak_tflops == 100.0
    assert run.descriptors.flops_per_step > 0


def test_a_summary_from_an_older_dlbench_still_reads():
    old = {
        "run_id": "old",
        "kind": "train",
        "status": "ok",
        "inference": {"load_time_s": 1.0},  # fields added later are missing
        "telemetry": {"phases": {"train": {"metrics": {"cpu.util_percent": {"mean": 50.0}}}}},
        "ranks": [{"rank": 1}],
    }
    run = StoredRun.from_summary(old)
    assert run.inference is None  # shown as not measured, never a crash
    assert (
        run.telemetry.enabled
        and run.telemetry.phase("train").metrics["cpu.util_percent"].mean == 50
    )
    assert run.ranks[0].rank == 1 and run.ranks[0].speed is None
    assert run.to_dict() == old


def test_every_view_takes_a_runs_defaults_label_and_accuracy_from_the_record():
    """The terminal, the report and the dashboard name a run and word its accuracy alike."""
    old = StoredRun.from_summary(
        {"run_id": "o", "kind": "train", "status": "ok", "workload": "lenet-mnist",
         "device": "cpu", "batch_size": 64, "config": {"precision": "amp-bf16"},
         "accuracy": 0.9871, "data": "digits"}
    )  # fmt: skip
    assert (old.framework, old.precision) == ("pytorch", "amp-bf16")  # before those columns
    assert old.label == "lenet-mnist · pytorch · cpu · amp-bf16 · b64"
    assert old.accuracy_words == ("0.9871", True)
    assert "framework" not in old.to_dict()  # the JSON keeps what was stored

    def words(**fields):
        return StoredRun.from_summary({"run_id": "r", "kind": "train", "status": "ok", **fields})

    assert words(accuracy=0.1016, data="synthetic").accuracy_words == ("0.1016 (synthetic)", False)
    assert words(accuracy=0.1016, data="synthetic").learned_accuracy is None
    assert words(map50=0.412, data="synthetic").accuracy_words == ("mAP@0.5 0.4120", True)
    assert words(data="synthetic").accuracy_words is None
    monitor = StoredRun.from_summary(
        {"run_id": "m", "kind": "monitor", "status": "ok", "config": {"command": ["sleep", "1"]}}
    )
    assert monitor.framework is None and monitor.precision is None
    assert monitor.label == "monitor: sleep 1"
    collective = StoredRun.from_summary(
        {"run_id": "c", "kind": "collective", "status": "ok", "framework": "pytorch"}
    )
    assert collective.precision is None  # it measured no arithmetic at a precision
