import time

import pytest

from dlbench.measure.timer import StepTimer, time_calls


class RecordingSync:
    """A device whose pending work takes ``delay`` seconds to finish at each sync."""

    def __init__(self, delay: float = 0.0):
        self.calls = 0
        self.delay = delay

    def __call__(self):
        self.calls += 1
        time.sleep(self.delay)


def test_each_step_ends_with_a_sync_and_includes_the_device_work():
    sync = RecordingSync(delay=0.02)
    timer = StepTimer(sync)
    timer.start_phase()
    for epoch in (0, 0, 1):
        timer.step_start()
        time.sleep(0.005)  # waiting for data
        timer.data_ready(epoch)
        timer.step_end()
    wall = timer.end_phase()
    steps = timer.steps()
    assert sync.calls == 1 + 3 + 1  # phase start, each step, phase end
    assert [s.epoch for s in steps] == [0, 0, 1]
    for step in steps:
        assert step.step_time_s >= 0.02 + 0.005  # the queued device work is inside the step
        assert 0.005 <= step.data_wait_s < step.step_time_s
    assert wall >= sum(s.step_time_s for s in steps)


def test_a_step_cut_short_is_not_counted():
    timer = StepTimer(RecordingSync())
    timer.start_phase()
    timer.step_start()
    timer.data_ready(0)
    timer.step_end()
    timer.step_start()  # interrupted while waiting for data
    assert timer.completed_steps == 1
    assert len(timer.steps()) == 1
    assert timer.elapsed_s() == pytest.approx(timer.steps()[0].step_time_s, rel=0.5, abs=1e-3)


def test_time_calls_stops_at_its_budget_but_times_at_least_once():
    slow = time_calls(lambda: time.sleep(0.03), RecordingSync(), repeats=100, budget_s=0.05)
    assert 1 <= len(slow) < 100
    assert all(d >= 0.03 for d in slow)
    fast = time_calls(lambda: None, RecordingSync(), repeats=7, budget_s=10)
    assert len(fast) == 7
