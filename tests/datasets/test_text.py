"""Text for the language models: the standard library's source split by file, UTF-8 files,
nanoGPT's uint16 .bin files and their folder, and bad text refused in one line."""

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from dlbench import datasets
from dlbench.datasets.text import (
    BYTE_VOCAB,
    TokenSplit,
    is_test_file,
    load_stdlib,
    load_text,
    stdlib_files,
)
from dlbench.errors import DataError
from dlbench.store.database import Store

from conftest import call_main, one_line_error

SHAPE = (1, 16, 1)  # a language model's input shape: 16 tokens


def test_sequences_are_windows_with_their_next_tokens():
    split = TokenSplit(np.arange(50, dtype=np.uint16), seq_len=16)
    assert len(split) == 3  # 49 next tokens exist: three whole windows of 16
    x, y = split.take([0, 2])
    assert x.dtype == np.int64 and x.shape == (2, 16)
    assert x[1, 0] == 32 and y[1, -1] == 48 and np.array_equal(x[:, 1:], y[:, :-1])


def test_stdlib_is_split_ninety_ten_by_file_and_the_same_every_time():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p.relative_to(root).as_posix() for p in stdlib_files()]
    assert len(files) > 500 and not any("site-packages" in f for f in files)
    held_out = [f for f in files if is_test_file(f)]
    assert 0.07 < len(held_out) / len(files) < 0.13
    data = load_stdlib(64)
    assert data.vocab == BYTE_VOCAB and data.num_classes == 256
    train_bytes = sum((root / f).stat().st_size for f in files if not is_test_file(f))
    assert len(data.train_tokens) == train_bytes  # whole files, each on one side only
    assert len(data.train_tokens) + len(data.test_tokens) == sum(
        (root / f).stat().st_size for f in files
    )
    assert bytes(data.test_tokens[:200]) == (root / held_out[0]).read_bytes()[:200]
    again = load_stdlib(64)
    assert np.array_equal(again.test_tokens, data.test_tokens)


def test_a_text_file_is_bytes_split_at_ninety_percent(tmp_path):
    text = ("héllo wörld, " * 40).encode()
    path = tmp_path / "tiny.txt"
    path.write_bytes(text)
    data = datasets.load(str(path), "text", "text", SHAPE)
    cut = len(text) * 9 // 10
    assert bytes(data.train_tokens) == text[:cut] and bytes(data.test_tokens) == text[cut:]
    assert data.num_classes == 256 and len(data.train) == (cut - 1) // 16


def test_nanogpt_bin_files_and_their_folder(tmp_path):
    ids = np.arange(1000, dtype=np.uint16) * 7
    (tmp_path / "train.bin").write_bytes(ids.tobytes())
    (tmp_path / "val.bin").write_bytes(ids[:100].tobytes())
    folder = load_text(tmp_path, "text", SHAPE)
    assert folder.vocab is None and folder.largest_id == 6993
    assert np.array_equal(folder.train_tokens, ids) and len(folder.test) == 6
    single = load_text(tmp_path / "train.bin", "text", SHAPE)
    assert len(single.train_tokens) == 900 and len(single.test_tokens) == 100
    datasets.check(str(tmp_path), "text", "text", SHAPE, 7000, 50257)
    with pytest.raises(DataError, match=r"token ids run up to 6993, beyond --vocab 5000"):
        datasets.check(str(tmp_path), "text", "text", SHAPE, 5000, 50257)


def test_bad_text_is_refused_in_one_line_before_a_run(capsys, tmp_path, db_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café ".encode("latin-1") * 100)
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"\x01\x02\x03")
    short = tmp_path / "short.txt"
    short.write_text("tiny")
    half = tmp_path / "half"
    half.mkdir()
    (half / "train.bin").write_bytes(b"\x00\x00" * 100)
    big_ids = tmp_path / "ids.bin"
    big_ids.write_bytes(np.full(400, 300, dtype=np.uint16).tobytes())
    cases = [
        (latin1, (), "not UTF-8 text"),
        (odd, (), "3 bytes is not a whole number of uint16 token ids"),
        (short, (), "fewer than one sequence of 16 + 1"),
        (half, (), "no val.bin in this folder"),
        (big_ids, ("--vocab", "256"), "token ids run up to 300, beyond --vocab 256"),
    ]
    for path, extra, expected in cases:
        code, _, err = call_main(
            capsys, "run", "gpt", "--seq-len", "16", "--data", str(path), "--device", "cpu",
            *extra,
        )  # fmt: skip
        assert expected in one_line_error(code, err), err
    assert not db_path.exists() or Store(str(db_path)).list_runs() == []  # nothing stored


def test_infer_refuses_a_language_model_in_one_line(capsys, tmp_path):
    code, _, err = call_main(
        capsys, "infer", "gpt", "--checkpoint", str(tmp_path / "x.pt"), "--images", str(tmp_path)
    )
    assert "dlbench infer predicts images; gpt is a language model" in one_line_error(code, err)
