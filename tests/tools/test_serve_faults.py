"""serve-bench against servers that misbehave, and input it refuses: a server that refuses,
times out, sends a line that is not JSON, an error event, or closes mid-stream is one line and
exit 2 before anything is stored when it does so at once; once the run is going, each such
request is counted with its error and the run is stored with them.

The misbehaving server is a few lines of asyncio over a real socket, speaking HTTP/1.1 and
server-sent events as an OpenAI-compatible server does, then breaking them on purpose."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading

import pytest

from dlbench.store.database import Store

from conftest import call_main, dlbench_here, one_line_error


def _event(payload: dict) -> bytes:
    data = f"data: {json.dumps(payload)}\n\n".encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _text_event(text: str, finish: str | None = None) -> bytes:
    return _event({"choices": [{"index": 0, "text": text, "finish_reason": finish}]})


HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
)


async def _answer(behaviour: str, writer: asyncio.StreamWriter) -> None:
    if behaviour == "refuse":
        body = b'{"detail": "overloaded, try later"}'
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: %d\r\n" % len(body))
        writer.write(b"connection: close\r\n\r\n" + body)
        return
    if behaviour == "not-http":
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")  # another service on the port
        return
    if behaviour == "hang":
        await asyncio.sleep(30)
        return
    writer.write(HEAD)
    if behaviour == "silent":  # tokens the server does not show: special or partial ones
        usage = {"completion_tokens": 3, "prompt_tokens": 5, "total_tokens": 8}
        writer.write(_text_event("") + _text_event("", finish="length"))
        writer.write(_event({"choices": [], "usage": usage}) + b"0\r\n\r\n")
        return
    writer.write(_text_event("one"))
    if behaviour == "ok":
        writer.write(_text_event(" two") + _text_event(" three", finish="length"))
        usage = {"completion_tokens": 3, "prompt_tokens": 5, "total_tokens": 8}
        writer.write(_event({"choices": [], "usage": usage}) + b"0\r\n\r\n")
    elif behaviour == "malformed":
        data = b"data: {this is not json\n\n"
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
    elif behaviour == "error-event":
        writer.write(_event({"error": {"message": "CUDA out of memory"}}) + b"0\r\n\r\n")
    elif behaviour == "cut":
        writer.write(b"400\r\ndata: {\"cho")  # a chunk of 1,024 bytes begun, never finished
    elif behaviour == "endless":  # text after text, never a finish: max_tokens ignored
        for _ in range(200):
            writer.write(_text_event(" more"))
    elif behaviour == "huge":  # one event line of 8 MiB, never ended: a hostile server
        data = b"data: " + b"x" * (8 * 2**20)
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    elif behaviour == "early-end":
        writer.write(b"0\r\n\r\n")  # a clean end of the body, but no finish_reason nor [DONE]


class FaultyServer:
    """Answers request i as ``behaviours[i % len]`` says."""

    def __init__(self, behaviours: list[str]) -> None:
        self.behaviours = itertools.cycle(behaviours)
        self.answered = 0  # requests whose answer began
        self.heads: list[bytes] = []  # each request's head, as sent
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
            await reader.readexactly(int(length[1]) if length else 0)
            self.answered += 1
            await _answer(next(self.behaviours), writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up on this request first
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultyServer:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def bench(capsys, url, db_path, *args):
    return call_main(
        capsys, "serve-bench", "--url", url, "--model", "m", "--db", str(db_path),
        "--interval", "0.2", "--gen-len", "3", *args,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        ("refuse", "HTTP 503: {\"detail\": \"overloaded, try later\"}"),
        ("malformed", "malformed stream: an event that is not JSON"),
        ("error-event", "the server sent an error: {'message': 'CUDA out of memory'}"),
        ("cut", "the stream was cut mid-way (1 chunks)"),
        ("early-end", "the stream ended before the answer did (1 chunks)"),
        ("hang", "no complete answer within 0.5 s (--request-timeout)"),
        ("huge", "malformed stream: an event line over 2 MiB"),
        ("endless", "the server sent over 70 chunks of text for --gen-len 3"),
        ("not-http", "a bad answer: Bad status line: Expected HTTP/"),
    ],
)
def test_a_server_that_fails_the_first_request_is_one_line_and_nothing_is_stored(
    behaviour, said, db_path, capsys
):
    with FaultyServer([behaviour]) as server:
        code, _, err = bench(capsys, server.url, db_path, "--request-timeout", "0.5")
    line = one_line_error(code, err)
    assert "did not stream an answer to a first request" in line and said in line, line
    assert Store(str(db_path)).list_runs() == []


def test_a_server_that_is_not_there_is_one_line(db_path, capsys):
    from served_model import free_port

    code, _, err = bench(capsys, f"http://127.0.0.1:{free_port()}/v1", db_path)
    assert "cannot connect" in one_line_error(code, err)
    assert Store(str(db_path)).list_runs() == []


def test_once_running_each_fault_is_counted_and_the_run_stored_with_them(db_path, capsys):
    # the first answer (the check) is good; then a good one, then each fault in turn
    faults = ["refuse", "malformed", "error-event", "cut", "early-end"]
    with FaultyServer(["ok", "ok", *faults, "ok", "ok"]) as server:
        code, _, err = bench(capsys, server.url, db_path, "--requests", "8")
    assert code == 0, err
    (run,) = Store(str(db_path)).runs()
    stats = run.serving.stats
    assert (stats.requests, stats.completed, stats.failed) == (8, 3, 5)
    assert sum(stats.errors.values()) == 5 and len(stats.errors) == 5
    assert stats.output_tokens == 9 and run.serving.tokens_from == "usage"
    assert run.status == "ok" and run.error.startswith("5 of 8 requests failed: ")
    assert run.timed_steps == 3


def test_an_answer_of_tokens_that_show_no_text_completes_at_its_finish(db_path, capsys):
    with FaultyServer(["silent"]) as server:
        code, _, err = bench(capsys, server.url, db_path, "--requests", "2")
    assert code == 0, err
    (run,) = Store(str(db_path)).runs()
    stats = run.serving.stats
    assert (stats.completed, stats.failed, stats.output_tokens) == (2, 0, 6)
    assert stats.itl_s is None and stats.ttft_s.mean == pytest.approx(stats.e2e_s.mean, abs=0.05)


def test_a_run_whose_every_request_failed_is_stored_failed(db_path, capsys):
    with FaultyServer(["ok", "refuse", "refuse", "refuse"]) as server:
        code, _, err = bench(capsys, server.url, db_path, "--requests", "3")
    assert code == 1, err
    (run,) = Store(str(db_path)).runs()
    assert run.status == "failed" and run.serving.stats.failed == 3
    assert run.error == "3 of 3 requests failed: HTTP 503: {\"detail\": \"overloaded, try later\"}"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--gen-len", "0"], "Invalid value for '--gen-len'"),
        (["--concurrency", "0"], "--concurrency must be 1 to"),
        (["--concurrency", "1,x"], "--concurrency '1,x': whole numbers"),
        (["--concurrency", "2,2"], "each once"),
        (["--requests", "0"], "Invalid value for '--requests'"),
        (["--rate", "0"], "Invalid value for '--rate': 0.0 is not a finite number"),
        (["--rate", "nan"], "Invalid value for '--rate'"),
        (["--prompt-len", "-3"], "Invalid value for '--prompt-len'"),
        (["--request-timeout", "0"], "Invalid value for '--request-timeout'"),
        (["--requests", "1000", "--prompt-len", "100000"], "100,000,000 words of synthetic"),
        (["--slo", "ttft=2"], "give a duration with its unit"),
        (["--api", "embeddings"], "--api must be completions or chat"),
        (["--prompts", "{tmp}/none.txt"], "cannot read prompts file"),
        (["--prompts", "{tmp}/empty.txt"], "holds no prompt"),
        (["--prompts", "{tmp}/bad.jsonl"], "line 1: not JSON"),
    ],
)
def test_bad_input_is_one_line_before_anything_is_stored(args, said, db_path, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    given = [a.format(tmp=tmp_path) for a in args]
    code, _, err = bench(capsys, "http://127.0.0.1:1/v1", db_path, *given)
    assert said in one_line_error(code, err)
    assert not db_path.exists() or Store(str(db_path)).list_runs() == []


@pytest.mark.parametrize("url", ["localhost:8000/v1", "ftp://h/v1", "http://h:port/v1", "http://"])
def test_a_url_that_is_not_http_is_one_line(url, db_path, capsys):
    code, _, err = call_main(capsys, "serve-bench", "--url", url, "--model", "m")
    assert "--url" in one_line_error(code, err)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_benchmark_is_stored_with_the_requests_that_ended(
    signal_name, db_path, tmp_path
):
    import signal
    import subprocess

    from conftest import cli_env, wait_for

    with FaultyServer(["ok"] * 4 + ["hang"] * 20) as server:
        process = subprocess.Popen(
            ["dlbench", "serve-bench", "--url", server.url, "--model", "m", "--db", str(db_path),
             "--requests", "10", "--gen-len", "3", "--request-timeout", "60"],
            env=cli_env(db_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for(lambda: server.answered >= 5, timeout_s=60, every_s=0.02)  # the 5th hangs
        process.send_signal(getattr(signal, signal_name))
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    (run,) = Store(str(db_path)).runs()
    stats = run.serving.stats
    assert run.status == "interrupted" and stats.completed == 3 and run.timed_steps == 3
    assert run.error.startswith("interrupted after 3 of 10 requests ended")


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("base: {batch_size: 4}\n", "load.yaml:3: unknown base key 'batch_size'"),
        ("matrix: {concurrency: [1, two]}\n", "concurrency is a whole number, not 'two'"),
        ("matrix: {concurrency: [1, 0]}\n", "load.yaml:3: --concurrency must be 1 to"),
        ("matrix: {gen_len: [4]}\nexclude: [{seed: 1}]\n", "exclude key 'seed' is not in"),
        ("base: {slo: ttft=2}\n", "load.yaml:3: --slo 'ttft=2': give a duration"),
        ("colour: red\n", "load.yaml:3: colour: unknown key 'colour'"),
    ],
)
def test_a_bad_serving_sweep_is_one_line_at_its_line(body, said, tmp_path, db_path, capsys):
    sweep = tmp_path / "load.yaml"
    sweep.write_text("name: load\nserve: {url: 'http://127.0.0.1:1/v1', model: m}\n" + body)
    code, _, err = call_main(capsys, "sweep", str(sweep), "--db", str(db_path))
    assert said in one_line_error(code, err)
    assert not db_path.exists()


def test_a_serving_sweep_runs_here_only(tmp_path, db_path, capsys):
    sweep = tmp_path / "load.yaml"
    sweep.write_text("name: load\nserve: {url: 'http://127.0.0.1:1/v1', model: m}\n")
    code, _, err = call_main(capsys, "sweep", str(sweep), "--executor", "slurm")
    assert "a serving sweep runs from this machine" in one_line_error(code, err)
    code, _, err = call_main(capsys, "sweep", "status", str(sweep))
    assert "load.yaml:2: a serving sweep runs from this machine" in one_line_error(code, err)
    code, out, _ = call_main(capsys, "sweep", str(sweep), "--dry-run", "--db", str(db_path))
    assert code == 0 and "1 runs against http://127.0.0.1:1/v1" in out and not db_path.exists()


def test_the_api_key_is_sent_as_a_bearer_token_and_never_stored(db_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-5ecret")
    with FaultyServer(["ok"]) as server:
        code, _, err = bench(capsys, server.url, db_path, "--requests", "2")
    assert code == 0, err
    assert all(b"authorization: bearer sk-test-5ecret" in h.lower() for h in server.heads)
    assert len(server.heads) == 3  # the first, untimed, request and the two timed
    assert b"5ecret" not in db_path.read_bytes()


def test_warm_up_requests_go_first_untimed_at_the_run_s_concurrency(db_path, capsys):
    with FaultyServer(["ok"]) as server:
        code, _, err = bench(capsys, server.url, db_path, "--requests", "2", "--warmup", "3")
    assert code == 0, err
    assert len(server.heads) == 1 + 3 + 2
    (run,) = Store(str(db_path)).runs()
    assert run.serving.stats.requests == 2 and run.config["warmup"] == 3


def test_repeated_passes_of_a_load_give_throughput_an_interval_between_them(db_path, capsys):
    from scipy import stats as scipy_stats

    with FaultyServer(["ok"]) as server:
        code, _, err = bench(capsys, server.url, db_path, "--requests", "3", "--repeat", "3")
    assert code == 0, err
    runs = Store(str(db_path)).runs()
    assert sorted(r.config["repeat"] for r in runs) == [0, 1, 2]
    assert len({r.sweep for r in runs}) == 1
    rates = [r.serving.stats.requests_per_s for r in runs]
    low, high = scipy_stats.t.interval(
        0.95, 2, loc=sum(rates) / 3, scale=scipy_stats.sem(rates)
    )
    assert "Between passes of the same load" in err
    assert f"({max(low, 0):,.3f}–{high:,.3f}; cv" in err


def test_a_fault_of_dlbench_s_own_mid_run_closes_the_run_as_failed(db_path, monkeypatch):
    from dlbench.tools import serve_bench as module
    from dlbench.tools.openai_stream import Endpoint

    def broken(*_args, **_kwargs):
        raise RuntimeError("the telemetry summary broke")

    monkeypatch.setattr(module, "telemetry_summary", broken)
    with FaultyServer(["ok"]) as server:
        plan = module.ServePlan(Endpoint(server.url, "m"), requests=2, gen_len=3, interval_s=0.2)
        with pytest.raises(RuntimeError):
            module.serve_bench(plan, Store(str(db_path)))
    (run,) = Store(str(db_path)).runs()
    assert run.status == "failed" and "the telemetry summary broke" in run.error


def test_a_serving_sweep_stores_a_refused_load_as_failed_and_goes_on(tmp_path, db_path, capsys):
    sweep = tmp_path / "load.yaml"
    with FaultyServer(["ok"] * 3 + ["refuse"] + ["ok"] * 3) as server:
        sweep.write_text(
            f"name: load\nserve: {{url: '{server.url}', model: m}}\n"
            "base: {requests: 2, gen_len: 3, interval: 0.2}\nmatrix: {concurrency: [1, 2, 3]}\n"
        )
        code, out, err = call_main(capsys, "sweep", str(sweep), "--db", str(db_path))
        assert code == 1, err
        runs = {r.serving.concurrency if r.serving else None: r for r in Store(str(db_path)).runs()}
        assert runs[1].status == runs[3].status == "ok"
        refused = runs[None]
        assert refused.status == "failed" and refused.config["concurrency"] == 2
        assert "HTTP 503" in refused.error and refused.device_name == f"127.0.0.1:{server.port}"
        shown = dlbench_here(capsys, "show", refused.run_id, "--db", str(db_path)).stdout
        assert f"{server.url} (completions API), model m" in shown and "HTTP 503" in shown
        again, out, err = call_main(capsys, "sweep", str(sweep), "--db", str(db_path), "--resume")
    assert again == 0, err
    assert out.count("skip, already ok") == 2
    assert [r.status for r in Store(str(db_path)).runs() if r.config["concurrency"] == 2] == [
        "ok", "failed",
    ]  # fmt: skip
