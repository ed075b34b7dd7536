"""Datasets in their native on-disk formats, decoded to framework-free numpy arrays.

``--data synthetic`` makes no arrays here: the engine generates batches on the device so that
they add no input-pipeline cost. ``--data digits`` is scikit-learn's bundled digits, a real
dataset that exists on every machine. Any other value is a path read by the workload's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlbench.errors import DataError
from dlbench.registry import resolve

SYNTHETIC = "synthetic"
DIGITS = "digits"

# format -> (loader, probe). A probe checks presence and headers cheaply, before a run starts.
FORMATS: dict[str, tuple[str, str]] = {
    "mnist-idx": ("dlbench.datasets.idx:load_mnist", "dlbench.datasets.idx:probe_mnist"),
    "cifar10-python": (
        "dlbench.datasets.cifar:load_cifar10",
        "dlbench.datasets.cifar:probe_cifar10",
    ),
}

# Sizes of the real train/test sets, so that a synthetic "epoch" means the same work.
SYNTHETIC_SIZES: dict[str, tuple[int, int]] = {
    "mnist-idx": (60_000, 10_000),
    "cifar10-python": (50_000, 10_000),
}


@dataclass(frozen=True)
class ArrayData:
    """A dataset decoded to uint8 images (N, C, H, W) and int64 labels (N,)."""

    name: str
    source: str  # where it came from, for the stored config
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images on the 0-1 scale."""
        pixels = self.train_x.reshape(self.train_x.shape[0], self.train_x.shape[1], -1)
        mean = pixels.mean(axis=(0, 2), dtype=np.float64) / 255.0
        std = pixels.std(axis=(0, 2), dtype=np.float64) / 255.0
        return tuple(float(m) for m in mean), tuple(max(float(s), 1e-6) for s in std)


def check_shape(data: ArrayData, input_shape: tuple[int, int, int]) -> ArrayData:
    if data.train_x.shape[1:] != input_shape or data.test_x.shape[1:] != input_shape:
        raise DataError(
            f"{data.source}: images are {data.train_x.shape[1:]} (C, H, W), "
            f"the workload expects {input_shape}",
            "give a dataset of the workload's input size",
        )
    return data


def probe(data: str, data_format: str, dataset: str) -> None:
    """Fail fast, with the file and format named, if ``data`` cannot be read."""
    if data in (SYNTHETIC, DIGITS):
        return
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(
            f"data path {data} does not exist",
            "give a folder with the dataset files, or --data synthetic / --data digits",
        )
    resolve(_format(data_format)[1])(path, dataset)


def load(data: str, data_format: str, dataset: str, input_shape: tuple[int, int, int]) -> ArrayData:
    """Decode the real dataset that ``data`` names (not for ``synthetic``)."""
    if data == DIGITS:
        from dlbench.datasets.digits import load_digits

        return load_digits(input_shape)
    loaded = resolve(_format(data_format)[0])(Path(data).expanduser(), dataset)
    return check_shape(loaded, input_shape)


def _format(data_format: str) -> tuple[str, str]:
    try:
        return FORMATS[data_format]
    except KeyError:
        raise DataError(f"no reader for data format {data_format!r}") from None
