"""Generation figures from constructed clock readings: TTFT, TPOT, ITL, prefill and decode
tokens/s, with the first token counted to the prefill."""

import pytest

from dlbench.measure.generation import RequestTimes, generation_stats


def test_one_request_s_figures_are_its_clock_readings_arithmetic():
    request = RequestTimes(submitted_s=10.0, token_ready_s=(10.5, 10.6, 10.8, 10.9),
                           prompt_tokens=100, batch=4)  # fmt: skip
    assert request.ttft_s == pytest.approx(0.5)
    assert request.e2e_s == pytest.approx(0.9)
    assert request.itl_s == pytest.approx((0.1, 0.2, 0.1))
    assert request.tpot_s == pytest.approx(0.4 / 3)  # after the first token
    assert request.prefill_tokens_per_s == pytest.approx(100 * 4 / 0.5)
    assert request.decode_tokens_per_s == pytest.approx(3 * 4 / 0.4)
    single = RequestTimes(0.0, (0.25,), prompt_tokens=8, batch=1)
    assert single.tpot_s is None and single.decode_tokens_per_s is None and single.itl_s == ()
    with pytest.raises(ValueError, match="backwards"):
        RequestTimes(1.0, (1.5, 1.4), prompt_tokens=8, batch=1)
    with pytest.raises(ValueError, match="no token"):
        RequestTimes(1.0, (), prompt_tokens=8, batch=1)


def test_repetitions_give_means_intervals_and_pooled_percentiles():
    requests = [
        RequestTimes(0.0, (0.2, 0.3, 0.4), prompt_tokens=10, batch=2),
        RequestTimes(0.0, (0.4, 0.5, 0.7), prompt_tokens=10, batch=2),
    ]
    stats = generation_stats(requests)
    assert stats.requests == 2
    assert stats.ttft_s.mean == pytest.approx(0.3)
    # Student-t, 1 degree of freedom: 12.706 x the standard error (0.1) above the mean; below
    # it, never under the shortest request observed (0.3 - 1.27 would be negative)
    assert stats.ttft_s.ci95 == pytest.approx((0.2, 0.3 + 12.7062 * 0.1), rel=1e-4)
    assert stats.itl_s.mean == pytest.approx((0.1 + 0.1 + 0.1 + 0.2) / 4)
    assert stats.itl_s.p50 == pytest.approx(0.1) and stats.itl_s.p99 == pytest.approx(0.197)
    assert stats.itl_s.ci95 is None  # consecutive gaps are not independent draws
    assert stats.tpot_s.mean == pytest.approx((0.1 + 0.15) / 2)
    # tokens/s from the mean durations, as a step's speed is: not a mean of the rates
    assert stats.prefill_tokens_per_s.mean == pytest.approx(20 / 0.3)
    assert stats.decode_tokens_per_s.mean == pytest.approx(4 / 0.25)
    low, high = stats.decode_tokens_per_s.ci95
    assert 0 < low <= 4 / 0.25 <= high == pytest.approx(4 / 0.2)  # floored at the fastest
    one = generation_stats(requests[:1])
    assert one.ttft_s.ci95 is None and one.ttft_s.mean == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no request"):
        generation_stats([])
    with pytest.raises(ValueError, match="differ in shape"):
        generation_stats([requests[0], RequestTimes(0.0, (0.1,), prompt_tokens=10, batch=2)])
