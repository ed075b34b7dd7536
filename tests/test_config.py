import re

import pytest

from dlbench.config import build_spec
from dlbench.config.checks import parse_tags
from dlbench.config.limits import DEFAULT_TIMED_STEPS, DEFAULT_TTA_EPOCHS, DEFAULT_WARMUP
from dlbench.errors import ConfigError


def test_defaults_are_filled_from_the_workload():
    spec = build_spec(workload="deepmnist")
    assert spec.batch_size == 50 and spec.dataset == "mnist"
    assert spec.steps == DEFAULT_WARMUP + DEFAULT_TIMED_STEPS
    assert build_spec(workload="cifar10-cnn", epochs=2).steps is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workload": "resnet-9000"}, "unknown workload 'resnet-9000'"),
        ({"workload": "lenet"}, "did you mean lenet-mnist"),
        ({"workload": "lenet-mnist", "batch_size": 0}, "--batch-size: .*greater than 0"),
        ({"workload": "lenet-mnist", "batch_size": -3}, "--batch-size"),
        ({"workload": "lenet-mnist", "steps": 10}, "--steps: 10 steps leave none to time"),
        ({"workload": "lenet-mnist", "steps": 5, "warmup": 5}, "--steps"),
        ({"workload": "lenet-mnist", "warmup": -1}, "--warmup"),
        ({"workload": "lenet-mnist", "epochs": 0}, "--epochs"),
        ({"workload": "lenet-mnist", "steps": 50, "epochs": 1}, "not both"),
        ({"workload": "lenet-mnist", "device": "gpu"}, "--device: 'gpu'"),
        ({"workload": "lenet-mnist", "device": "cuda:x"}, "--device"),
        ({"workload": "cifar10-cnn", "dataset": "mnist"}, "use --dataset cifar10"),
        ({"workload": "lenet-mnist", "framework": "caffe"}, "--framework"),
        ({"workload": "lenet-mnist", "tags": {"bad key": "x"}}, "--tag: tag key"),
        ({"workload": "lenet-mnist", "colour": "red"}, "--colour"),
        ({"workload": "lenet-mnist", "image_size": 64}, "--image-size: lenet-mnist is defined"),
        ({"workload": "inception-v3", "image_size": 32}, "--image-size: .*at least 75x75"),
        ({"workload": "resnet50", "precision": "fp8"}, "--precision"),
        ({"workload": "resnet50", "optimizer": "lamb"}, "--optimizer: 'lamb'"),
        ({"workload": "resnet50", "lr": 0}, "--lr"),
        ({"workload": "resnet50", "num_classes": 1}, "--num-classes"),
        ({"workload": "lenet-mnist", "target_accuracy": 0.9}, "--target-accuracy: synthetic"),
        ({"workload": "lenet-mnist", "target_accuracy": 1.5, "data": "digits"}, "--target-acc"),
        (
            {"workload": "lenet-mnist", "target_accuracy": 0.9, "data": "digits", "steps": 50},
            "cap it with --epochs",
        ),
        ({"workload": "resnet50", "dataset": "mnist"}, "use --dataset imagefolder or cifar10"),
    ],
)
def test_bad_options_are_one_clear_config_error(options, message):
    with pytest.raises(ConfigError) as caught:
        build_spec(**options)
    line = caught.value.one_line()
    assert re.search(message, line), line
    assert "\n" not in line


def test_zoo_defaults_and_execution_options():
    spec = build_spec(workload="resnet50")
    assert spec.image_size == 224 and spec.input_shape == (3, 224, 224)
    assert spec.optimizer == "sgd" and spec.lr == 0.025 and spec.precision == "fp32"
    small = build_spec(workload="resnet50", image_size=32, optimizer="adamw", lr=3e-4)
    assert small.input_shape == (3, 32, 32) and small.optimizer == "adamw" and small.lr == 3e-4
    assert build_spec(workload="lenet-mnist", image_size=28).input_shape == (1, 28, 28)


def test_dataset_size_turns_epochs_into_a_projection():
    spec = build_spec(workload="resnet18", dataset_size=50_000, epochs=90)
    assert spec.timed_epochs is None and spec.epochs == 90
    assert spec.steps == DEFAULT_WARMUP + DEFAULT_TIMED_STEPS
    assert build_spec(workload="resnet18", epochs=2).timed_epochs == 2


def test_time_to_accuracy_has_an_epoch_cap_and_no_untimed_warmup():
    spec = build_spec(workload="lenet-mnist", data="digits", target_accuracy=0.95)
    assert spec.epochs == DEFAULT_TTA_EPOCHS and spec.warmup == 0 and spec.steps is None


def test_devices_accepted():
    for device in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert build_spec(workload="mlp-mnist", device=device).device == device


def test_tags():
    assert parse_tags(["site=psc", "gpu = p100"]) == {"site": "psc", "gpu": "p100"}
    with pytest.raises(ConfigError, match="not key=value"):
        parse_tags(["oops"])
