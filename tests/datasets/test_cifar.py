import os
import pickle

import numpy as np
import pytest

from dlbench import datasets
from dlbench.datasets.cifar import load_cifar10
from dlbench.errors import DataError

from conftest import write_cifar


def test_loads_the_python_batches(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", per_batch=12)
    data = load_cifar10(tmp_path, "cifar10")
    assert data.train_x.shape == (60, 3, 32, 32) and data.test_x.shape == (12, 3, 32, 32)
    assert data.train_y.dtype == np.int64


def test_channel_major_rows_become_chw(tmp_path):
    write_cifar(tmp_path, per_batch=2)
    with (tmp_path / "test_batch").open("rb") as handle:
        raw = pickle.load(handle, encoding="bytes")[b"data"]
    data = load_cifar10(tmp_path, "cifar10")
    np.testing.assert_array_equal(data.test_x[0, 1].ravel(), raw[0, 1024:2048])  # green plane


def test_a_pickle_that_runs_code_is_refused_not_executed(tmp_path):
    write_cifar(tmp_path, per_batch=2)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(DataError, match="data_batch_3: cannot read .*refusing to load"):
        load_cifar10(tmp_path, "cifar10")
    assert not marker.exists()


def test_wrong_shape_is_named(tmp_path):
    write_cifar(tmp_path, per_batch=2)
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: data is uint8 \(2, 100\)"):
        load_cifar10(tmp_path, "cifar10")


def test_probe_rejects_a_file_that_is_not_a_pickle(tmp_path):
    write_cifar(tmp_path, per_batch=2)
    (tmp_path / "data_batch_1").write_text("hello")
    with pytest.raises(DataError, match="data_batch_1: not a pickle file"):
        datasets.probe(str(tmp_path), "cifar10-python", "cifar10")


def test_probe_names_a_missing_path():
    with pytest.raises(DataError, match="does not exist"):
        datasets.probe("/no/such/folder", "cifar10-python", "cifar10")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_pickled_at_any_protocol_load(tmp_path, protocol):
    write_cifar(tmp_path, per_batch=3)
    batch = {b"data": np.ones((3, 3072), np.uint8), b"labels": [1, 2, 3]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=protocol))
    assert load_cifar10(tmp_path, "cifar10").test_y.tolist() == [1, 2, 3]
