"""CIFAR-10 "python version" batches (data_batch_1..5, test_batch), as distributed.

Each batch is a pickled dict with b"data" (10000 x 3072 uint8, channel-major rows) and
b"labels". Pickle can run code, so batches are read with an unpickler that admits only what
numpy arrays are rebuilt from: a file that asks for anything else is rejected, not executed.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.datasets import ArrayData
from dlbench.errors import DataError

_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST = "test_batch"
_EXPECTED = "CIFAR-10 python batch (a pickled dict with b'data' N x 3072 uint8 and b'labels')"
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),  # numpy's pickles at protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes pickled by Python 3 at protocol 2
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def find_folder(root: Path) -> Path:
    for folder in (root, root / "cifar-10-batches-py"):
        if all((folder / name).is_file() for name in (*_TRAIN, _TEST)):
            return folder
    raise DataError(
        f"no CIFAR-10 batches in {root}: expected {', '.join(_TRAIN)} and {_TEST}",
        "give the cifar-10-batches-py folder of the CIFAR-10 python distribution",
    )


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as handle:
            batch = _ArraysOnly(handle, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: cannot read ({exc}); expected a {_EXPECTED}") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: no b'data'/b'labels' entries; expected a {_EXPECTED}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: data is {data.dtype} {data.shape}; expected a {_EXPECTED}")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def probe_cifar10(root: Path, dataset: str) -> None:
    """Check that every batch file exists and starts like a pickle."""
    folder = find_folder(root)
    for name in (*_TRAIN, _TEST):
        with (folder / name).open("rb") as handle:
            if handle.read(1) != b"\x80":
                raise DataError(f"{folder / name}: not a pickle file; expected a {_EXPECTED}")


def load_cifar10(root: Path, dataset: str, input_shape: object = None) -> ArrayData:
    folder = find_folder(root)
    train = [read_batch(folder / name) for name in _TRAIN]
    return ArrayData.from_batches(dataset, str(folder), train, read_batch(folder / _TEST))
