"""A real OpenAI-compatible server for serve-bench's tests and benchmark: Hugging Face
transformers' own ``transformers serve``, on a tiny random Llama written here with a byte-level
BPE tokenizer trained here (nothing is downloaded). Its EOS is unset, so every request
generates exactly ``max_tokens``; ``--max-model-len`` bounds prompt and answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MAX_MODEL_LEN = 256
START_TIMEOUT_S = 180


def write_tiny_llama(folder: Path) -> Path:
    """A 2-layer Llama (GQA, 4 heads over 2 KV heads) and its tokenizer, saved in ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(["the quick brown fox jumps over the lazy dog " * 20], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    fast.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_MODEL_LEN,
        bos_token_id=0,
        eos_token_id=None,
    )
    torch.manual_seed(0)  # the same weights every time: the same answers, chunk for chunk
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=None, do_sample=False)
    model.save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT/v1
    model: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def transformers_server(model_dir: Path, log: Path) -> Iterator[Served]:
    """``transformers serve`` on a free port, ready (it lists the model) when this yields."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "transformers"), "serve", str(model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
        "--max-model-len", str(MAX_MODEL_LEN), "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(log.parent / "hf-home")}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    served = Served(f"http://127.0.0.1:{port}/v1", str(model_dir), process, log)
    try:
        _wait_ready(served)
        yield served
    finally:
        stop(served)


def stop(served: Served) -> None:
    if served.process.poll() is None:
        os.killpg(served.process.pid, signal.SIGKILL)
    served.process.wait(timeout=30)


def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(f"transformers serve exited: {served.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{served.url}/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"transformers serve not ready in {START_TIMEOUT_S} s")
