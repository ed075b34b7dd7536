"""dlbench generate: greedy decoding with a KV cache gives exactly the tokens a model without
one gives, the same at every request; its clock readings become the run's per-token figures;
a real run is stored with them; bad input is one line and stores nothing."""

import itertools
import json

import pytest
import torch

from dlbench.engines.pytorch.generation import greedy
from dlbench.store.database import Store
from dlbench.workloads import llama_models as llama

from conftest import call_main, dlbench_here, one_line_error, run_dlbench


def _small() -> llama.Llama:
    torch.manual_seed(0)
    return llama.llama((1, 48, 1), 97, depth=2, width=64, heads=4, kv_heads=2).eval()


def _small_gpt() -> torch.nn.Module:
    from dlbench.workloads.language_models import gpt

    torch.manual_seed(0)
    return gpt((1, 48, 1), 97, depth=2, width=128).eval()  # two 64-wide heads


@pytest.mark.parametrize("make", [_small, _small_gpt], ids=["llama", "gpt"])
def test_greedy_with_a_cache_gives_the_tokens_of_a_model_without_one(make):
    model = make()
    prompt = torch.randint(0, 97, (3, 10), generator=torch.Generator().manual_seed(1))
    tokens, times = greedy(model, prompt, 12, sync=lambda: None)
    assert tokens.shape == (3, 12) and times.output_tokens == 12 and times.batch == 3
    sequence = prompt
    with torch.no_grad():
        for _ in range(12):  # the whole sequence again at every token, no cache
            following = model(sequence)[:, -1].argmax(dim=-1)
            sequence = torch.cat((sequence, following[:, None]), dim=1)
    assert torch.equal(tokens, sequence[:, 10:])
    again, _ = greedy(model, prompt, 12, sync=lambda: None)
    assert torch.equal(tokens, again)


def test_each_token_is_timed_when_it_is_ready():
    ticks = itertools.count(100.0, 0.5)  # the clock reads 100, 100.5, 101, ...
    synced: list[int] = []
    _, times = greedy(_small(), torch.zeros(1, 4, dtype=torch.long), 5,
                      sync=lambda: synced.append(1), clock=lambda: next(ticks))  # fmt: skip
    assert times.submitted_s == 100.0
    assert times.token_ready_s == (100.5, 101.0, 101.5, 102.0, 102.5)
    assert len(synced) == 1 + 5  # before the request, and after every token
    assert times.ttft_s == 0.5 and times.tpot_s == 0.5 and times.prompt_tokens == 4


SMALL = ["--depth", "2", "--width", "64", "--heads", "4", "--kv-heads", "2", "--vocab", "256",
         "--seq-len", "64", "--device", "cpu"]  # fmt: skip


@pytest.mark.slow
def test_a_generation_run_is_stored_with_its_per_token_figures(db_path, capsys):
    done = run_dlbench(
        db_path, "generate", "llama", *SMALL, "--prompt-len", "16", "--gen-len", "8",
        "--batch-size", "2", "--requests", "5", "--warmup", "1", "--interval", "0.2",
        "--repeat", "2", "--json", "-",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = json.loads(done.stdout)["runs"]
    # two runs, each its own process: the same seed, the same greedy tokens
    assert first["generation"]["tokens_digest"] == second["generation"]["tokens_digest"]
    summary = first
    generation = summary["generation"]
    assert summary["kind"] == "generate" and summary["status"] == "ok"
    assert summary["timed_steps"] == 5 and generation["requests"] == 5
    assert generation["deterministic"] is True
    assert (generation["prompt_len"], generation["gen_len"], generation["batch"]) == (16, 8, 2)
    # 2 x layers x kv_heads x head width x tokens x batch x 4 bytes (fp32)
    assert generation["kv_cache_bytes"] == 2 * 2 * 2 * 16 * (16 + 8) * 2 * 4
    ttft, e2e = generation["ttft_s"]["mean"], generation["e2e_s"]["mean"]
    assert 0 < ttft < e2e and generation["tpot_s"]["p99"] >= generation["tpot_s"]["p50"]
    assert generation["decode_tokens_per_s"]["mean"] > 0 and summary["mfu"] is None
    assert summary["mean_step_time_s"] == pytest.approx(e2e, rel=0.2)  # a step is a request
    rows = Store(str(db_path)).list_runs()
    assert len(rows) == 2 and all(r["config"]["gen_len"] == 8 for r in rows)
    assert all(r["kind"] == "generate" and r["quality_verdict"] for r in rows)
    shown = dlbench_here(capsys, "show", summary["run_id"])
    assert "time to first token (ms)" in shown.stdout and "decode (tokens/s)" in shown.stdout
    assert "the same tokens at every request" in shown.stdout


def test_bad_generation_options_are_one_line_and_store_nothing(db_path, capsys):
    cases = [
        (("generate", "llama", "--gen-len", "0"), "--gen-len: Input should be greater than 0"),
        (("generate", "llama", "--seq-len", "64", "--prompt-len", "60", "--gen-len", "8"),
         "--prompt-len 60 + --gen-len 8 is past the model's context of 64 tokens"),
        (("generate", "resnet18"), "resnet18 keeps no KV cache to generate with"),
        (("generate", "gpt", "--framework", "tensorflow"), "dlbench generate runs on pytorch"),
        (("generate", "llama-9b"), "unknown workload 'llama-9b'"),
        (("generate", "llama", "--requests", "0"), "--requests"),
        (("run", "llama", "--gen-len", "8"), "No such option: --gen-len"),
    ]  # fmt: skip
    for args, expected in cases:
        assert expected in one_line_error(*call_main(capsys, *args)[:3:2]), args
    assert not db_path.exists()


@pytest.mark.slow
def test_a_compiled_model_generates_the_eager_tokens():
    model = _small()
    prompt = torch.randint(0, 97, (2, 10), generator=torch.Generator().manual_seed(2))
    eager, _ = greedy(model, prompt, 6, sync=lambda: None)
    compiled, times = greedy(model, prompt, 6, sync=lambda: None, forward=torch.compile(model))
    assert torch.equal(eager, compiled) and times.output_tokens == 6
