"""dlbench serve-bench against a real OpenAI-compatible server (transformers serve, on a tiny
random Llama the test writes): the counts, the percentiles, the series of loads, a request the
server refuses, the server killed mid-stream; and the run as show and compare read it."""

from __future__ import annotations

import json
import threading

import pytest

from dlbench.store.database import Store

from conftest import call_main, dlbench_here, wait_for
from served_model import Served, stop, transformers_server, write_tiny_llama

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    folder = tmp_path_factory.mktemp("served")
    model = write_tiny_llama(folder / "tiny-llama")
    with transformers_server(model, folder / "server.log") as server:
        yield server


def bench(capsys, served, db_path, *args):
    return call_main(
        capsys, "serve-bench", "--url", served.url, "--model", served.model,
        "--db", str(db_path), "--interval", "0.2", *args,
    )  # fmt: skip


def test_a_series_of_loads_is_stored_with_exact_counts_and_ordered_percentiles(
    served, db_path, capsys
):
    code, _, err = bench(
        capsys, served, db_path, "--requests", "6", "--concurrency", "1,2", "--gen-len", "8",
        "--prompt-len", "12", "--slo", "ttft=60s,tpot=10s",
    )  # fmt: skip
    assert code == 0, err
    runs = Store(str(db_path)).runs()
    assert sorted(r.serving.concurrency for r in runs) == [1, 2]
    assert {r.kind for r in runs} == {"serving"} and len({r.sweep for r in runs}) == 1
    for run in runs:
        stats = run.serving.stats
        assert run.status == "ok" and run.error is None
        assert (stats.requests, stats.completed, stats.failed) == (6, 6, 0)
        # no EOS in this model: every request generated exactly --gen-len, by the server's count
        assert stats.output_tokens == 6 * 8 and run.serving.tokens_from == "usage"
        assert stats.prompt_tokens is not None and stats.prompt_tokens >= 6 * 12
        assert run.timed_steps == 6 and stats.slo_met == 6
        for figure in (stats.ttft_s, stats.tpot_s, stats.e2e_s):
            assert 0 < figure.p50 <= figure.p95 <= figure.p99
            assert figure.ci95[0] <= figure.mean <= figure.ci95[1]
        assert stats.e2e_s.mean > stats.ttft_s.mean
        assert stats.output_tokens_per_s == pytest.approx(48 / stats.duration_s)
        assert any("loopback" in reason for reason in run.quality.reasons)
        assert run.telemetry is not None and run.telemetry.phase("serve") is not None
    assert "Concurrency" in err and "TTFT p50/p99" in err  # the series' table
    shown = dlbench_here(capsys, "show", runs[0].run_id)
    assert shown.returncode == 0 and "time to first token" in shown.stdout
    compared = dlbench_here(capsys, "compare", *(r.run_id for r in runs), "--by", "concurrency")
    assert compared.returncode == 0, compared.stderr
    assert "accelerates serving" in compared.stdout


def test_a_request_the_server_refuses_is_counted_and_kept(served, db_path, capsys, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    too_long = " ".join(["the"] * 400)  # past the server's --max-model-len of 256
    lines = [{"prompt": "the quick brown fox"}, {"prompt": too_long}, {"prompt": "lazy dog"}]
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, _, err = bench(
        capsys, served, db_path, "--prompts", str(prompts), "--requests", "6", "--gen-len", "4"
    )
    assert code == 0, err
    (run,) = Store(str(db_path)).runs()
    stats = run.serving.stats
    assert (stats.completed, stats.failed) == (4, 2)
    (error,) = stats.errors
    assert error.startswith("HTTP 400") and "--max-model-len" in error
    assert stats.errors[error] == 2
    assert run.status == "ok" and "2 of 6 requests failed: HTTP 400" in run.error


def test_a_server_killed_mid_stream_leaves_the_run_stored_with_its_errors(
    served, db_path, capsys, tmp_path
):
    with transformers_server(served.model, tmp_path / "doomed.log") as doomed:
        done: list = []

        def kill_after_two() -> None:
            wait_for(lambda: len(done) >= 2, timeout_s=120, every_s=0.01)
            stop(doomed)

        from dlbench.tools.openai_stream import Endpoint
        from dlbench.tools.serve_bench import ServePlan, serve_bench

        killer = threading.Thread(target=kill_after_two, daemon=True)
        killer.start()
        plan = ServePlan(
            Endpoint(doomed.url, doomed.model, timeout_s=60),
            requests=8, concurrency=2, gen_len=200, prompt_len=8, interval_s=0.2,
        )  # fmt: skip
        run_id = serve_bench(plan, Store(str(db_path)), on_done=done.append)
        killer.join(timeout=60)
    run = Store(str(db_path)).run(run_id)
    stats = run.serving.stats
    assert stats.completed >= 2 and stats.failed >= 1
    assert stats.completed + stats.failed == 8
    said = " ".join(stats.errors)
    assert "cut mid-way" in said or "ended before the answer did" in said or "connect" in said
    assert run.status == "ok" and run.timed_steps == stats.completed


def test_a_serving_sweep_runs_its_matrix_resumes_and_draws_a_curve_per_length(
    served, db_path, tmp_path, capsys
):
    from dlbench.report.serving import tradeoff_figure

    sweep = tmp_path / "load.yaml"
    sweep.write_text(
        f"name: load\nserve: {{url: '{served.url}', model: '{served.model}'}}\n"
        "base: {requests: 3, gen_len: 4, interval: 0.2}\n"
        "matrix: {concurrency: [1, 2], prompt_len: [8, 16]}\n"
    )
    code, out, err = call_main(capsys, "sweep", str(sweep), "--db", str(db_path))
    assert code == 0, err
    runs = Store(str(db_path)).runs(sweep="load")
    assert sorted((r.serving.concurrency, r.serving.prompt_len) for r in runs) == [
        (1, 8), (1, 16), (2, 8), (2, 16),
    ]  # fmt: skip
    assert len({r.run_key for r in runs}) == 4 and all(r.status == "ok" for r in runs)
    assert "Prompt + out" in out and "8 + 4" in out
    figure = tradeoff_figure(runs)
    assert figure is not None and len(figure.data) == 2  # a line per prompt length
    assert all(list(line.text) == ["1", "2"] for line in figure.data)
    again = call_main(capsys, "sweep", str(sweep), "--db", str(db_path), "--resume")
    assert again[0] == 0 and again[1].count("skip, already ok") == 4
    assert len(Store(str(db_path)).runs(sweep="load")) == 4


def test_the_chat_api_is_measured_as_the_completions_one(served, db_path, capsys):
    code, _, err = bench(capsys, served, db_path, "--api", "chat", "--requests", "3",
                         "--gen-len", "5", "--prompt-len", "6")  # fmt: skip
    assert code == 0, err
    (run,) = Store(str(db_path)).runs()
    stats = run.serving.stats
    assert run.serving.api == "chat" and (stats.completed, stats.failed) == (3, 0)
    assert stats.output_tokens == 3 * 5 and stats.ttft_s.mean < stats.e2e_s.mean
