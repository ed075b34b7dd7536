"""Collectives' sizes, bandwidths and bus factors, on constructed timings (nccl-tests' rules)."""

from __future__ import annotations

import pytest

from dlbench.errors import ConfigError
from dlbench.measure.collectives import (
    CollectiveResult,
    bus_factor,
    elements_for,
    parse_operations,
    parse_sizes,
    result_from,
)


@pytest.mark.parametrize(
    ("operation", "ranks", "factor"),
    [
        ("all_reduce", 2, 1.0),
        ("all_reduce", 4, 1.5),
        ("all_reduce", 8, 1.75),
        ("all_gather", 4, 0.75),
        ("reduce_scatter", 8, 0.875),
        ("all_to_all", 2, 0.5),
        ("broadcast", 16, 1.0),
    ],
)
def test_bus_factors_are_nccl_tests(operation, ranks, factor):
    assert bus_factor(operation, ranks) == pytest.approx(factor)


def test_bandwidths_of_constructed_timings():
    # 1 MiB all-reduced over 4 ranks in 100, 110 and 90 µs: 100 µs on average.
    result = CollectiveResult("all_reduce", 2**20, 4, 20, (100e-6, 110e-6, 90e-6), True)
    assert result.time_s == pytest.approx(100e-6)
    assert result.algbw_gb_s == pytest.approx(2**20 / 100e-6 / 1e9)
    assert result.busbw_gb_s == pytest.approx(result.algbw_gb_s * 1.5)
    low, high = result.busbw_ci95_gb_s
    assert low < result.busbw_gb_s < high
    # The fast end is bounded by the fastest round: no bandwidth above what was seen.
    assert high <= 2**20 * 1.5 / 90e-6 / 1e9 + 1e-9


def test_a_stored_result_round_trips_and_a_garbled_one_is_left_out():
    result = CollectiveResult("broadcast", 4096, 2, 50, (1e-5, 2e-5), False)
    assert result_from(result.as_dict()) == result
    assert result_from({"operation": "all_reduce"}) is None
    assert result_from({**result.as_dict(), "round_times_s": [0.0]}) is None
    assert result_from({**result.as_dict(), "operation": "<b>x</b>"}) is None


def test_sizes_double_from_the_first_to_the_last():
    assert parse_sizes("8B:64") == (8, 16, 32, 64)
    assert parse_sizes("1KiB:4K") == (1024, 2048, 4096)
    assert parse_sizes("8B:1GiB")[-1] == 2**30
    assert parse_sizes("1M,4,1MiB") == (4, 2**20)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1GiB:8B", "larger than the last"),
        ("2B", "between 4 bytes and 64 GiB"),
        ("1TiB", "not a size"),
        ("128GiB", "between 4 bytes and 64 GiB"),
        ("eight", "not a size"),
        ("4:1e9", "not a size"),
        ("", "empty"),
    ],
)
def test_bad_sizes_are_one_line(text, says):
    with pytest.raises(ConfigError, match=says):
        parse_sizes(text)


def test_operations_are_named_or_all():
    assert parse_operations("all")[0] == "all_reduce"
    assert parse_operations("broadcast,all_reduce,broadcast") == ("broadcast", "all_reduce")
    with pytest.raises(ConfigError, match="allreduce is not a collective"):
        parse_operations("allreduce")


def test_split_buffers_hold_whole_parts_per_rank():
    assert elements_for("all_reduce", 10, 4) == 2
    assert elements_for("all_gather", 8, 4) == 4  # at least one element per rank
    assert elements_for("reduce_scatter", 4096, 3) == 1023
    assert elements_for("broadcast", 4, 8) == 1
