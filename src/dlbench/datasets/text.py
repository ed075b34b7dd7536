"""Text for the language models, as token ids cut into sequences.

- ``--data stdlib``: the Python standard library's own source, on every machine that runs
  dlbench; byte-level tokens (vocabulary 256), split 90/10 by file (a file's place is fixed by
  a hash of its path, so the split does not depend on which files a Python has).
- ``--data FILE``: a UTF-8 text file, byte-level, the first 90% to train and the rest to test
  (as nanoGPT's character-level Shakespeare).
- ``--data FILE.bin``, or a folder holding nanoGPT's ``train.bin`` and ``val.bin``: uint16
  token ids (GPT-2's BPE in nanoGPT's preparation scripts); the vocabulary is ``--vocab``
  (default the model's, 50,257).

An item is a sequence: tokens ``[i*T, i*T + T)`` as input and the same shifted by one as
targets, for non-overlapping windows of T = ``--seq-len`` tokens.
"""

from __future__ import annotations

import stat
import sysconfig
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlbench.datasets import STDLIB
from dlbench.errors import DataError

BYTE_VOCAB = 256
MAX_TEXT_BYTES = 4 * 2**30  # a text read whole into memory; beyond, tokenized .bin files
TEST_EVERY = 10  # one file (or the last tenth of a file) in ten is held out
BIN_FILES = ("train.bin", "val.bin")  # nanoGPT's prepare.py
_EXPECTED = (
    "a UTF-8 text file, a .bin of uint16 token ids, or a folder with nanoGPT's "
    "train.bin and val.bin"
)


@dataclass(frozen=True)
class TokenSplit:
    """Non-overlapping windows of ``seq_len`` tokens, each with its next-token targets."""

    tokens: np.ndarray  # uint8 or uint16 ids, possibly memory-mapped
    seq_len: int

    def __len__(self) -> int:
        return max(0, (len(self.tokens) - 1) // self.seq_len)

    def take(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        length = self.seq_len
        windows = np.stack(
            [np.asarray(self.tokens[i * length : i * length + length + 1]) for i in indices]
        ).astype(np.int64)
        return windows[:, :-1], windows[:, 1:]


@dataclass(frozen=True)
class TokenData:
    """A text dataset as token ids, read by sequence."""

    name: str
    source: str
    train_tokens: np.ndarray
    test_tokens: np.ndarray
    seq_len: int
    vocab: int | None  # known for byte-level text (256); None: the run's --vocab decides

    @property
    def train(self) -> TokenSplit:
        return TokenSplit(self.train_tokens, self.seq_len)

    @property
    def test(self) -> TokenSplit:
        return TokenSplit(self.test_tokens, self.seq_len)

    @property
    def num_classes(self) -> int:
        return self.vocab or self.largest_id + 1

    @property
    def largest_id(self) -> int:
        return int(max(self.train_tokens.max(initial=0), self.test_tokens.max(initial=0)))

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return (0.0,), (1.0,)  # token ids are not normalised


def stdlib_files() -> list[Path]:
    """The standard library's .py files (no third-party packages), in a stable order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = (p for p in root.rglob("*.py") if "site-packages" not in p.relative_to(root).parts)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def is_test_file(relative: str) -> bool:
    return zlib.crc32(relative.encode()) % TEST_EVERY == 0


def load_stdlib(seq_len: int) -> TokenData:
    root = Path(sysconfig.get_paths()["stdlib"])
    train: list[bytes] = []
    test: list[bytes] = []
    for path in stdlib_files():
        (test if is_test_file(path.relative_to(root).as_posix()) else train).append(
            path.read_bytes()
        )
    source = (
        f"Python {sysconfig.get_python_version()} standard library ({len(train) + len(test)} files)"
    )
    return TokenData(
        STDLIB, source, _bytes(b"".join(train)), _bytes(b"".join(test)), seq_len, BYTE_VOCAB
    )


def _bytes(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8)


def load_text(path: Path, dataset: str, input_shape: tuple[int, int, int]) -> TokenData:
    """``--data PATH`` for a language model (``input_shape[1]`` is the sequence length)."""
    seq_len = input_shape[1]
    if path.is_dir():
        train, test = (_token_file(path / name) for name in BIN_FILES)
        return TokenData(path.name, str(path), train, test, seq_len, None)
    if path.suffix == ".bin":
        tokens = _token_file(path)
        cut = len(tokens) * (TEST_EVERY - 1) // TEST_EVERY
        return TokenData(path.stem, str(path), tokens[:cut], tokens[cut:], seq_len, None)
    _regular(path)
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise DataError(
            f"{path}: {path.stat().st_size / 2**30:.1f} GiB of text is more than this reads "
            f"whole ({MAX_TEXT_BYTES / 2**30:g} GiB)",
            "tokenize it into train.bin and val.bin (nanoGPT's prepare.py) and give the folder",
        )
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})",
            f"give {_EXPECTED}",
        ) from None
    cut = len(raw) * (TEST_EVERY - 1) // TEST_EVERY
    return TokenData(
        path.stem, str(path), _bytes(raw[:cut]), _bytes(raw[cut:]), seq_len, BYTE_VOCAB
    )


def _token_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} does not exist", f"give {_EXPECTED}")
    size = path.stat().st_size
    if size % 2:
        raise DataError(
            f"{path}: {size} bytes is not a whole number of uint16 token ids",
            "a .bin holds uint16 ids (nanoGPT's prepare.py writes them)",
        )
    if size == 0:
        return np.zeros(0, dtype=np.uint16)
    return np.memmap(path, dtype=np.uint16, mode="r")


def _regular(path: Path) -> None:
    """A device or a pipe (``/dev/zero``) would be read without end: files only."""
    if path.exists() and not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
        raise DataError(f"{path} is not a regular file", f"give {_EXPECTED}")


def probe_text(path: Path, dataset: str) -> None:
    """Presence and form, before a run: a file, or a folder with both .bin files."""
    _regular(path)
    if path.is_dir():
        missing = [name for name in BIN_FILES if not (path / name).is_file()]
        if missing:
            raise DataError(
                f"{path}: no {' or '.join(missing)} in this folder", f"give {_EXPECTED}"
            )
    elif path.suffix == ".bin" and path.stat().st_size % 2:
        _token_file(path)


def check_tokens(data: TokenData, vocab: int, given: bool) -> None:
    """Every token id must be below the vocabulary, and each split must hold a sequence."""
    for name, split in (("training", data.train), ("test", data.test)):
        if len(split) == 0:
            raise DataError(
                f"{data.source}: the {name} split holds {len(split.tokens)} tokens, fewer than "
                f"one sequence of {data.seq_len} + 1",
                "give more text, or a shorter --seq-len",
            )
    if data.largest_id >= vocab:
        where = f"--vocab {vocab}" if given else f"the model's vocabulary of {vocab}"
        raise DataError(
            f"{data.source}: token ids run up to {data.largest_id}, beyond {where}",
            f"give --vocab {data.largest_id + 1} or more",
        )
