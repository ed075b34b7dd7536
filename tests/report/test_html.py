"""The HTML report: self-contained, with figures, insights and honest error bars."""

import html.parser
import re
from types import SimpleNamespace

from dlbench.report.figures import speed_error_bars
from dlbench.report.html import build
from synthetic_runs import stored_device_run


class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.external = []
        self.tags = 0

    def handle_starttag(self, tag, attrs):
        self.tags += 1
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"(https?:)?//", value):
                self.external.append((tag, value))


def test_the_report_is_self_contained_and_has_the_figures(store):
    stored_device_run(store, "cpu-1", "cpu", 0.41, util=98)
    stored_device_run(
        store, "gpu-1", "cuda:0", 0.01, util=12, seed=1, gpu_util=95, name="NVIDIA H100"
    )
    page = build(store, store.runs(), "CPU vs GPU")
    parser = _Collector()
    parser.feed(page)
    assert parser.tags > 50 and parser.external == []
    assert "<link" not in page and "cdn.plot.ly" not in page.split("</script>", 1)[1]
    assert "cpu-1" in page and "gpu-1" in page and "faster than device=cpu" in page
    assert "Hypothesis A (resource use differs): supported" in page
    assert page.count('class="plotly-graph-div"') >= 3  # throughput + a telemetry figure each


def test_the_report_shows_insights_for_many_model_shapes(store):
    from synthetic_runs import stored_runs, summaries

    stored_runs(store, summaries(n=20))
    page = build(store, store.runs(), "calibration")
    assert "Insights: what goes with step time" in page and "X: 20 runs" in page
    assert "Rank correlation with step time, batch size held fixed" in page
    few = build(store, store.runs()[:3], "three runs")
    assert "Insights" not in few


def test_error_bars_come_from_the_interval_and_never_go_below_zero():
    bars = speed_error_bars(
        [
            SimpleNamespace(mean_speed=127.5, speed_ci95=(40.0, 400.0)),
            SimpleNamespace(mean_speed=100.0, speed_ci95=None),
        ]
    )
    assert bars["symmetric"] is False
    assert bars["array"] == [272.5, 0.0] and bars["arrayminus"] == [87.5, 0.0]
    assert all(127.5 - down >= 0 for down in bars["arrayminus"])


def test_profiled_runs_get_a_stacked_bar_of_their_step_time(store):
    from dlbench.records import RunResult

    stored_device_run(store, "plain", "cpu", 0.1, util=90)
    assert "No run here was profiled" in build(store, store.runs(), "one")
    store.create_run("prof", "train", {}, workload="resnet18", device="cpu")
    profile = {
        "available": True,
        "steps": 5,
        "profiled_step_s": 0.12,
        "categories": {
            "convolution": {"seconds_per_step": 0.06, "share": 0.6, "tflops": 0.2},
            "other": {"seconds_per_step": 0.04, "share": 0.4, "tflops": None},
        },
        "layers": [],
    }
    store.finish_run(RunResult(run_id="prof", status="ok", profile=profile))
    page = build(store, store.runs(), "two")
    assert "Where the step time goes (profiled runs)" in page
    assert "Where a training step" in page and "No run here was profiled" not in page
