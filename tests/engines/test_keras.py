"""TensorFlow and JAX through Keras 3: the same workloads, the same architecture (parameter
counts), real training on the digits, the same store fields; the missing-framework error.

Keras runs in child processes only: the test process keeps torch, and TensorFlow followed by
torch's triton would crash it (docs/development/environment.md)."""

import importlib.util
import json
import subprocess
import sys

import pytest

from dlbench.config import build_spec
from dlbench.engines.pytorch.describe import describe_model
from dlbench.errors import ConfigError, EngineUnavailable
from dlbench.store.database import Store
from dlbench.workloads import WORKLOADS

from conftest import dlbench_here, run_dlbench

HAVE = {
    backend: all(importlib.util.find_spec(p) for p in ("keras", backend))
    for backend in ("tensorflow", "jax")
}
needs_keras = pytest.mark.skipif(
    not all(HAVE.values()), reason="keras, tensorflow and jax are not installed (scripts/setup)"
)
KERAS_WORKLOADS = sorted(name for name, w in WORKLOADS.items() if "keras" in w.builders)
# keras.applications.ResNet50 is ResNet v1 with a bias in every convolution; torchvision's
# is v1.5 without: the same layers, 79,680 more parameters in Keras (53 convs' biases).
KNOWN_DIFFERENCE = {"resnet50": 79_680}

COUNT_KERAS = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_PLATFORMS"] = "cpu"
from dlbench.registry import resolve
from dlbench.workloads import WORKLOADS
counts = {}
for name in sys.argv[1:]:
    w = WORKLOADS[name]
    counts[name] = resolve(w.builders["keras"])(w.input_shape, w.num_classes).count_params()
print(json.dumps(counts))
"""


def test_keras_has_the_workloads_the_issue_names():
    assert KERAS_WORKLOADS == sorted(
        [
            "lenet-mnist",
            "deepmnist",
            "cifar10-cnn",
            "mlp-mnist",
            "vgg16",
            "vgg19",
            "resnet50",
            "model-a",
            "gpt",
            "param-transformer",
        ]
    )


# Two groups of about equal time (Keras initialises every weight: GPT-2's 124M take 6 s).
LARGE = ["gpt", "model-a", "vgg16", "vgg19"]


@needs_keras
@pytest.mark.slow
@pytest.mark.parametrize("group", ["large", "small"])
def test_every_keras_model_has_the_pytorch_models_parameter_count(group):
    names = LARGE if group == "large" else [n for n in KERAS_WORKLOADS if n not in LARGE]
    done = subprocess.run(
        [sys.executable, "-c", COUNT_KERAS, *names],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    keras_counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(LARGE) <= set(KERAS_WORKLOADS)
    for name in names:
        torch_count = describe_model(build_spec(workload=name))["params"]
        assert keras_counts[name] - torch_count == KNOWN_DIFFERENCE.get(name, 0), name


@needs_keras
@pytest.mark.slow
@pytest.mark.parametrize("framework", ["tensorflow", "jax"])
def test_lenet_learns_the_digits_on_each_framework(db_path, framework):
    done = run_dlbench(
        db_path,
        "run",
        "lenet-mnist",
        "--framework",
        framework,
        "--device",
        "cpu",
        "--data",
        "digits",
        "--epochs",
        "8",
        "--warmup",
        "2",
        "--interval",
        "0.2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = Store(str(db_path)).list_runs()[0]
    result = run["result"]
    assert run["framework"] == framework and run["status"] == "ok"
    assert result["accuracy"] > 0.9, result["accuracy"]
    assert result["model"]["params"] == describe_model(build_spec(workload="lenet-mnist"))["params"]
    if framework == "jax":  # XLA counts what PyTorch counts; TensorFlow's profiler does not
        assert result["model"]["flops_per_step"] > 0, result["model"]["flops_note"]
    else:
        assert "not counted: TensorFlow's profiler gives" in result["model"]["flops_note"]
    assert result["speed"]["timed_steps"] > 100 and result["speed"]["mean_step_time_s"] > 0
    assert result["inference"]["predict_images"] > 0
    assert result["telemetry"]["phases"]["train"]  # the sampler watched the run


@needs_keras
@pytest.mark.slow
def test_frameworks_compare_side_by_side(db_path, tmp_path, capsys):
    for framework in ("pytorch", "jax"):
        done = run_dlbench(
            db_path, "run", "mlp-mnist", "--framework", framework, "--device", "cpu",
            "--steps", "40", "--warmup", "5", "--val-batches", "2", "--no-telemetry",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    ids = [r["run_id"] for r in Store(str(db_path)).list_runs()]
    compared = dlbench_here(capsys, "compare", *ids, "--by", "framework")
    assert compared.returncode == 0, compared.stderr
    assert "framework=jax" in compared.stdout and "(baseline)" in compared.stdout
    page = tmp_path / "report.html"
    reported = dlbench_here(capsys, "report", "--all", "--out", str(page))
    assert reported.returncode == 0, reported.stderr
    text = page.read_text()
    assert "Runs grouped by <b>framework</b>" in text and "<td>jax</td>" in text


def test_a_missing_framework_says_what_to_install(monkeypatch):
    from dlbench.engines import get_engine
    from dlbench.engines.keras import engine as keras_engine

    real = importlib.util.find_spec
    monkeypatch.setattr(
        keras_engine.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorflow" else real(name, *a),
    )
    with pytest.raises(EngineUnavailable) as raised:
        get_engine("tensorflow")
    assert raised.value.one_line() == (
        "--framework tensorflow needs tensorflow, not installed here "
        "(pip install 'dlbench[tensorflow]')"
    )


def test_keras_refuses_what_only_pytorch_does(db_path, capsys):
    with pytest.raises(ConfigError, match="workload xception has no jax model"):
        build_spec(workload="xception", framework="jax")
    with pytest.raises(ConfigError, match="--framework tensorflow runs fp32, amp-fp16, amp-bf16"):
        build_spec(workload="lenet-mnist", framework="tensorflow", precision="tf32")
    for option in ({"gpus": 2}, {"compile": True}, {"channels_last": True}):
        with pytest.raises(ConfigError, match="are PyTorch's"):
            build_spec(workload="lenet-mnist", framework="tensorflow", **option)
    done = dlbench_here(capsys, "run", "vgg16", "--framework", "jax", "--gpus", "2")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert not Store(str(db_path)).list_runs()  # refused before anything started
    if HAVE["jax"]:
        from dlbench.engines import get_engine

        engine = get_engine("jax")
        with pytest.raises(EngineUnavailable, match="tf32"):
            engine.check_precision(engine.resolve_device("cpu"), "tf32")


@needs_keras
@pytest.mark.slow
@pytest.mark.parametrize("framework", ["tensorflow", "jax"])
def test_gpt_learns_the_standard_library_on_each_framework(db_path, framework):
    """The Keras decoder trains on the same text as the PyTorch one: validation loss well
    below uniform (ln 256 = 5.55 nats per byte), tokens/s and perplexity stored."""
    done = run_dlbench(
        db_path, "run", "gpt", "--framework", framework, "--device", "cpu", "--data",
        "stdlib", "--depth", "2", "--width", "128", "--seq-len", "64", "--batch-size", "16",
        "--steps", "120", "--warmup", "5", "--val-batches", "10", "--no-telemetry",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = Store(str(db_path)).list_runs()[0]["result"]
    assert result["val_loss"] < 0.65 * 5.545, result["val_loss"]
    assert result["perplexity"] > 1 and result["tokens_per_s"] > 0
    assert result["model"]["params"] == 437_760  # the PyTorch gpt at 2 x 128, 64 tokens
