import gzip

import numpy as np
import pytest

from dlbench import datasets
from dlbench.datasets.idx import load_mnist, read_idx
from dlbench.errors import DataError

from conftest import idx_bytes, write_mnist


@pytest.mark.parametrize("gz", [False, True])
def test_loads_raw_and_gzipped_idx(tmp_path, gz):
    write_mnist(tmp_path, n_train=30, n_test=10, gz=gz)
    data = load_mnist(tmp_path, "mnist")
    assert data.train_x.shape == (30, 1, 28, 28) and data.train_x.dtype == np.uint8
    assert data.test_x.shape == (10, 1, 28, 28)
    assert data.train_y.dtype == np.int64 and set(data.train_y) <= set(range(10))


def test_reads_what_was_written(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x").write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(tmp_path / "x", 3), array)


def test_finds_torchvision_layout(tmp_path):
    write_mnist(tmp_path / "FashionMNIST" / "raw", n_train=20, n_test=10)
    assert len(load_mnist(tmp_path, "fashion-mnist").train_y) == 20


def test_missing_files_name_what_is_expected(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path, "mnist")


def test_truncated_file_is_named(tmp_path):
    write_mnist(tmp_path, n_train=20, n_test=10)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*truncated or corrupt"):
        load_mnist(tmp_path, "mnist")


def test_bad_magic_is_not_an_idx_file(tmp_path):
    write_mnist(tmp_path, n_train=20, n_test=10)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: not an IDX file"):
        datasets.probe(str(tmp_path), "mnist-idx", "mnist")


def test_corrupt_gzip_is_named(tmp_path):
    write_mnist(tmp_path, n_train=20, n_test=10, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x01")[:12])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: cannot read"):
        load_mnist(tmp_path, "mnist")


def test_images_and_labels_must_agree(tmp_path):
    write_mnist(tmp_path, n_train=20, n_test=10)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    with pytest.raises(DataError, match="20 images but .* 19 labels"):
        load_mnist(tmp_path, "mnist")


def test_wrong_image_size_for_the_workload(tmp_path):
    write_mnist(tmp_path, n_train=20, n_test=10)
    with pytest.raises(DataError, match=r"workload expects \(3, 32, 32\)"):
        datasets.load(str(tmp_path), "mnist-idx", "mnist", (3, 32, 32))
