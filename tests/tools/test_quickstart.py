"""dlbench quickstart's plan and its estimate from earlier quickstarts on this machine."""

from dlbench.records import RunResult
from dlbench.tools.quickstart import estimate, plan


def test_the_estimate_comes_from_earlier_quickstarts_here(store):
    specs = plan("cpu")
    assert estimate(store, specs) == (0.0, len(specs))  # nothing to go by: said as such
    for i, (spec, took) in enumerate([(specs[0], 10.0), (specs[0], 14.0), (specs[1], 30.0)]):
        run_id = f"q{i}"
        store.create_run(run_id, "train", spec.model_dump(mode="json"), **spec.columns())
        store.finish_run(RunResult(run_id=run_id, status="ok", wall_time_s=took))
    assert estimate(store, specs) == (12.0 + 30.0, len(specs) - 2)  # the median of each
