"""The dashboard's pages, headless with Streamlit's AppTest, on a real store."""

import re
from importlib import resources

import pytest
from streamlit.testing.v1 import AppTest

from dlbench.records import RunResult, SpeedStats, StepRecord, TelemetrySample
from dlbench.store.database import Store

APP = str(resources.files("dlbench.dashboard") / "app.py")


def shown(element):
    """What a reader sees of a Markdown element: stored text is escaped character by
    character (and joined, so that addresses stay text), and reads as written."""
    return re.sub(r"\\(.)", r"\1", element.value).replace("\u2060", "")


def _add_run(
    store,
    run_id,
    device="cpu",
    status="ok",
    telemetry=True,
    speed=100.0,
    framework="pytorch",
    quality=None,
):
    store.create_run(
        run_id,
        "train",
        {"workload": "lenet-mnist", "gpus": 1},
        workload="lenet-mnist",
        framework=framework,
        device=device,
        batch_size=64,
        precision="fp32",
    )
    store.set_hardware(
        run_id,
        {"hostname": f"host-{device}", "cpu": {"model": "EPYC"}, "gpus": [], "memory_bytes": 2**34},
        device=device,
        device_name=device.upper(),
        num_gpus=0,
    )
    if telemetry:
        store.add_samples(
            run_id,
            [
                TelemetrySample(i * 0.5, 1e9 + i, "warmup" if i < 5 else "train", metric, value)
                for i in range(40)
                for metric, value in (("cpu.util_percent", 50 + i), ("mem.used_bytes", 2e9 + i))
            ],
        )
    if status == "ok":
        steps = tuple(StepRecord(i, 0, 64 / speed * (1 + 0.01 * (i % 3)), 0.0) for i in range(30))
        stats = SpeedStats(30, 0.64, 0.64, 0.65, speed, speed, speed, speed, 1.0, 0.5, 0.0, 0.0,
                           (0.9 * speed, 1.1 * speed))  # fmt: skip
        store.finish_run(
            RunResult(run_id=run_id, status="ok", speed=stats, steps=steps, quality=quality)
        )
    else:
        store.finish_run(RunResult(run_id=run_id, status=status, error="CUDA out of memory"))


@pytest.fixture
def filled(db_path):
    store = Store(str(db_path))
    _add_run(store, "20260101-000001-aaaaaa", speed=100.0)
    _add_run(store, "20260101-000002-bbbbbb", device="cuda:0", speed=900.0)
    _add_run(store, "20260101-000003-cccccc", status="oom", telemetry=False)
    store.close()
    return db_path


def _app(db_path):
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()  # argv holds pytest's arguments: the app falls back to DLBENCH_DB (db_path)
    return app


def test_an_empty_store_says_how_to_produce_results(db_path):
    Store(str(db_path)).close()
    app = _app(db_path)
    assert not app.exception
    assert "dlbench quickstart" in shown(app.info[0])


def test_runs_page_lists_every_run_with_its_status(filled):
    app = _app(filled)
    assert not app.exception
    table = app.dataframe[0].value
    assert len(table) == 3 and set(table["status"]) == {"ok", "oom"}
    app.multiselect(key="filter_status").select("oom").run()
    assert list(app.dataframe[0].value["run_id"]) == ["20260101-000003-cccccc"]


def test_telemetry_overlays_one_trace_per_selected_run(filled):
    app = _app(filled)
    app.sidebar.radio[0].set_value("Telemetry").run()
    assert "Select runs" in shown(app.info[0])
    app.sidebar.multiselect[0].set_value(["20260101-000001-aaaaaa", "20260101-000002-bbbbbb"]).run()
    assert not app.exception
    charts = app.get("plotly_chart")
    assert charts, "no chart drawn"
    import json

    figure = json.loads(charts[0].proto.spec)
    assert [trace["name"] for trace in figure["data"]] == [
        "20260101-000001-aaaaaa",
        "20260101-000002-bbbbbb",
    ]
    assert any(shape.get("fillcolor") for shape in figure["layout"]["shapes"])  # phases shaded


def test_a_run_without_telemetry_says_so(filled):
    app = _app(filled)
    app.sidebar.radio[0].set_value("Telemetry").run()
    app.sidebar.multiselect[0].set_value(["20260101-000003-cccccc"]).run()
    assert "no telemetry stored" in shown(app.warning[0])


def test_compare_page_shows_the_verdict_and_failed_runs(filled):
    app = _app(filled)
    app.sidebar.radio[0].set_value("Compare").run()
    app.sidebar.multiselect[0].set_value(
        ["20260101-000001-aaaaaa", "20260101-000002-bbbbbb", "20260101-000003-cccccc"]
    ).run()
    assert not app.exception
    assert "oom" in shown(app.error[0])
    assert "device=cuda:0 is" in shown(app.success[0]) and "faster than device=cpu" in (
        shown(app.success[0])
    )


def test_compare_page_groups_frameworks_side_by_side(db_path):
    store = Store(str(db_path))
    _add_run(store, "20260101-000001-aaaaaa", speed=100.0)
    _add_run(store, "20260101-000002-bbbbbb", speed=160.0, framework="tensorflow")
    store.close()
    app = _app(db_path)
    app.sidebar.radio[0].set_value("Compare").run()
    app.sidebar.multiselect[0].set_value(["20260101-000001-aaaaaa", "20260101-000002-bbbbbb"]).run()
    assert not app.exception
    verdict = shown(app.success[0])
    assert "framework=tensorflow is" in verdict and "than framework=pytorch" in verdict


@pytest.mark.parametrize("page", ["Scaling", "Hardware", "Calculator"])
def test_other_pages_render(filled, page):
    app = _app(filled)
    app.sidebar.radio[0].set_value(page).run()
    assert not app.exception
    if page == "Hardware":
        assert set(app.dataframe[0].value.columns) == {"host-cpu", "host-cuda:0"}


def test_the_dashboard_cannot_change_the_database(filled):
    store = Store(str(filled), read_only=True)
    with pytest.raises(Exception, match="readonly|read-only|read only"):
        store.create_run("x", "train", {})
    assert len(Store(str(filled)).list_runs()) == 3


def test_the_calculator_answers_like_dlbench_predict(db_path):
    from synthetic_runs import stored_runs, summaries

    store = Store(str(db_path))
    stored_runs(store, summaries(n=30), device="EPYC")
    store.close()
    app = _app(db_path)
    app.sidebar.radio[0].set_value("Calculator").run()
    assert not app.exception
    app.radio(key="how").set_value("Family").run()
    app.button[0].click().run(timeout=120)  # the form's Predict button
    assert not app.exception and not app.error, [shown(e) for e in app.error]
    labels = [m.label for m in app.metric]
    assert labels == ["Step time", "Epoch", "Total", "Cost (USD)"]
    assert any("90%:" in shown(c) for c in app.caption)
    notes = shown(app.success[0])
    assert "predictor:" in notes and "learned from 30 runs" in notes
    assert len(app.get("plotly_chart")) == 2  # the insights figures
    app.selectbox(key="insights_device").set_value("EPYC").run()  # another rerun
    assert [m.label for m in app.metric] == labels  # the answer stays


def test_compare_page_says_which_runs_were_measured_on_a_busy_machine(db_path):
    from dlbench.records import Quality

    store = Store(str(db_path))
    busy = Quality("contended", ("other work took 1.50 of the 2 usable cores",), 1.5, 0.1, None)
    _add_run(store, "20260101-000001-aaaaaa", speed=100.0, quality=busy)
    _add_run(store, "20260101-000002-bbbbbb", device="cuda:0", speed=900.0,
             quality=Quality("clean", ("other work took 0.01 of 2",), 0.01, 0.1, None))  # fmt: skip
    store.close()
    app = _app(db_path)
    assert list(app.dataframe[0].value["quality_verdict"]) == ["clean", "contended"]
    app.multiselect(key="filter_quality").select("contended").run()
    assert list(app.dataframe[0].value["run_id"]) == ["20260101-000001-aaaaaa"]
    app.multiselect(key="filter_quality").unselect("contended").run()
    app.sidebar.radio[0].set_value("Compare").run()
    app.sidebar.multiselect[0].set_value(["20260101-000001-aaaaaa", "20260101-000002-bbbbbb"]).run()
    assert not app.exception
    errors = [shown(e) for e in app.error]
    assert any(e.startswith("Warning: measured under contention: device=cpu") for e in errors)
    assert any("20260101-000001-aaaaaa: contended — other work took 1.50" in e for e in errors)
    import json

    traces = json.loads(app.get("plotly_chart")[0].proto.spec)["data"]  # one per device
    assert [t["name"] for t in traces] == ["cpu", "cuda:0"]
    assert [t["error_y"]["arrayminus"][0] for t in traces] == pytest.approx([10, 90])
    assert [t["error_y"]["array"][0] for t in traces] == pytest.approx([10, 90])


def test_the_runs_table_reads_as_words_and_a_monitor_run_is_not_a_training(db_path):
    from dlbench.dashboard.app import RUN_TABLE_LABELS

    store = Store(str(db_path))
    _add_run(store, "20260101-000001-aaaaaa")
    store.create_run("20260101-000002-bbbbbb", "monitor", {"command": ["make"]}, workload="make",
                     device="system")  # fmt: skip
    store.finish_run(RunResult(run_id="20260101-000002-bbbbbb", status="ok", wall_time_s=3.0))
    store.close()
    app = _app(db_path)
    assert not app.exception
    table = app.dataframe[0].value.set_index("run_id")
    assert table.loc["20260101-000002-bbbbbb", "device_name"] == "(monitor: make)"
    label = RUN_TABLE_LABELS["mean_speed"]
    assert label["label"] == "Speed" and "sequences/s for language models" in label["help"]
    # a monitor run has no batch or GPU count, a CPU run no GPU count: "—", never "None"
    assert table.loc["20260101-000002-bbbbbb", "batch"] == "—"
    assert table.loc["20260101-000001-aaaaaa", "gpus"] == "—"
    assert all(
        not isinstance(v, str) or " " in v or v[0].isupper() for v in RUN_TABLE_LABELS.values()
    )


def test_compare_page_shows_a_language_models_tokens_and_perplexity(db_path):
    store = Store(str(db_path))
    run_id = "20260101-000004-dddddd"
    store.create_run(
        run_id, "train", {"workload": "gpt", "seq_len": 64, "gpus": 1}, workload="gpt",
        framework="pytorch", device="cpu", batch_size=16, precision="fp32",
    )  # fmt: skip
    stats = SpeedStats(30, 0.1, 0.1, 0.1, 160.0, 160.0, 150.0, 170.0, 1.0, 0.5, 0.0, 0.0,
                       (150.0, 170.0))  # fmt: skip
    store.finish_run(
        RunResult(
            run_id=run_id,
            status="ok",
            speed=stats,
            tokens_per_s=10_240.0,
            tokens_per_s_ci95=(9_600.0, 10_880.0),
            val_loss=2.0,
            perplexity=7.389,
        )  # fmt: skip
    )
    store.close()
    app = _app(db_path)
    app.sidebar.radio[0].set_value("Compare").run()
    app.sidebar.multiselect[0].set_value([run_id]).run()
    assert not app.exception
    assert "Language models" in [h.value for h in app.subheader]
    table = app.dataframe[0].value
    assert table["tokens/s"][0] == 10_240 and table["95% CI"][0] == "9,600–10,880"
    assert table["perplexity"][0] == pytest.approx(7.389)
