"""Shared fixtures: a fresh results database per test, and writers of tiny real-format data."""

from __future__ import annotations

import glob
import gzip
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Under pytest-xdist the workers share the machine: each gets its share of the CPUs as compute
# threads, for itself and the runs it starts. More would oversubscribe the cores, where
# OpenMP's spinning threads slow a training step tenfold. Set before numpy and torch load.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = len(os.sched_getaffinity(0)) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, str(max(1, _share)))

# Commands print as they would to a wide terminal, whether pytest has one or not (an xdist
# worker has none): a table's cells stay whole and a path on one line. Set before dlbench's
# consoles are made.
os.environ["COLUMNS"] = "200"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from dlbench.store.database import Store  # noqa: E402

BIN = Path(sys.executable).parent

# Hypothesis keeps no example database, and its caches go to a temporary folder: the suite
# writes nothing into the working tree.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "dlbench-hypothesis")
)
settings.register_profile("dlbench", database=None)
settings.load_profile("dlbench")


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


def run_dlbench(
    db_path: Path,
    *args: str,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``dlbench ARGS`` from a fresh process, on the test's database."""
    return subprocess.run(
        ["dlbench", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(db_path),
        timeout=timeout,
        cwd=cwd,
    )


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


def write_image_folder(
    root: Path, classes: int = 3, per_class: int = 6, split: bool = True
) -> Path:
    """PNG and JPEG images of different sizes in the ImageFolder layout, one colour per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    splits = ("train", "val") if split else ("",)
    for part in splits:
        for c in range(classes):
            folder = root / part / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class if part != "val" else 2):
                size = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
                colour = np.zeros((size[1], size[0], 3), dtype=np.uint8)
                colour[..., c % 3] = 200
                noise = rng.integers(0, 40, colour.shape, dtype=np.uint8)
                suffix = ".png" if i % 2 else ".jpg"
                Image.fromarray(colour + noise).save(folder / f"img{i}{suffix}")
    return root


def write_imagenet32(root: Path, batches: int = 2, per_batch: int = 30, side: int = 32) -> Path:
    """Downsampled-ImageNet npz batches: data N x 3*S*S uint8, labels 1-based."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in [f"train_data_batch_{i}" for i in range(1, batches + 1)] + ["val_data"]:
        np.savez(
            root / f"{name}.npz",
            data=rng.integers(0, 256, (per_batch, 3 * side * side)).astype(np.uint8),
            labels=rng.integers(1, 1001, per_batch),
        )
    return root


def write_coco(root: Path, images: int = 4, size: int = 96) -> Path:
    """A COCO-format detection set (train/ and val/ with annotations.json): squares to find."""
    import json

    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        entries, annotations = [], []
        for i in range(images):
            pixels = rng.integers(0, 120, (size, size + 20, 3), dtype=np.uint8)
            x, y = int(rng.integers(0, size - 30)), int(rng.integers(0, size - 30))
            pixels[y : y + 24, x : x + 24] = (250, 30, 30)
            Image.fromarray(pixels).save(folder / f"{i}.jpg")
            entries.append({"id": i, "file_name": f"{i}.jpg", "width": size + 20, "height": size})
            annotations.append(
                {"id": i, "image_id": i, "category_id": 7, "bbox": [x, y, 24, 24], "iscrowd": 0}
            )
        annotations.append(
            {"id": 99, "image_id": 0, "category_id": 7, "bbox": [0, 0, 5, 5], "iscrowd": 1}
        )
        content = {
            "images": entries,
            "annotations": annotations,
            "categories": [{"id": 7, "name": "square"}],
        }
        (folder / "annotations.json").write_text(json.dumps(content))
    return root


# -- PostgreSQL: the store tests run against SQLite and a real server started here ----------
def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found); .ci/run installs it")
    root = Path(tempfile.mkdtemp(prefix="dlbench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=100"
    subprocess.run(
        _as_postgres(
            [pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o", options, "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def _create_database(server: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, db_path: Path) -> str:
    """A fresh, empty results database of each kind."""
    if request.param == "sqlite":
        return str(db_path)
    return _create_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def backend_store(backend_url: str) -> Iterator[Store]:
    opened = Store(backend_url)
    yield opened
    opened.close()


def call_main(capsys: Any, *args: str) -> tuple[int, str, str]:
    """``dlbench ARGS`` through the console entry point, in this process: (exit code, stdout,
    stderr). Faster than a fresh process for commands that fail before any run starts."""
    import signal
    import sys

    from dlbench.cli import common, main

    argv = sys.argv
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    sys.argv = ["dlbench", *args]
    common.state["debug"] = False
    code: Any = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err


def dlbench_here(capsys: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``dlbench ARGS`` in this process, shaped as ``run_dlbench`` returns it: for commands
    that start no run (they read, answer or refuse), without a fresh interpreter's imports. The
    database is the test's (``db_path`` sets DLBENCH_DB)."""
    code, out, err = call_main(capsys, *args)
    return subprocess.CompletedProcess(["dlbench", *args], code, out, err)


def one_line_error(code: int, err: str) -> str:
    """The single error line of a refused command (asserting there is exactly one)."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def wait_for(check: Any, timeout_s: float = 120, every_s: float = 0.1) -> Any:
    """Poll ``check`` until it returns something true (bounded): tests wait on conditions,
    never on fixed sleeps."""
    import sqlite3
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except sqlite3.OperationalError:
            found = None  # the database is being created
        if found:
            return found
        time.sleep(every_s)
    raise AssertionError(f"not reached in {timeout_s} s: {check}")
