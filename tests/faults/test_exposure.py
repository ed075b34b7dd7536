"""Nothing executes or renders what a user or visitor typed: the report escapes stored text,
the dashboard imports only files from the operator's model folder."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import call_main, one_line_error
from streamlit.testing.v1 import AppTest

from dlbench.dashboard.calculator import confined_model_file, model_files, predict_command
from dlbench.measure.stats import speed_stats
from dlbench.records import RunResult, StepRecord
from dlbench.store.database import Store

EVIL = "<script>alert(1)</script>"
APP = str(Path(__file__).parents[2] / "src" / "dlbench" / "dashboard" / "app.py")


def _result(run_id, speed):
    times = 8 / speed * np.random.default_rng(0).lognormal(0, 0.02, 20)
    steps = tuple(StepRecord(i, 0, float(t), 0.0) for i, t in enumerate(times))
    speed_figures = speed_stats(list(times), [0.0] * 20, 8)
    return RunResult(run_id=run_id, status="ok", error=EVIL, speed=speed_figures, steps=steps)


def test_the_report_escapes_every_stored_text(store, tmp_path, capsys):
    for run_id, device, speed in (("evil-a", "cpu", 100.0), ("evil-b", EVIL, 200.0)):
        store.create_run(
            run_id,
            "train",
            {"tags": {"note": EVIL}},
            workload="lenet-mnist",
            device=device,
            batch_size=8,
        )
        store.set_hardware(run_id, {"hostname": EVIL, "cpu": {"model": EVIL}, "os": EVIL})
        store.finish_run(_result(run_id, speed))
    out = tmp_path / "report.html"
    code, _, err = call_main(capsys, "report", "--all", "--out", str(out), "--title", EVIL)
    assert code == 0, err
    page = out.read_text()
    assert EVIL not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _calculator(db_path, monkeypatch, *argv):
    from synthetic_runs import stored_runs, summaries

    store = Store(str(db_path))
    stored_runs(store, summaries(n=12), device="EPYC")
    store.close()
    monkeypatch.setattr(sys, "argv", ["app.py", *argv])
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.sidebar.radio[0].set_value("Calculator").run()
    assert not app.exception
    return app


def test_the_dashboard_offers_no_model_file_without_a_model_folder(db_path, monkeypatch):
    app = _calculator(db_path, monkeypatch)
    assert app.radio(key="how").options == ["Zoo workload", "Family"]


def test_the_dashboard_offers_only_the_model_folders_files(db_path, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "mine.py").write_text("def build(): pass\n")
    (tmp_path / "elsewhere.py").write_text("def build(): pass\n")
    app = _calculator(db_path, monkeypatch, "--model-dir", str(folder))
    app.radio(key="how").set_value("Model file").run()
    assert app.selectbox[0].options == ["mine.py"]


@pytest.mark.parametrize(
    "name",
    ["../outside.py", "/etc/passwd", "sub/inner.py", "notes.txt", "link.py", "missing.py"],
)
def test_a_model_file_outside_the_folder_is_refused(tmp_path, name):
    folder = tmp_path / "models"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "inner.py").write_text("def build(): pass\n")
    (folder / "notes.txt").write_text("")
    (tmp_path / "outside.py").write_text("import os; os.system('touch /tmp/pwned')\n")
    (folder / "link.py").symlink_to(tmp_path / "outside.py")
    with pytest.raises(ValueError):
        confined_model_file(folder, name, "build")


def test_only_the_folders_own_py_files_are_offered_and_accepted(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "mine.py").write_text("def build(): pass\n")
    (folder / "readme.md").write_text("")
    assert model_files(folder) == ["mine.py"] and model_files(None) == []
    assert confined_model_file(folder, "mine.py", "build") == f"{folder.resolve()}/mine.py:build"
    with pytest.raises(ValueError, match="not a Python function name"):
        confined_model_file(folder, "mine.py", "build; import os")
    with pytest.raises(ValueError, match="start the dashboard with --model-dir"):
        predict_command(
            "sqlite:///x", {"how": "Model file", "model_file": "mine.py", "function": "build"}, None
        )


# Rich markup (an unmatched closing tag raises, a link restyles) and a terminal escape.
MARKUP = "[/x][link=file:///etc/passwd]L[/link][bold]\x1b[2J"
SHOWN = "[/x][link=file:///etc/passwd]L[/link][bold]"


def _markup_runs(store):
    """Two finished runs whose every stored text is hostile, as a foreign writer could leave."""
    from dlbench.records import Quality

    for run_id, device, speed in (("mk-a", "cpu", 100.0), ("mk-b", "cuda:0", 200.0)):
        store.create_run(
            run_id,
            "train",
            {"tags": {}, "optimizer": MARKUP},
            workload="lenet-mnist",
            device=device,
            batch_size=8,
            sweep=MARKUP,
            data=MARKUP,
            dataset=MARKUP,
        )
        store.set_hardware(
            run_id, {"hostname": MARKUP, "os": MARKUP, "cpu": {"model": MARKUP}}, device_name=MARKUP
        )
        store.set_tags(run_id, {"note": MARKUP + run_id})
        quality = Quality("noisy", (MARKUP,), 0.1, 0.0, None)
        result = _result(run_id, speed)
        from dataclasses import replace

        store.finish_run(replace(result, error=MARKUP, quality=quality))


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["show", "mk-a", "--telemetry", "--steps"],
        ["compare", "mk-a", "mk-b"],
        ["compare", "--by", "tags.note", "mk-a", "mk-b"],
        ["cost", "mk-a", "mk-b", "--price-per-hour", "1"],
        ["scaling"],
    ],
    ids=" ".join,
)
def test_stored_markup_reaches_the_terminal_as_text(store, capsys, command):
    _markup_runs(store)
    code, out, err = call_main(capsys, *command)
    assert code == 0, err
    assert "\x1b[2J" not in out + err  # no escape sequence from the store reaches the terminal
    if command[0] == "show" or "tags.note" in command:
        assert SHOWN in out.replace("\n", "")


def test_a_tag_or_baseline_name_in_markup_is_text_or_refused(store, capsys):
    _markup_runs(store)
    code, out, err = call_main(capsys, "tag", "mk-a", "note=[/bold]")
    assert code == 0, err
    code, out, err = call_main(capsys, "show", "mk-a")
    assert code == 0 and "note=[/bold]" in out, err
    line = one_line_error(*call_main(capsys, "baseline", "set", "[/x]", "mk-a")[::2])
    assert "baseline name '[/x]' is not 1 to 128 letters" in line
    for bad in ("a/b", "a\nb", ""):
        one_line_error(*call_main(capsys, "baseline", "set", bad, "mk-a")[::2])
    line = one_line_error(*call_main(capsys, "tag", "mk-a", "--exclude", " ")[::2])
    assert "--exclude needs a reason" in line
