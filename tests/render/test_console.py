"""How durations and sizes read in the terminal."""

import pytest

from dlbench.render.console import hms


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, None),
        (59.6, "0:01:00"),
        (3 * 3600 + 62, "3:01:02"),
        (47 * 3600, "47:00:00"),  # under two days: still H:MM:SS
        (3.5 * 86_400, "3.5 days"),
        (17.6 * 365.25 * 86_400, "17.6 years"),
    ],
)
def test_durations_read_in_the_unit_a_person_would_use(seconds, shown):
    assert hms(seconds) == shown


def _printed(renderable, width):
    import io

    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _runs(n=3, **summary):
    from dlbench.store.stored import StoredRun

    base = {
        "kind": "train", "status": "ok", "workload": "resnet18", "device": "cpu",
        "batch_size": 32, "created_at": "2026-12-05T10:00:00", "data": "synthetic",
        "config": {"image_size": 64}, "mean_speed": 123.4, "speed_ci95": [120.0, 126.0],
        "timed_steps": 100, "quality_verdict": "clean", "accuracy": 0.1,
    }  # fmt: skip
    return [
        StoredRun.from_summary({**base, "run_id": f"20261205-10000{i}-abcde{i}", **summary})
        for i in range(n)
    ]


def test_the_runs_table_at_80_columns_keeps_whole_cells_and_drops_the_least_useful_columns():
    from dlbench.render.run_lists import runs_table

    wide = _printed(runs_table(_runs()), 200)
    assert "Date (UTC)" in wide and "64 px" in wide and "(synthetic)" in wide
    narrow = _printed(runs_table(_runs()), 80)
    assert all(len(line) <= 80 for line in narrow.splitlines())
    assert "…" not in narrow  # no cell cut
    for whole in ("20261205-100000-abcde0", "resnet18", "123.4", "clean", "ok"):
        assert whole in narrow, whole
    assert "Accuracy" not in narrow and "Date (UTC)" not in narrow


def test_a_table_with_nothing_optional_still_fits_by_wrapping_but_never_cuts_its_first_column():
    from dlbench.render.console import table

    rows = [("20261205-100000-abcde0", "a long description " * 6, "1.0")]
    shown = _printed(table(None, ("Run", "Description", "Value"), rows), 60)
    assert "20261205-100000-abcde0" in shown
    assert all(len(line) <= 60 for line in shown.splitlines())


def test_an_element_wise_category_reads_below_a_thousandth_not_zero():
    from dlbench.render.profile import profile_tables
    from dlbench.store.measurements import CategoryTime, StepProfile

    profile = StepProfile(
        available=True,
        categories={
            "matmul": CategoryTime(0.01, 0.8, tflops=1.25),
            "elementwise": CategoryTime(0.002, 0.15, tflops=0.0001),
            "copy": CategoryTime(0.0005, 0.05, tflops=None),
        },
    )
    shown = _printed(profile_tables(profile), 120)
    assert "<0.001" in shown and "0.000" not in shown and "1.250" in shown


def test_the_quick_start_says_what_to_do_when_its_runs_were_contended():
    from dlbench.render.run_lists import quickstart_footer

    clean = _printed(quickstart_footer(_runs(2), "here.sqlite"), 200)
    assert "contended" not in clean and "2 of 2 runs ok" in clean
    busy = _printed(quickstart_footer(_runs(2, quality_verdict="contended"), "here.sqlite"), 200)
    assert "2 of 2 runs were measured contended" in busy
    assert "dlbench quickstart --cpus auto" in busy


def test_the_telemetry_sources_read_on_one_line_below_a_narrow_table():
    from dlbench.render.listings import telemetry_table
    from dlbench.store.measurements import MetricSummary, PhaseTelemetry, TelemetrySummary

    sources = {"cpu": "psutil 7.0 (/proc)", "memory": "psutil 7.0", "disk": "psutil 7.0",
               "network": "psutil 7.0", "gpu": "not available: no NVIDIA driver"}  # fmt: skip
    phase = PhaseTelemetry(1.0, {"cpu.util_percent": MetricSummary(mean=50.0, max=90.0)})
    summary = TelemetrySummary(True, {"run": phase}, sources=sources, interval_s=1.0)
    shown = _printed(telemetry_table(summary), 150)
    line = [row for row in shown.splitlines() if row.startswith("sources: ")]
    assert line == ["sources: " + ", ".join(f"{k} {v}" for k, v in sources.items())]


def test_the_quick_start_table_at_80_columns_wraps_a_cell_rather_than_cut_the_last_column():
    from dlbench.render.run_lists import comparison_table

    runs = _runs(3, workload="param-transformer", config={"seq_len": 1024})
    shown = _printed(comparison_table(runs, "dlbench quickstart"), 80)
    assert all(len(line) <= 80 for line in shown.splitlines())
    assert "…" not in shown and "Status" in shown and "param-transformer" in shown
    assert "1024 tok" in shown and "(synthetic)" in shown
