"""The report's section on language models answering: a table of generation runs, one of
servers under load, and the throughput-latency curve through a batch or concurrency series."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from dlbench.measure.generation import RequestTimes, generation_stats
from dlbench.measure.serving import (
    RequestOutcome,
    ServingSummary,
    serving_document,
    serving_stats,
)
from dlbench.records import RunResult, StepRecord
from dlbench.report.html import build
from dlbench.report.serving import tradeoff_figure


def _served(store, run_id, concurrency, tpot_s):
    outcomes = [
        RequestOutcome(i, i + 0.1 + 9 * tpot_s, tuple(i + 0.1 + k * tpot_s for k in range(10)), 10)
        for i in range(4)
    ]
    summary = ServingSummary(
        url="http://gpu-box:8000/v1", model="llama-1b", api="completions",
        concurrency=concurrency, rate_per_s=None, prompt_len=32, gen_len=10,
        tokens_from="usage", slo=None, stats=serving_stats(outcomes),
    )  # fmt: skip
    store.create_run(run_id, "serving", {"concurrency": concurrency}, workload="llama-1b",
                     framework="openai-api", device="server", batch_size=1)  # fmt: skip
    steps = tuple(StepRecord(i, 0, o.e2e_s, 0.0) for i, o in enumerate(outcomes))
    store.finish_run(
        RunResult(run_id, "ok", phase_reached="done", serving=serving_document(summary),
                  throughput_e2e=summary.stats.requests_per_s, steps=steps)
    )  # fmt: skip


def _generated(store, run_id, batch, tpot_s):
    times = [RequestTimes(0.0, tuple(0.05 + k * tpot_s for k in range(8)), 16, batch)] * 3
    document = {
        "prompt_len": 16, "gen_len": 8, "batch": batch, "kv_cache_bytes": 2**20,
        "deterministic": True, "tokens_digest": "x", **asdict(generation_stats(times)),
    }  # fmt: skip
    store.create_run(run_id, "generate", {"seq_len": 24}, workload="llama", device="cpu",
                     batch_size=batch, precision="fp32")  # fmt: skip
    store.finish_run(RunResult(run_id, "ok", phase_reached="done", generation=document))


def test_the_section_tables_both_kinds_and_draws_each_series(store):
    for concurrency, tpot in ((1, 0.010), (2, 0.012), (4, 0.020)):
        _served(store, f"s{concurrency}", concurrency, tpot)
    for batch, tpot in ((1, 0.004), (8, 0.006)):
        _generated(store, f"g{batch}", batch, tpot)
    runs = store.runs()
    page = build(store, runs, "serving")
    assert "Language models answering: generation and serving" in page
    assert "Servers under load, from their client" in page and "Generation on a device" in page
    assert "llama-1b @ http://gpu-box:8000/v1" in page
    figure = tradeoff_figure(runs)
    assert figure is not None
    lines = {trace.name: trace for trace in figure.data}
    assert len(lines) == 2
    serving = next(t for name, t in lines.items() if "gpu-box" in name)
    assert list(serving.text) == ["1", "2", "4"]  # ordered by concurrency
    # output tokens/s: 40 tokens from the first request sent to the last ended
    assert serving.x[0] == pytest.approx(10.0)  # TPOT p50 in ms
    assert serving.y[0] == pytest.approx(40 / (3 + 0.1 + 9 * 0.010))
    generation = next(t for name, t in lines.items() if "llama · cpu" in name)
    assert list(generation.text) == ["1", "8"]
    # decode tokens/s of batch 8: 7 tokens x 8 sequences over 7 x 6 ms
    assert generation.y[1] == pytest.approx(7 * 8 / (7 * 0.006))


def test_no_series_draws_no_curve(store):
    _served(store, "alone", 1, 0.01)
    assert tradeoff_figure(store.runs()) is None


def test_the_dashboard_lists_a_server_s_requests_per_s_not_one_over_its_latency(store):
    from dlbench.dashboard.data import runs_frame

    _served(store, "s1", 2, 0.010)
    row = runs_frame(store).iloc[0]
    served = store.run("s1").serving.stats
    assert row["mean_speed"] == pytest.approx(served.requests_per_s)
    assert row["batch"] == "—" and row["precision"] == "—" and row["gpus"] == "—"


def test_passes_of_one_load_are_one_point_with_the_throughput_s_interval(store):
    from scipy import stats as scipy_stats

    for index, tpot in enumerate((0.010, 0.011, 0.012)):  # three passes at concurrency 1
        _served(store, f"a{index}", 1, tpot)
    _served(store, "b", 2, 0.02)
    (line,) = tradeoff_figure(store.runs()).data
    assert list(line.text) == ["1", "2"]
    rates = [store.run(f"a{i}").serving.stats.output_tokens_per_s for i in range(3)]
    mean = sum(rates) / 3
    assert line.y[0] == pytest.approx(mean) and line.x[0] == pytest.approx(11.0)
    high = scipy_stats.t.interval(0.95, 2, loc=mean, scale=scipy_stats.sem(rates))[1]
    assert line.error_y.array[0] == pytest.approx(high - mean)
    assert line.error_y.array[1] == 0  # one pass: no interval


def test_exports_carry_the_per_token_figures_as_flat_columns(store):
    from dlbench.store.export import runs_frame

    _served(store, "s", 2, 0.010)
    _generated(store, "g", 4, 0.005)
    frame = runs_frame(store.list_runs()).set_index("run_id")
    served = store.run("s").serving.stats
    assert frame.loc["s", "concurrency"] == 2 and frame.loc["s", "failed_requests"] == 0
    assert frame.loc["s", "tpot_p50_ms"] == pytest.approx(served.tpot_s.p50 * 1e3)
    assert frame.loc["s", "output_tokens_per_s"] == pytest.approx(served.output_tokens_per_s)
    assert frame.loc["g", "decode_tokens_per_s"] == pytest.approx(7 * 4 / (7 * 0.005))
    assert frame.loc["g", "ttft_mean_ms"] == pytest.approx(50.0)
    assert frame.loc["g", "gen_len"] == 8 and pd_isna(frame.loc["g", "concurrency"])


def pd_isna(value):
    import pandas as pd

    return bool(pd.isna(value))
