"""A server's figures from constructed request timestamps: TTFT, TPOT, ITL, end-to-end, the
rates, goodput under an SLO, failures counted; and the stored document read back."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
from scipy import stats as scipy_stats

from dlbench.errors import ConfigError
from dlbench.measure.serving import (
    RequestOutcome,
    ServingSummary,
    Slo,
    parse_slo,
    serving_document,
    serving_from,
    serving_stats,
)


def request(sent, chunks, ended, tokens=None, error=None, prompt=10):
    return RequestOutcome(
        sent_s=sent,
        ended_s=ended,
        text_chunk_s=tuple(chunks),
        output_tokens=len(chunks) if tokens is None else tokens,
        prompt_tokens=prompt,
        error=error,
    )


def test_one_request_s_ttft_tpot_itl_and_e2e_are_vllm_s():
    # sent at 1.0, chunks at 1.5, 1.6, 1.8, 2.1; stream ends at 2.2; the server counted 7 tokens
    one = request(1.0, [1.5, 1.6, 1.8, 2.1], 2.2, tokens=7)
    assert one.ttft_s == pytest.approx(0.5)
    assert one.e2e_s == pytest.approx(1.2)
    assert one.tpot_s == pytest.approx((1.2 - 0.5) / 6)  # (e2e - ttft) / (tokens - 1)
    assert one.itl_s == pytest.approx((0.1, 0.2, 0.3))
    assert request(0.0, [0.2], 0.3, tokens=1).tpot_s is None  # one token: no decode
    assert request(0.0, [0.2], 0.3, tokens=5).tpot_s is None  # all in one chunk: none seen


def test_the_rates_count_completed_requests_over_first_sent_to_last_ended():
    outcomes = [
        request(0.0, [0.1, 0.2], 1.0, tokens=5),
        request(0.5, [0.7, 0.9], 2.0, tokens=3),
        request(1.0, [], 1.5, error="HTTP 500: boom"),
        request(1.2, [], 4.0, error="HTTP 500: boom"),
    ]
    found = serving_stats(outcomes)
    assert (found.requests, found.completed, found.failed) == (4, 2, 2)
    assert found.errors == {"HTTP 500: boom": 2}
    assert found.duration_s == pytest.approx(4.0)
    assert found.requests_per_s == pytest.approx(2 / 4.0)
    assert found.output_tokens == 8 and found.output_tokens_per_s == pytest.approx(2.0)
    assert found.total_tokens_per_s == pytest.approx((20 + 8) / 4.0)
    assert found.e2e_s is not None and found.e2e_s.mean == pytest.approx(1.25)


def test_latencies_carry_a_student_t_interval_and_numpy_s_percentiles():
    rng = np.random.default_rng(3)
    ttfts = rng.uniform(0.05, 0.4, size=40)
    outcomes = [request(float(i), [i + t, i + t + 0.01], i + t + 0.02) for i, t in enumerate(ttfts)]
    found = serving_stats(outcomes).ttft_s
    assert found is not None and found.ci95 is not None
    low, high = scipy_stats.t.interval(
        0.95, len(ttfts) - 1, loc=ttfts.mean(), scale=scipy_stats.sem(ttfts)
    )
    assert found.ci95 == pytest.approx((max(low, ttfts.min()), high), rel=1e-9)
    assert found.p99 == pytest.approx(np.percentile(ttfts, 99), rel=1e-9)


def test_itl_pools_every_gap_with_no_interval():
    outcomes = [request(0, [1, 2, 4], 4), request(0, [1, 1.5], 2)]
    found = serving_stats(outcomes).itl_s
    assert found is not None and found.ci95 is None
    assert found.mean == pytest.approx(np.mean([1, 2, 0.5]))


def test_goodput_counts_completed_requests_within_every_objective():
    slo = Slo(ttft_s=0.2, tpot_s=0.05)
    outcomes = [
        request(0, [0.1, 0.15], 0.2, tokens=3),  # ttft 0.1, tpot 0.05: met
        request(0, [0.3, 0.35], 0.4, tokens=3),  # ttft 0.3: missed
        request(0, [0.1, 0.5], 0.9, tokens=3),  # tpot 0.4: missed
        request(0, [], 0.1, error="cut"),  # failed: never counts
    ]
    found = serving_stats(outcomes, slo)
    assert found.slo_met == 1
    assert found.goodput_per_s == pytest.approx(1 / 0.9)


@pytest.mark.parametrize(
    ("text", "slo"),
    [
        ("ttft=2s,tpot=200ms", Slo(ttft_s=2.0, tpot_s=0.2)),
        ("e2e=1.5s", Slo(e2e_s=1.5)),
        (" TTFT = 250 ms ", Slo(ttft_s=0.25)),
    ],
)
def test_an_slo_is_read_with_its_units(text, slo):
    assert parse_slo(text) == slo


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("ttft=2", "give a duration with its unit"),
        ("latency=2s", "not one of ttft, tpot, e2e"),
        ("ttft=0s", "above 0"),
        ("ttft=1s,ttft=2s", "each limit once"),
        ("ttft=nan s", "give a duration"),
    ],
)
def test_a_bad_slo_is_one_line(text, said):
    with pytest.raises(ConfigError, match=said):
        parse_slo(text)


def test_the_stored_document_reads_back_whole():
    outcomes = [request(float(i), [i + 0.1, i + 0.2, i + 0.35], i + 0.4) for i in range(5)]
    outcomes.append(request(9.0, [9.1], 9.2, error="the stream was cut mid-way (1 chunks)"))
    summary = ServingSummary(
        url="http://h:1/v1", model="m", api="completions", concurrency=2, rate_per_s=None,
        prompt_len=16, gen_len=8, tokens_from="usage", slo=Slo(ttft_s=1.0),
        stats=serving_stats(outcomes, Slo(ttft_s=1.0)),
    )  # fmt: skip
    back = serving_from(serving_document(summary))
    assert back == summary
    assert asdict(back)["stats"]["failed"] == 1
    assert math.isclose(back.stats.e2e_s.mean, 0.4)
    assert serving_from(None) is None
