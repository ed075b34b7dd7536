"""dlbench quickstart's plan and its estimate from earlier quickstarts on this machine."""

from datetime import datetime, timedelta, timezone

from dlbench.records import RunResult
from dlbench.store import columns, database
from dlbench.tools.quickstart import estimate, plan


def test_the_estimate_is_each_runs_whole_life_in_earlier_quickstarts_here(store, monkeypatch):
    specs = plan("cpu")
    assert estimate(store, specs) == (0.0, len(specs))  # nothing to go by: said as such
    clock = [datetime(2026, 1, 1, tzinfo=timezone.utc)]

    def now():
        return clock[0].isoformat(timespec="milliseconds")

    monkeypatch.setattr(database, "utc_now", now)
    monkeypatch.setattr(columns, "utc_now", now)
    for i, (spec, took) in enumerate([(specs[0], 10.0), (specs[0], 14.0), (specs[1], 30.0)]):
        run_id = f"q{i}"
        store.create_run(run_id, "train", spec.model_dump(mode="json"), **spec.columns())
        clock[0] += timedelta(seconds=took)  # from the row's creation to the run's end
        store.finish_run(RunResult(run_id=run_id, status="ok", wall_time_s=1.0))
    assert estimate(store, specs) == (12.0 + 30.0, len(specs) - 2)  # the median of each
