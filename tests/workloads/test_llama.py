"""The llama workloads: the published models' sizes to the parameter, rotary embeddings,
grouped-query attention, a KV cache that decodes exactly what the whole sequence gives, FLOPs
against the standard count, the options they take and refuse, and a real run that learns."""

import math

import pytest
import torch

from dlbench.config import build_spec
from dlbench.engines.pytorch.flops import count_step
from dlbench.errors import ConfigError
from dlbench.registry import resolve
from dlbench.workloads import get_workload
from dlbench.workloads import llama_models as llama
from dlbench.workloads.llama_configs import LLAMA_CONFIGS

from conftest import call_main, one_line_error

# The model cards' counts (Hugging Face Hub: meta-llama/Llama-3.2-1B, -3B; Qwen/Qwen2.5-0.5B)
PUBLISHED = {
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "qwen2.5-0.5b": 494_032_768,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_preset_has_its_published_parameter_count(name):
    workload = get_workload(name)
    spec = build_spec(workload=name)
    with torch.device("meta"):
        model = resolve(workload.builders["pytorch"])(spec.input_shape, workload.num_classes)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]
    assert model.lm_head.weight is model.embed_tokens.weight  # all three tie their head
    config = LLAMA_CONFIGS[name]
    attention = model.layers[0].self_attn
    assert (attention.heads, attention.kv_heads) == (config.heads, config.kv_heads)
    assert (attention.q_proj.bias is not None) == (name == "qwen2.5-0.5b")


def test_the_small_llama_is_untied_and_takes_overrides():
    model = llama.llama((1, 32, 1), 1000, depth=2, width=128, heads=8, kv_heads=4)
    assert model.lm_head.weight is not model.embed_tokens.weight
    assert len(model.layers) == 2 and model.layers[0].self_attn.head_width == 16
    # a new width keeps Llama's 704 / 256 MLP ratio, rounded up to whole 64-wide columns
    assert model.layers[0].mlp.up_proj.out_features == 384
    assert LLAMA_CONFIGS["llama"].with_overrides(width=256).ffn == 704


def test_rotary_embeddings_make_attention_scores_depend_on_distance_only():
    cos, sin = llama.rotary_tables(8, 32, 10_000.0)
    q, k = torch.randn(8), torch.randn(8)

    def at(x: torch.Tensor, position: int) -> torch.Tensor:
        return llama.rotate(x.view(1, 1, 1, 8), cos[position], sin[position]).flatten()

    def score(m: int, n: int) -> float:
        return float(at(q, m) @ at(k, n))

    assert score(5, 2) == pytest.approx(score(20, 17), rel=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 3), rel=1e-3)
    assert torch.allclose(llama.rotate(q.view(1, 1, 1, 8), cos[0], sin[0]).flatten(), q)


def test_grouped_query_attention_is_each_kv_head_shared_by_its_query_heads(monkeypatch):
    q, k, v = torch.randn(2, 8, 5, 16), torch.randn(2, 2, 5, 16), torch.randn(2, 2, 5, 16)
    native = llama._attend(q, k, v, True, 4)
    monkeypatch.setattr(llama, "_NATIVE_GQA", False)
    repeated = llama._attend(q, k, v, True, 4)
    by_hand = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(4, dim=1), v.repeat_interleave(4, dim=1), is_causal=True
    )
    assert torch.allclose(native, by_hand, atol=1e-6) and torch.allclose(repeated, by_hand)


def test_a_position_never_sees_the_tokens_after_it():
    torch.manual_seed(0)
    model = llama.llama((1, 16, 1), 50, depth=2, width=64, heads=4, kv_heads=2).eval()
    tokens = torch.randint(0, 50, (1, 16))
    changed = tokens.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 50
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    assert torch.allclose(before[0, :10], after[0, :10], atol=1e-6)
    assert not torch.allclose(before[0, 10:], after[0, 10:])


def test_the_kv_cache_decodes_exactly_what_the_whole_sequence_gives():
    torch.manual_seed(0)
    model = llama.qwen2_5_0_5b(
        (1, 24, 1), 97, depth=2, width=64, heads=4, kv_heads=2
    ).eval()  # biases in q, k, v
    tokens = torch.randint(0, 97, (3, 20))
    cache = model.new_cache(batch=3, capacity=20)
    with torch.no_grad():
        whole = model(tokens)
        prefill = model(tokens[:, :12], cache)
        steps = [model(tokens[:, t : t + 1], cache) for t in range(12, 20)]
    assert cache.length == 20
    assert torch.allclose(prefill, whole[:, :12], atol=1e-5)
    assert torch.allclose(torch.cat(steps, dim=1), whole[:, 12:], atol=1e-5)
    config = model.config
    assert cache.nbytes == config.kv_cache_bytes(tokens=20, batch=3, bytes_per_value=4)
    assert cache.nbytes == 2 * 2 * 2 * 16 * 20 * 3 * 4  # 2 x layers x kv_heads x d x T x B x 4
    with pytest.raises(ValueError, match="holds 20 positions"):
        model(tokens[:, :1], cache)


def test_flops_counted_on_a_step_are_six_per_weight_and_token_plus_attention():
    """As gpt's: 6 FLOPs per weight of a matrix product per token, and 14 L d T per token for
    attention (the counter recomputes Q K^T in the backward). Grouped heads do not change
    attention's FLOPs: every query head still attends."""
    depth, width, seq_len, vocab, batch = 2, 128, 32, 300, 2
    model = llama.llama((1, seq_len, 1), vocab, depth=depth, width=width, heads=4, kv_heads=2)
    tokens = torch.randint(0, vocab, (batch, seq_len))

    def loss() -> torch.Tensor:
        logits = model(tokens)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens.flatten())

    counted, _ = count_step(model, loss)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert counted == (6 * weights + 14 * depth * width * seq_len) * batch * seq_len


def test_options_a_llama_takes_and_refuses(db_path, capsys):
    spec = build_spec(workload="llama", heads=8, kv_heads=2, width=128)
    assert spec.architecture == {"width": 128, "heads": 8, "kv_heads": 2}
    assert build_spec(workload="llama").run_key == build_spec(workload="llama").run_key
    cases = [
        (("run", "llama", "--heads", "3"), "--heads: --width 256 is not whole --heads 3"),
        (("run", "llama", "--kv-heads", "3"), "--kv-heads: --heads 4 cannot share --kv-heads 3"),
        (("run", "llama", "--width", "80", "--heads", "16"), "a head is 5 wide"),
        (("run", "gpt", "--heads", "4"), "--heads: gpt does not take --heads or --kv-heads"),
        (("run", "resnet18", "--kv-heads", "2"), "--kv-heads: resnet18 does not take"),
        (("run", "llama", "--kv-heads", "0"), "--kv-heads"),
    ]
    for args, expected in cases:
        assert expected in one_line_error(*call_main(capsys, *args)[:3:2])
    assert not db_path.exists()  # every case refused before a store was opened
    with pytest.raises(ConfigError, match="llama has no tensorflow model"):
        build_spec(workload="llama", framework="tensorflow")


@pytest.mark.slow
def test_a_small_llama_learns_the_standard_library(store):
    from dlbench.runner.benchmark import execute

    spec = build_spec(
        workload="llama", device="cpu", data="stdlib", depth=2, width=128, heads=4,
        kv_heads=2, seq_len=64, batch_size=16, steps=120, warmup=5, val_batches=10,
        lr=1e-3, interval=0.5,
    )  # fmt: skip
    store.create_run("r", "train", spec.model_dump(mode="json"))
    result = execute(spec, "r", store)
    assert result.status == "ok", result.error
    assert result.val_loss < 0.7 * math.log(256), result.val_loss
    assert result.tokens_per_s and result.model.flops_per_step and result.mfu
    assert result.model.params == sum(
        p.numel()
        for p in llama.llama((1, 64, 1), 256, depth=2, width=128, heads=4, kv_heads=2).parameters()
    )
