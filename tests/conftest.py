"""Shared fixtures: a fresh results database per test, and writers of tiny real-format data."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dlbench.store import Store

BIN = Path(sys.executable).parent


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results" / "dlbench.sqlite"
    monkeypatch.setenv("DLBENCH_DB", str(path))
    return path


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store(str(db_path))
    yield opened
    opened.close()


def cli_env(db_path: Path) -> dict[str, str]:
    env = dict(os.environ, DLBENCH_DB=str(db_path), COLUMNS="200", PYTHONUNBUFFERED="1")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def idx_bytes(array: np.ndarray) -> bytes:
    """An array of unsigned bytes in the IDX format: 0, 0, type 0x08, ndim, sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(
    folder: Path, n_train: int = 300, n_test: int = 100, gz: bool = False, seed: int = 0
) -> Path:
    """MNIST-format files whose images encode their label (so a model can learn them)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):  # a bright bar whose row is the label
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 250
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte" + (".gz" if gz else "")
            blob = idx_bytes(array)
            (folder / name).write_bytes(gzip.compress(blob) if gz else blob)
    return folder


def write_cifar(folder: Path, per_batch: int = 40, seed: int = 0) -> Path:
    """CIFAR-10 python batches, pickled the way the distribution is (dicts of bytes keys)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8),
            b"filenames": [f"img{i}.png".encode() for i in range(per_batch)],
        }
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    return folder
