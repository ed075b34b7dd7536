import logging
import time

import pytest

from dlbench.records import TelemetrySample
from dlbench.telemetry import build_sources
from dlbench.telemetry.base import SourceUnavailable
from dlbench.telemetry.sampler import NullSampler, Sampler


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


def test_ticks_follow_fixed_deadlines_without_drift():
    source = Counting()
    stored, sink = _collect()
    sampler = Sampler([source], 0.05, sink).start()
    time.sleep(1.0)
    report = sampler.stop()
    ticks = [t - source.reads[0] for t in source.reads[:-1]]  # the last is the closing read
    assert 15 <= len(ticks) <= 22
    # Each tick lands near k x interval from the first: the period does not accumulate error.
    for k, t in enumerate(ticks):
        assert abs(t - k * 0.05) < 0.04 + report.missed_ticks * 0.05
    assert report.samples == sum(len(batch) for batch in stored) == len(source.reads)


def test_samples_carry_the_phase_they_were_taken_in():
    stored, sink = _collect()
    sampler = Sampler([Counting()], 0.02, sink).start()
    sampler.set_phase("warmup")
    time.sleep(0.15)
    sampler.set_phase("train")
    time.sleep(0.15)
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
        time.sleep(0.3)
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

    sampler = Sampler([Counting()], 0.01, flaky_sink, flush_samples=5).start()
    time.sleep(0.3)
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
    time.sleep(2.2 * interval + 0.3)
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
    time.sleep(0.2)
    sampler.stop()
    foreign = [s for batch in stored for s in batch if s.metric == "cpu.foreign_cores"]
    assert foreign and all(s.value == pytest.approx(1.1) for s in foreign)
    # Same tick, same time stamp as the readings it comes from.
    busy = {s.t_s for batch in stored for s in batch if s.metric == "cpu.busy_cores"}
    assert {s.t_s for s in foreign} == busy
    stored, sink = _collect()
    Sampler([sources[0]], 0.05, sink).start().stop()
    assert not any(s.metric == "cpu.foreign_cores" for batch in stored for s in batch)
