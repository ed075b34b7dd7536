import re

import pytest

from dlbench.config import DEFAULT_TIMED_STEPS, DEFAULT_WARMUP, build_spec, parse_tags
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
    ],
)
def test_bad_options_are_one_clear_config_error(options, message):
    with pytest.raises(ConfigError) as caught:
        build_spec(**options)
    line = caught.value.one_line()
    assert re.search(message, line), line
    assert "\n" not in line


def test_devices_accepted():
    for device in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert build_spec(workload="mlp-mnist", device=device).device == device


def test_tags():
    assert parse_tags(["site=psc", "gpu = p100"]) == {"site": "psc", "gpu": "p100"}
    with pytest.raises(ConfigError, match="not key=value"):
        parse_tags(["oops"])
