import logging
import random
import time

import pytest

from dlbench.records import TelemetrySample
from dlbench.telemetry import build_sources
from dlbench.telemetry.base import SourceUnavailable
from dlbench.telemetry.sampler import NullSampler, Sampler, next_deadline

from conftest import wait_for


class Counting:
    name = "counting"

    def __init__(self):
        self.reads = []

    def open(self):
        pass

    def read(self, now):
        self.reads.append(now)
        return {"x.value": float(len(self.reads))}

    def close(self):
        pass


class Breaks(Counting):
    name = "breaks"

    def read(self, now):
        if len(self.reads) == 2:
            raise OSError("sensor vanished")
        return super().read(now)


class Absent(Counting):
    name = "absent"

    def open(self):
        raise SourceUnavailable("not on this machine")


def _collect():
    stored: list[list[TelemetrySample]] = []
    return stored, stored.append


def test_deadlines_stay_on_the_grid_and_skip_what_a_slow_tick_missed():
    # A clock driven by hand: ticks that take 0-40 ms of a 50 ms period never shift the grid.
    rng = random.Random(0)
    deadline = 0.0
    for k in range(1, 1000):
        now = deadline + rng.uniform(0, 0.04)
        deadline, skipped = next_deadline(deadline, now, 0.05)
        assert skipped == 0 and deadline == pytest.approx(k * 0.05)
    # A tick that took 130 ms: the deadlines at +50 and +100 ms have passed; the next is +150.
    assert next_deadline(1.0, 1.13, 0.05) == (pytest.approx(1.15), 2)
    assert next_deadline(1.0, 1.05, 0.05) == (pytest.approx(1.05), 0)  # exactly on time


def test_every_tick_is_stored_by_the_time_the_sampler_stops():
    source = Counting()
    stored, sink = _collect()
    sampler = Sampler([source], 0.01, sink).start()
    wait_for(lambda: len(source.reads) >= 5)
    report = sampler.stop()
    assert report.ticks == len(source.reads) and report.ticks >= 5
    assert report.samples == sum(len(batch) for batch in stored) == len(source.reads)


def test_samples_carry_the_phase_they_were_taken_in():
    stored, sink, source = *_collect(), Counting()
    sampler = Sampler([source], 0.02, sink).start()
    sampler.set_phase("warmup")
    seen = len(source.reads)
    wait_for(lambda: len(source.reads) >= seen + 2)
    sampler.set_phase("train")
    seen = len(source.reads)
    wait_for(lambda: len(source.reads) >= seen + 2)
    sampler.stop()
    phases = [s.phase for batch in stored for s in batch]
    assert phases[-1] == "train" and "warmup" in phases
    assert phases.index("train") > phases.index("warmup")
    times = [s.t_s for batch in stored for s in batch]
    walls = [s.wall for batch in stored for s in batch]
    assert times == sorted(times) and walls == sorted(walls)
    assert abs(walls[0] - time.time()) < 60


def test_a_failing_source_is_disabled_with_one_warning_and_the_rest_go_on(caplog):
    good, bad = Counting(), Breaks()
    stored, sink = _collect()
    with caplog.at_level(logging.WARNING, logger="dlbench.telemetry"):
        sampler = Sampler([bad, good, Absent()], 0.02, sink).start()
        wait_for(lambda: len(good.reads) > 5)
        report = sampler.stop()
    assert [r.message for r in caplog.records].count(
        "telemetry source breaks failed and is disabled: sensor vanished"
    ) == 1
    assert report.sources["breaks"].startswith("disabled: OSError: sensor vanished")
    assert report.sources["absent"] == "unavailable: not on this machine"
    assert report.sources["counting"] == "ok"
    assert len(good.reads) > 5 and len(bad.reads) == 2


def test_samples_are_flushed_in_batches_and_a_failed_batch_is_retried(caplog):
    calls = []

    def flaky_sink(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("database is locked")

    source = Counting()
    sampler = Sampler([source], 0.01, flaky_sink, flush_samples=5).start()
    wait_for(lambda: len(calls) >= 2 and len(source.reads) >= 10)  # then one refusal
    report = sampler.stop()
    # The refused batch is kept and goes again with the next one; nothing is left unsaved.
    assert len(calls) >= 3 and calls[2] > calls[1] and max(calls[3:] or [0]) <= 6
    assert "not stored, kept in memory meanwhile: database is locked" in caplog.text
    assert sampler.unsaved == []
    assert report.ticks >= 10 and report.cpu_time_per_tick_s > 0


@pytest.mark.parametrize("interval", [0.1, 1.0])
def test_real_sources_at_the_intervals_users_ask_for(interval):
    stored, sink = _collect()
    sampler = Sampler(build_sources(), interval, sink).start()
    wait_for(lambda: sampler.report.ticks >= 3, timeout_s=30 * interval)
    report = sampler.stop()
    metrics = {s.metric for batch in stored for s in batch}
    assert {"cpu.util_percent", "mem.used_bytes", "proc.rss_bytes"} <= metrics
    assert report.ticks >= 3
    assert report.sources["cpu"].startswith("ok")


def test_null_sampler_does_nothing():
    sampler = NullSampler().start()
    sampler.set_phase("train")
    assert sampler.stop().ticks == 0


class Fixed(Counting):
    def __init__(self, name, values):
        super().__init__()
        self.name, self.values = name, values

    def read(self, now):
        return dict(self.values)


def test_other_works_cores_are_derived_tick_by_tick():
    stored, sink = _collect()
    sources = [
        Fixed("cpu", {"cpu.busy_cores": 1.9, "cpu.util_percent": 95.0}),
        Fixed("process", {"proc.cpu_percent": 80.0}),
    ]
    sampler = Sampler(sources, 0.05, sink).start()
    wait_for(lambda: sampler.report.ticks >= 2)
    sampler.stop()
    foreign = [s for batch in stored for s in batch if s.metric == "cpu.foreign_cores"]
    assert foreign and all(s.value == pytest.approx(1.1) for s in foreign)
    # Same tick, same time stamp as the readings it comes from.
    busy = {s.t_s for batch in stored for s in batch if s.metric == "cpu.busy_cores"}
    assert {s.t_s for s in foreign} == busy
    stored, sink = _collect()
    Sampler([sources[0]], 0.05, sink).start().stop()
    assert not any(s.metric == "cpu.foreign_cores" for batch in stored for s in batch)
