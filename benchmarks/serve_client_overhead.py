"""dlbench serve-bench's client: its own CPU time per streamed token, and its clock beside the
openai library's, against a real server (transformers serve, on the tests' tiny random Llama).

At each concurrency (1, 2, 4), the same requests are sent, interleaved round by round, by
dlbench's client (``tools.openai_stream.drive``, what serve-bench runs) and by the official
``openai`` Python client (``AsyncOpenAI``, streaming), each in this process. The client's
CPU time is this process's (``time.process_time``: the server is another process) over the
requests' tokens; goal: under 1 ms per streamed token. Their median time to first token and
end-to-end latency should agree within the noise of the server's own timing, since both read
the same clock at the same moments (request sent, first text, end of stream).

    .venv/bin/python benchmarks/serve_client_overhead.py [--rounds 3] [--requests 24]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _report import machine, write_section

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dlbench.measure.serving import RequestOutcome  # noqa: E402
from dlbench.tools.openai_stream import Endpoint, drive  # noqa: E402

from served_model import transformers_server, write_tiny_llama  # noqa: E402

GEN_LEN = 64
PROMPT = "the quick brown fox jumps over the lazy dog " * 4


async def openai_client(url: str, model: str, requests: int, concurrency: int) -> list[dict]:
    """The same requests through the openai library, timed at the same moments."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="none")
    slots = asyncio.Semaphore(concurrency)

    async def one() -> dict:
        async with slots:
            sent, first, chunks, tokens = time.perf_counter(), None, 0, 0
            stream = await client.completions.create(
                model=model, prompt=PROMPT, max_tokens=GEN_LEN, temperature=0.0, stream=True,
                stream_options={"include_usage": True},
            )  # fmt: skip
            async for event in stream:
                if event.choices and event.choices[0].text:
                    first = first or time.perf_counter()
                    chunks += 1
                if event.usage:
                    tokens = event.usage.completion_tokens
            ended = time.perf_counter()
        return {"ttft": first - sent, "e2e": ended - sent, "tokens": tokens, "chunks": chunks}

    try:
        return list(await asyncio.gather(*(one() for _ in range(requests))))
    finally:
        await client.close()


def ours(url: str, model: str, requests: int, concurrency: int) -> tuple[list[dict], float]:
    endpoint = Endpoint(url, model)
    started = time.process_time()
    found: list[RequestOutcome] = asyncio.run(
        drive(endpoint, [PROMPT] * requests, GEN_LEN, concurrency)
    )
    cpu = time.process_time() - started
    assert all(o.ok for o in found), [o.error for o in found if not o.ok]
    return [
        {"ttft": o.ttft_s, "e2e": o.e2e_s, "tokens": o.output_tokens, "chunks": len(o.text_chunk_s)}
        for o in found
    ], cpu


def theirs(url: str, model: str, requests: int, concurrency: int) -> tuple[list[dict], float]:
    started = time.process_time()
    found = asyncio.run(openai_client(url, model, requests, concurrency))
    return found, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--print-only", action="store_true")
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model = write_tiny_llama(Path(folder) / "tiny-llama")
        with transformers_server(model, Path(folder) / "server.log") as served:
            ours(served.url, served.model, 4, 1)  # the server's first requests: warm-up
            for concurrency in (1, 2, 4):
                figures: dict[str, list[tuple[list[dict], float]]] = {"ours": [], "openai": []}
                for index in range(options.rounds):
                    order = [("ours", ours), ("openai", theirs)]
                    for name, client in order if index % 2 == 0 else order[::-1]:
                        figures[name].append(
                            client(served.url, served.model, options.requests, concurrency)
                        )
                rows.append(_row(concurrency, figures))
                print(rows[-1], flush=True)
    table = "\n".join(
        [
            f"{machine()}; the server (transformers serve, a 2-layer random Llama, CPU) on the "
            f"same machine; {options.requests} requests of {GEN_LEN} tokens per round, "
            f"median of {options.rounds} interleaved rounds.",
            "",
            "| concurrency | client CPU per token, dlbench (ms) | openai library (ms) | "
            "TTFT p50 dlbench / openai (ms) | E2E p50 dlbench / openai (ms) |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Command: `.venv/bin/python benchmarks/serve_client_overhead.py`",
        ]
    )
    print(table)
    if not options.print_only:
        write_section("serve-client-overhead", table)


def _row(concurrency: int, figures: dict[str, list[tuple[list[dict], float]]]) -> str:
    def per_token(name: str) -> float:
        return statistics.median(
            cpu / sum(r["tokens"] for r in found) * 1e3 for found, cpu in figures[name]
        )

    def p50(name: str, key: str) -> float:
        return statistics.median(
            statistics.median(r[key] for r in found) * 1e3 for found, _ in figures[name]
        )

    return (
        f"| {concurrency} | {per_token('ours'):.3f} | {per_token('openai'):.3f} | "
        f"{p50('ours', 'ttft'):.2f} / {p50('openai', 'ttft'):.2f} | "
        f"{p50('ours', 'e2e'):.2f} / {p50('openai', 'e2e'):.2f} |"
    )


if __name__ == "__main__":
    main()
