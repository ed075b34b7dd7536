"""The largest-batch search: exact on a known limit, and real probes under a memory cap."""

import json
import math

import pytest

from dlbench.errors import ConfigError, DlbenchError
from dlbench.tools.maxbatch import MaxBatch, Probe, parse_bytes, search

from conftest import run_dlbench


def _limit_at(largest):
    def probe(batch):
        return Probe(batch, "ok" if batch <= largest else "oom", peak_memory_bytes=batch * 10)

    return probe


@pytest.mark.parametrize("largest", [1, 2, 37, 64, 65, 1000])
@pytest.mark.parametrize("start", [1, 8, 64, 4096])
def test_search_finds_the_exact_limit_from_any_start(largest, start):
    found, probes, capped = search(_limit_at(largest), start, limit=65_536)
    assert found == largest and not capped
    tried = {p.batch_size: p.status for p in probes}
    assert tried[largest] == "ok" and tried[largest + 1] == "oom"  # both sides were probed
    assert len(probes) <= 2 * 17  # logarithmic, never a linear scan


@pytest.mark.parametrize("largest", [3567, 8, 100, 65_535])
def test_a_granularity_answers_on_its_multiples_in_about_2_log2_probes(largest):
    found, probes, _ = search(_limit_at(largest), 64, limit=65_536, granularity=8)
    assert found == largest // 8 * 8 and found % 8 == 0
    assert all(p.batch_size % 8 == 0 for p in probes)
    assert len(probes) <= 2 * math.log2(max(largest, 64) / 8) + 3
    exact, every, _ = search(_limit_at(largest), 64, limit=65_536)
    assert exact == largest and len(probes) < len(every)


def test_the_memory_a_batch_adds_is_fitted_over_the_probes():
    found = MaxBatch("w", "cpu", "fp32", None, None, max_batch_size=64)
    footprint, per_sample = 800 * 2**20, 3 * 2**20
    found.probes = [
        Probe(b, "ok", peak_memory_bytes=footprint + per_sample * b) for b in (16, 32, 64)
    ] + [Probe(128, "oom")]
    slope, intercept = found.memory_per_sample()
    assert slope == pytest.approx(per_sample) and intercept == pytest.approx(footprint)
    assert MaxBatch("w", "cpu", "fp32", None, None).memory_per_sample() is None


def test_search_reports_when_nothing_fits_and_when_the_limit_stopped_it():
    assert search(_limit_at(0), 16, 1024)[0] is None
    found, probes, capped = search(_limit_at(10_000), 16, 100)
    assert found == 100 and capped and probes[-1].batch_size == 100


def test_a_probe_that_fails_for_another_reason_stops_the_search():
    def broken(batch):
        return Probe(batch, "failed", error="ValueError: shapes")

    with pytest.raises(DlbenchError, match="probe at batch 8 failed: ValueError: shapes"):
        search(broken, 8, 100)


@pytest.mark.parametrize(
    ("text", "value"),
    [("8GiB", 8 * 2**30), ("512MiB", 512 * 2**20), ("16G", 16 * 10**9), ("1000", 1000)],
)
def test_memory_sizes(text, value):
    assert parse_bytes(text) == value


def test_bad_memory_size():
    with pytest.raises(ConfigError, match="not a size"):
        parse_bytes("lots")


@pytest.mark.slow
def test_maxbatch_probes_real_training_under_an_injected_memory_cap(db_path):
    done = run_dlbench(
        db_path,
        "maxbatch",
        "resnet18",
        "--device",
        "cpu",
        "--image-size",
        "32",
        "--start",
        "64",
        "--memory-limit",
        "1200MiB",
        "--granularity",
        "16",
        "--json",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    best = found["max_batch_size"]
    assert found["memory_limit_bytes"] == 1200 * 2**20 and not found["capped"]
    statuses = {p["batch_size"]: p["status"] for p in found["probes"]}
    assert statuses[best] == "ok" and statuses[best + 16] == "oom" and best % 16 == 0
    assert 8 < best < 4096
    assert found["bytes_per_sample"] > 0  # what one more image costs, over the footprint
    fitted = [p for p in found["probes"] if p["batch_size"] == best][0]
    assert 0 < fitted["peak_memory_bytes"] and fitted["step_time_s"] > 0
    assert "out of memory" in done.stderr and not db_path.exists()  # probes store nothing


def test_a_batch_as_large_as_the_data_set_is_probed_over_several_epochs(monkeypatch):
    from dlbench import datasets
    from dlbench.config import build_spec
    from dlbench.launch.probe import probe

    # A 64-image "MNIST": a batch of 64 makes a one-step epoch; the probe takes three steps.
    monkeypatch.setitem(datasets.SYNTHETIC_SIZES, "mnist-idx", (64, 32))
    spec = build_spec(workload="mlp-mnist", device="cpu", batch_size=64)
    found = probe(spec, None, steps=3)
    assert found["status"] == "ok", found["error"]
    assert found["batch_size"] == 64 and found["step_time_s"] > 0


@pytest.mark.slow
def test_maxbatch_for_generation_probes_real_request_batches_with_their_kv_cache(db_path):
    model = ["--depth", "2", "--width", "64", "--heads", "4", "--kv-heads", "2", "--vocab", "128"]
    done = run_dlbench(
        db_path, "maxbatch", "llama", "--device", "cpu", *model, "--prompt-len", "24",
        "--gen-len", "8", "--start", "2", "--limit", "8", "--json", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert (found["prompt_len"], found["gen_len"], found["seq_len"]) == (24, 8, None)
    assert found["max_batch_size"] == 8 and found["capped"]  # a tiny model: the --limit
    for probe in found["probes"]:
        # 2 (K and V) x layers x KV heads x head width x tokens x batch x 4 bytes (fp32)
        batch = probe["batch_size"]
        assert probe["kv_cache_bytes"] == 2 * 2 * 2 * (64 // 4) * (24 + 8) * batch * 4
    assert "generating 24 + 8 tokens" in done.stderr and not db_path.exists()


def test_maxbatch_prompt_len_alone_is_one_line(db_path, capsys):
    from conftest import call_main, one_line_error

    code, _, err = call_main(capsys, "maxbatch", "llama", "--device", "cpu", "--prompt-len", "8")
    assert "give --gen-len too" in one_line_error(code, err)
