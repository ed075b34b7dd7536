"""The language models: GPT-2 small's size, FLOPs against the standard count, the attention
kernel recorded, tokens/s and perplexity, learning on the standard library's source, and the
options a language model takes or refuses."""

import json
import math

import pytest
import torch

from dlbench.config import build_spec
from dlbench.engines.pytorch.engine import TorchEngine
from dlbench.engines.pytorch.flops import count_step
from dlbench.errors import ConfigError
from dlbench.registry import resolve
from dlbench.store.database import Store
from dlbench.workloads import get_workload
from dlbench.workloads.language_models import gpt, heads_of, standard_train_flops

from conftest import call_main, one_line_error, run_dlbench


def test_gpt_defaults_to_gpt2_small_with_its_published_size():
    spec = build_spec(workload="gpt")
    assert (spec.seq_len, spec.num_classes, spec.batch_size) == (1024, None, 12)
    workload = get_workload("gpt")
    with torch.device("meta"):
        model = resolve(workload.builders["pytorch"])(spec.input_shape, workload.num_classes)
    # nanoGPT's GPT-2 124M: 124,439,808 with position embeddings (123.65 M without)
    assert sum(p.numel() for p in model.parameters()) == 124_439_808
    assert model.head.weight is model.wte.weight  # tied
    assert len(model.blocks) == 12 and model.blocks[0].attn.heads == 12
    assert (heads_of(32), heads_of(128), heads_of(1600)) == (1, 2, 25)


@pytest.mark.parametrize("depth,width,seq_len,vocab", [(2, 128, 64, 256), (3, 192, 96, 1000)])
def test_flops_counted_on_the_step_match_the_standard_transformer_count(
    depth, width, seq_len, vocab
):
    """FlopCounterMode on a real step against 6N + 12 L d T per token (Kaplan; PaLM;
    nanoGPT). They differ, exactly, by two known terms: the counter counts matrix products
    only (6 x biases and layer norms per token less) and the attention backward as 5
    products, recomputing Q K^T (14 L d T instead of 12)."""
    model = gpt((1, seq_len, 1), vocab, depth=depth, width=width)
    batch = 2
    tokens = torch.randint(0, vocab, (batch, seq_len))

    def loss() -> torch.Tensor:
        logits = model(tokens)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens.flatten())

    counted, backends = count_step(model, loss)
    params = sum(p.numel() for p in model.parameters())
    standard = standard_train_flops(params, seq_len, vocab, depth, width) * batch
    matmul_weights = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)
    )  # the tied head included: it is a product with the embedding table
    tokens_n = batch * seq_len
    assert counted == (6 * matmul_weights + 14 * depth * width * seq_len) * tokens_n
    not_products = params - seq_len * width - matmul_weights  # biases, layer norms
    assert counted - standard == (2 * depth * width * seq_len - 6 * not_products) * tokens_n
    assert abs(counted / standard - 1) < 0.03
    assert backends == ("flash (CPU)",)


def test_a_training_step_and_the_engine_record_flops_attention_and_betas():
    spec = build_spec(
        workload="param-transformer", device="cpu", depth=2, width=64, seq_len=32, batch_size=4
    )
    engine = TorchEngine()
    engine.setup(spec, get_workload("param-transformer"), None)
    stats = engine.model_stats()
    assert stats.attention_backend == "flash (CPU)" and stats.width == 64
    assert stats.input_shape == (1, 32, 1) and stats.num_classes == 256
    assert stats.flops_per_step and stats.flops_per_step > 0
    assert engine.optimizer.param_groups[0]["betas"] == (0.9, 0.95)
    # a synthetic epoch is OpenWebText's 9.0 G tokens in sequences of this run's length
    assert engine.steps_per_epoch == 8_823_811 * 1024 // 32 // 4
    tokens, targets = next(iter(engine.train_epoch()))
    assert tokens.shape == (4, 32) and tokens.dtype == torch.int64
    assert torch.equal(tokens[:, 1:], targets[:, :-1])  # targets are the next tokens
    engine.train_step((tokens, targets))
    first = engine.final_train_loss()
    assert first == pytest.approx(math.log(256), rel=0.1)  # untrained: near uniform


def test_options_a_language_model_refuses_and_those_it_takes(capsys):
    assert build_spec(workload="gpt", seq_len=128, vocab=500).input_shape == (1, 128, 1)
    assert build_spec(workload="gpt", seq_len=128, vocab=500).num_classes == 500
    cases = [
        (("run", "resnet18", "--seq-len", "64"), "--seq-len: resnet18 is not a language model"),
        (("run", "gpt", "--image-size", "64"), "--image-size: gpt reads token sequences"),
        (("run", "gpt", "--num-classes", "10"), "--num-classes: gpt predicts tokens"),
        (("run", "gpt", "--data", "digits"), "--data: gpt trains on text"),
        (("run", "lenet-mnist", "--data", "stdlib"), "--data stdlib is text"),
    ]
    for args, expected in cases:
        assert expected in one_line_error(*call_main(capsys, *args)[:3:2])
    with pytest.raises(ConfigError, match="--seq-len"):
        build_spec(workload="gpt", seq_len=0)


def test_run_keys_of_image_runs_are_unchanged_by_the_language_options():
    spec = build_spec(workload="lenet-mnist")
    dumped = spec.model_dump(mode="json")
    assert dumped["seq_len"] is None and dumped["vocab"] is None
    fields = {k: v for k, v in dumped.items() if k not in ("seq_len", "vocab")}
    from dlbench.config import RunSpec

    assert RunSpec(**fields).run_key == spec.run_key


@pytest.mark.slow
def test_gpt_learns_python_from_the_standard_library(db_path):
    """A short CPU run on --data stdlib: validation loss well below uniform (ln 256 = 5.55
    nats per byte), perplexity its exponential, tokens/s the sequences' speed x seq_len."""
    done = run_dlbench(
        db_path, "run", "gpt", "--device", "cpu", "--data", "stdlib", "--depth", "2",
        "--width", "128", "--seq-len", "64", "--batch-size", "16", "--steps", "150",
        "--warmup", "5", "--val-batches", "20", "--interval", "0.5", "--json", "-",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    run = Store(str(db_path)).list_runs()[0]
    result = run["result"]
    assert result["val_loss"] < 0.6 * math.log(256), result["val_loss"]
    assert result["perplexity"] == pytest.approx(math.exp(result["val_loss"]))
    assert result["accuracy"] > 0.2  # next-token accuracy; chance is under 1%
    assert result["tokens_per_s"] == pytest.approx(result["speed"]["mean_speed"] * 64)
    low, high = result["tokens_per_s_ci95"]
    assert low <= result["tokens_per_s"] <= high
    assert result["model"]["attention_backend"] == "flash (CPU)"
    assert run["dataset"] == "text" and run["config"]["seq_len"] == 64
    summary = json.loads(done.stdout)  # --json -: the summary says what was stored
    assert summary["tokens_per_s"] == pytest.approx(result["tokens_per_s"])
    assert summary["perplexity"] == pytest.approx(result["perplexity"])
