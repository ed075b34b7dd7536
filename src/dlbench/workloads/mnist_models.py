"""PyTorch models of the MNIST-sized workloads (28x28 grey images, 10 classes)."""

from __future__ import annotations

from torch import nn


def lenet(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Caffe's LeNet for MNIST: conv 20@5x5, pool, conv 50@5x5, pool, fc 500, relu, fc."""
    channels, height, width = input_shape
    flat = 50 * ((height - 4) // 2 - 4) // 2 * (((width - 4) // 2 - 4) // 2)
    return nn.Sequential(
        nn.Conv2d(channels, 20, kernel_size=5),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, kernel_size=5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 500),
        nn.ReLU(inplace=True),
        nn.Linear(500, num_classes),
    )


def deep_mnist(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """TensorFlow's "Deep MNIST for experts": two 5x5 'same' conv+pool, fc 1024, dropout 0.5."""
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (height // 4) * (width // 4), 1024),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(1024, num_classes),
    )


def mlp(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Keras' mnist_mlp example: 512-512 ReLU with dropout 0.2."""
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * height * width, 512),
        nn.ReLU(inplace=True),
        nn.Dropout(0.2),
        nn.Linear(512, 512),
        nn.ReLU(inplace=True),
        nn.Dropout(0.2),
        nn.Linear(512, num_classes),
    )
