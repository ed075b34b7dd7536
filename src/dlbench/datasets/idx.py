"""MNIST and Fashion-MNIST in the IDX format (raw or gzipped), as distributed.

The format: two zero bytes, a type byte (0x08 = unsigned byte), a dimension count, then one
big-endian uint32 per dimension, then the data. Images are 3-D (N, 28, 28), labels 1-D (N,).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from dlbench.datasets import ArrayData
from dlbench.errors import DataError

_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
# torchvision keeps the raw files in <root>/<Class>/raw.
_SUBFOLDERS = {"mnist": ("", "raw", "MNIST/raw"), "fashion-mnist": ("", "raw", "FashionMNIST/raw")}
_UBYTE = 0x08
_EXPECTED = "MNIST IDX format (e.g. train-images-idx3-ubyte[.gz] from the MNIST distribution)"


def find_files(root: Path, dataset: str) -> dict[str, Path]:
    """The four IDX files under ``root`` (or its torchvision-style raw folder)."""
    for sub in _SUBFOLDERS.get(dataset, ("",)):
        folder = root / sub if sub else root
        found = {key: _find(folder, stem) for key, stem in _FILES.items()}
        if all(found.values()):
            return {key: path for key, path in found.items() if path is not None}
    missing = ", ".join(f"{stem}[.gz]" for stem in _FILES.values())
    raise DataError(
        f"no {dataset} IDX files in {root}: expected {missing}",
        "give the folder that holds the four MNIST-format files",
    )


def _find(folder: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")  # some mirrors name them train-images.idx3-ubyte
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


MAX_IDX_BYTES = 2**30  # MNIST's largest file is 47 MB; more, uncompressed, is a gzip bomb


def _open(path: Path) -> bytes:
    try:
        if path.suffix != ".gz":
            return path.read_bytes()
        with gzip.open(path, "rb") as handle:
            raw = handle.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc}); expected {_EXPECTED}") from exc
    if len(raw) > MAX_IDX_BYTES:
        raise DataError(f"{path}: uncompresses to more than 1 GiB; expected {_EXPECTED}")
    return raw


def _header(path: Path, head: bytes, ndim: int) -> tuple[int, ...]:
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number); expected {_EXPECTED}")
    if head[2] != _UBYTE or head[3] != ndim:
        raise DataError(
            f"{path}: IDX type 0x{head[2]:02x} with {head[3]} dimensions, "
            f"expected unsigned bytes (0x08) with {ndim}; expected {_EXPECTED}"
        )
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header; expected {_EXPECTED}")
    return struct.unpack(f">{ndim}I", head[4 : 4 + 4 * ndim])


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes with ``ndim`` dimensions, checking its length."""
    blob = _open(path)
    dims = _header(path, blob, ndim)
    start, expected = 4 + 4 * ndim, int(np.prod(dims))
    if len(blob) - start != expected:
        raise DataError(
            f"{path}: header says {'x'.join(map(str, dims))} = {expected} bytes of data, "
            f"the file holds {len(blob) - start}; the file is truncated or corrupt"
        )
    # A writable copy: torch refuses to share memory with a read-only buffer.
    return np.frombuffer(blob, dtype=np.uint8, offset=start).reshape(dims).copy()


def probe_mnist(root: Path, dataset: str) -> None:
    """Check that the four files exist and their headers are IDX; reads a few bytes each."""
    for key, path in find_files(root, dataset).items():
        ndim = 3 if key.endswith("_x") else 1
        try:
            with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as handle:
                head = handle.read(4 + 4 * ndim)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: cannot read ({exc}); expected {_EXPECTED}") from exc
        _header(path, head, ndim)


def load_mnist(root: Path, dataset: str, input_shape: object = None) -> ArrayData:
    files = find_files(root, dataset)
    arrays = {key: read_idx(path, 3 if key.endswith("_x") else 1) for key, path in files.items()}
    for split in ("train", "test"):
        n_x, n_y = len(arrays[f"{split}_x"]), len(arrays[f"{split}_y"])
        if n_x != n_y:
            raise DataError(
                f"{files[split + '_x']} has {n_x} images but {files[split + '_y']} "
                f"has {n_y} labels; the files do not belong together"
            )
    return ArrayData(
        name=dataset,
        source=str(root),
        train_x=arrays["train_x"][:, None, :, :],
        train_y=arrays["train_y"].astype(np.int64),
        test_x=arrays["test_x"][:, None, :, :],
        test_y=arrays["test_y"].astype(np.int64),
    )
