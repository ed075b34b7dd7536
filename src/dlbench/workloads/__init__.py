"""The workload catalogue: what each standard benchmark trains, framework-free.

A ``WorkloadSpec`` says what a workload is (input, classes, batch, optimiser, data format) and
where each framework's model builder lives; engines import the builder on use. Adding a model
is one entry here plus its builder module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlbench.errors import ConfigError
from dlbench.registry import unknown_name


@dataclass(frozen=True)
class OptimizerSpec:
    name: str  # sgd | adam | rmsprop
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    description: str
    family: str
    input_shape: tuple[int, int, int]  # channels, height, width
    num_classes: int
    default_batch_size: int
    optimizer: OptimizerSpec
    data_format: str  # a key of dlbench.datasets.FORMATS
    datasets: tuple[str, ...]  # values --dataset accepts; the first is the default
    builders: dict[str, str] = field(default_factory=dict)  # framework -> "module:function"


_MNIST = ("mnist", "fashion-mnist")
_TORCH_MNIST = "dlbench.workloads.mnist_models"
_TORCH_CIFAR = "dlbench.workloads.cifar_models"

WORKLOADS: dict[str, WorkloadSpec] = {
    spec.name: spec
    for spec in (
        WorkloadSpec(
            name="lenet-mnist",
            description="LeNet (conv20-pool-conv50-pool-fc500-fc10), Caffe's MNIST example",
            family="lenet",
            input_shape=(1, 28, 28),
            num_classes=10,
            default_batch_size=100,
            optimizer=OptimizerSpec("sgd", lr=0.01, momentum=0.9, weight_decay=5e-4),
            data_format="mnist-idx",
            datasets=_MNIST,
            builders={"pytorch": f"{_TORCH_MNIST}:lenet"},
        ),
        WorkloadSpec(
            name="deepmnist",
            description="TensorFlow's Deep MNIST CNN (conv32-pool-conv64-pool-fc1024-dropout-fc10)",
            family="cnn",
            input_shape=(1, 28, 28),
            num_classes=10,
            default_batch_size=50,
            optimizer=OptimizerSpec("adam", lr=1e-4),
            data_format="mnist-idx",
            datasets=_MNIST,
            builders={"pytorch": f"{_TORCH_MNIST}:deep_mnist"},
        ),
        WorkloadSpec(
            name="cifar10-cnn",
            description="TensorFlow's CIFAR-10 CNN (2 x conv+pool+LRN, fc384, fc192, fc10)",
            family="cnn",
            input_shape=(3, 32, 32),
            num_classes=10,
            default_batch_size=64,
            optimizer=OptimizerSpec("sgd", lr=0.05, momentum=0.9),
            data_format="cifar10-python",
            datasets=("cifar10",),
            builders={"pytorch": f"{_TORCH_CIFAR}:cifar10_cnn"},
        ),
        WorkloadSpec(
            name="mlp-mnist",
            description="Multilayer perceptron (784-512-512-10, dropout 0.2), Keras' MNIST MLP",
            family="mlp",
            input_shape=(1, 28, 28),
            num_classes=10,
            default_batch_size=128,
            optimizer=OptimizerSpec("rmsprop", lr=1e-3),
            data_format="mnist-idx",
            datasets=_MNIST,
            builders={"pytorch": f"{_TORCH_MNIST}:mlp"},
        ),
    )
}


def get_workload(name: str) -> WorkloadSpec:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise unknown_name("workload", name, WORKLOADS) from None


def check_dataset(workload: WorkloadSpec, dataset: str | None) -> str:
    """The dataset a run uses: the one asked for, if the workload takes it, else its default."""
    if dataset is None:
        return workload.datasets[0]
    if dataset not in workload.datasets:
        raise ConfigError(
            f"workload {workload.name} does not train on dataset {dataset!r}",
            f"use --dataset {' or '.join(workload.datasets)}",
        )
    return dataset
