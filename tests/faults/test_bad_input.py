"""Bad input is refused before anything is stored: one line naming what is wrong, exit 2."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
from fault_helpers import call_main, one_line_error

from dlbench.store.database import Store

from conftest import idx_bytes, write_cifar, write_mnist

RUN = ["run", "lenet-mnist", "--device", "cpu", "--steps", "12", "--warmup", "2"]


def _refused(capsys, db_path, *args):
    """The command's one error line; nothing was stored."""
    line = one_line_error(*call_main(capsys, *args)[::2])
    assert not db_path.exists() or Store(str(db_path)).count_runs() == 0
    return line


def _mnist(tmp_path):
    return write_mnist(tmp_path / "mnist", n_train=40, n_test=20)


def _rewrite(folder, name, blob):
    (folder / name).write_bytes(blob)


BROKEN_MNIST = {
    "truncated": lambda f: _rewrite(
        f, "train-images-idx3-ubyte", (f / "train-images-idx3-ubyte").read_bytes()[:-100]
    ),
    "more images than labels": lambda f: _rewrite(
        f, "train-images-idx3-ubyte", idx_bytes(np.zeros((50, 28, 28), np.uint8))
    ),
    "no images": lambda f: (
        _rewrite(f, "train-images-idx3-ubyte", idx_bytes(np.zeros((0, 28, 28), np.uint8))),
        _rewrite(f, "train-labels-idx1-ubyte", idx_bytes(np.zeros((0,), np.uint8))),
    ),
    "5x5 images": lambda f: _rewrite(
        f, "train-images-idx3-ubyte", idx_bytes(np.zeros((40, 5, 5), np.uint8))
    ),
    "a header claiming 4,294,967,295 images": lambda f: _rewrite(
        f,
        "train-images-idx3-ubyte",
        bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 28, 28) + b"\0" * 784,
    ),
    "labels up to 250": lambda f: _rewrite(
        f, "train-labels-idx1-ubyte", idx_bytes(np.full((40,), 250, np.uint8))
    ),
    "a bad magic number": lambda f: _rewrite(f, "t10k-labels-idx1-ubyte", b"GIF89a" * 4),
}


@pytest.mark.parametrize("damage", BROKEN_MNIST, ids=str)
def test_broken_mnist_files_are_refused_before_the_run(db_path, tmp_path, capsys, damage):
    folder = _mnist(tmp_path)
    BROKEN_MNIST[damage](folder)
    line = _refused(capsys, db_path, *RUN, "--data", str(folder))
    assert str(folder) in line


def test_a_corrupt_gzip_is_refused(db_path, tmp_path, capsys):
    folder = write_mnist(tmp_path / "gz", n_train=40, n_test=20, gz=True)
    blob = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(blob[:20] + b"\xff" * 40 + blob[60:])
    line = _refused(capsys, db_path, *RUN, "--data", str(folder))
    assert "train-images-idx3-ubyte.gz" in line


def test_labels_beyond_num_classes_name_the_option(db_path, tmp_path, capsys):
    folder = _mnist(tmp_path)
    line = _refused(capsys, db_path, *RUN, "--data", str(folder), "--num-classes", "5")
    assert "beyond --num-classes 5" in line


def test_a_truncated_cifar_batch_is_refused(db_path, tmp_path, capsys):
    folder = write_cifar(tmp_path / "cifar", per_batch=20)
    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(blob[: len(blob) // 2])
    line = _refused(
        capsys,
        db_path,
        "run",
        "cifar10-cnn",
        "--device",
        "cpu",
        "--steps",
        "12",
        "--data",
        str(folder),
    )
    assert "cifar" in line


@pytest.mark.parametrize(
    "option",
    [
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["--timeout", "-1"],
        ["--steps", "1e26"],
        ["--steps", "10000000000"],
        ["--interval", "nan"],
        ["--lr", "inf"],
        ["--batch", "0"],
    ],
    ids=" ".join,
)
def test_absurd_numbers_are_refused(db_path, capsys, option):
    _refused(capsys, db_path, "run", "lenet-mnist", "--device", "cpu", *option)


def test_outputs_into_missing_folders_are_refused_before_the_run(db_path, tmp_path, capsys):
    missing = tmp_path / "no" / "such"
    line = _refused(capsys, db_path, *RUN, "--checkpoint", str(missing / "w.pt"))
    assert (
        line == f"error: --checkpoint: {missing} does not exist (give a path in an existing folder)"
    )
    line = _refused(capsys, db_path, *RUN, "--json", str(missing / "r.json"))
    assert line.startswith(f"error: --json: {missing} does not exist")


def test_a_sweep_whose_results_folder_cannot_exist_is_refused(db_path, tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: s\nresults: /dev/null/x\nbase: {workload: lenet-mnist, device: cpu, steps: 12}\n"
        "matrix: {batch_size: [8, 16]}\n"
    )
    line = _refused(capsys, db_path, "sweep", str(sweep))
    assert "results: cannot make the folder /dev/null/x" in line


def test_a_yaml_alias_bomb_is_refused(db_path, tmp_path, capsys):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        levels.append(f"a{i}: &a{i} [{refs}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("name: bomb\n" + "\n".join(levels) + "\nbase: {workload: lenet-mnist}\n")
    line = _refused(capsys, db_path, "sweep", str(bomb))
    assert "expands to more than 100,000 values through its aliases" in line


def test_aliases_of_ordinary_size_still_work(tmp_path):
    from dlbench.sweep.file import load

    sweep = tmp_path / "ok.yaml"
    sweep.write_text(
        "name: ok\nbase: &base {workload: lenet-mnist, device: cpu, steps: 12}\n"
        "matrix: {batch_size: [8, 16]}\n"
    )
    assert len(load(sweep).runs) == 2


def test_infer_says_a_pickle_with_code_is_not_a_weights_checkpoint(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "x", "run": print}, protocol=2))  # code to load
    (tmp_path / "images").mkdir()
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "images" / "a.png")
    code, _out, err = call_main(
        capsys,
        "infer",
        "lenet-mnist",
        "--checkpoint",
        str(evil),
        "--images",
        str(tmp_path / "images"),
        "--device",
        "cpu",
    )
    line = one_line_error(code, err)
    assert "is not a plain weights checkpoint" in line
    assert "weights_only" not in line


def test_an_image_folder_with_a_file_that_is_not_an_image_is_refused(db_path, tmp_path, capsys):
    from conftest import write_image_folder

    folder = write_image_folder(tmp_path / "images")
    broken = sorted(folder.rglob("*.png"))[0]
    broken.write_bytes(b"not a png at all")
    line = _refused(
        capsys,
        db_path,
        "run",
        "resnet18",
        "--device",
        "cpu",
        "--steps",
        "12",
        "--image-size",
        "32",
        "--data",
        str(folder),
        "--dataset",
        "imagefolder",
    )
    assert "cannot decode this image" in line
