"""`dlbench monitor -- COMMAND` as a user runs it."""

import json
import signal
import subprocess
import sys

import pandas as pd
import pytest

from dlbench.store.database import Store

from conftest import cli_env, wait_for

BUSY_CHILD = (
    "import subprocess, sys, time; "
    "c = subprocess.Popen([sys.executable, '-c', "
    "'import time\\nwhile time.process_time() < 1.5: pass']); "
    "c.wait(); sys.exit(7)"
)


def _monitor(db_path, *args, **kwargs):
    return subprocess.run(
        ["dlbench", "monitor", *args],
        capture_output=True,
        text=True,
        env=cli_env(db_path),
        timeout=120,
        **kwargs,
    )


def test_the_command_exit_code_passes_through_and_the_run_is_stored(db_path):
    done = _monitor(
        db_path,
        "--interval",
        "0.1",
        "--name",
        "train-script",
        "--",
        sys.executable,
        "-c",
        BUSY_CHILD,
    )
    assert done.returncode == 7, done.stderr
    (run,) = Store(str(db_path)).list_runs()
    assert run["kind"] == "monitor" and run["workload"] == "train-script"
    assert run["status"] == "failed" and run["error"] == "exited with code 7"
    result = run["result"]
    assert result["exit_code"] == 7 and result["wall_time_s"] >= 1.5
    command = result["telemetry"]["phases"]["command"]["metrics"]
    assert command["proc.count"]["max"] == 2  # the command and its child
    assert command["proc.cpu_percent"]["max"] > 50
    assert run["config"]["command"][:2] == [sys.executable, "-c"]
    assert "Telemetry every 0.1 s" in done.stderr
    # The child's 1.5 s of CPU is the command's own work, though it ended before the command.
    quality = result["quality"]
    assert quality["own_cpu_cores"] * quality["window_s"] == pytest.approx(1.5, abs=0.25)
    assert run["quality_verdict"] == quality["verdict"] and f"quality: {quality['verdict']}" in (
        done.stderr
    )


def test_a_successful_command_is_ok_and_keeps_its_own_options(db_path):
    done = _monitor(
        db_path, "--", sys.executable, "-c", "import sys; print(sys.argv[1:])", "--interval", "9"
    )
    assert done.returncode == 0 and "['--interval', '9']" in done.stdout
    (run,) = Store(str(db_path)).list_runs()
    assert run["status"] == "ok" and run["config"]["interval"] == 1.0


def test_a_monitor_run_is_shown_as_a_command_never_as_a_training(db_path, capsys, tmp_path):
    from conftest import call_main

    done = _monitor(db_path, "--name", "mytest", "--", sys.executable, "-c", "pass")
    assert done.returncode == 0, done.stderr
    (run,) = Store(str(db_path)).list_runs()
    code, out, _ = call_main(capsys, "show", run["run_id"], "--db", str(db_path))
    assert code == 0
    assert f"{sys.executable} -c pass" in out and "exit code" in out and "wall time" in out
    for training_only in ("None data", "framework", "fp32", "latency batch", "batch size"):
        assert training_only not in out
    code, out, _ = call_main(capsys, "show", run["run_id"], "--json", "--db", str(db_path))
    summary = json.loads(out)
    assert summary["exit_code"] == 0 and summary["wall_time_s"] > 0
    csv = tmp_path / "runs.csv"
    code, _, _ = call_main(
        capsys, "export", "--format", "csv", "--out", str(csv), "--db", str(db_path)
    )

    (row,) = pd.read_csv(csv).to_dict("records")
    assert row["exit_code"] == 0 and row["wall_time_s"] > 0 and row["command"].endswith("-c pass")


def test_ctrl_c_reaches_the_command_and_what_was_sampled_is_kept(db_path, tmp_path):
    ready = tmp_path / "handler-installed"
    script = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: sys.exit(42))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "while True: time.sleep(0.05)\n"
    )
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    parent = subprocess.Popen(
        ["dlbench", "monitor", "--interval", "0.1", "--", sys.executable, "-c", script],
        env=cli_env(db_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(ready.exists)  # the command can answer Ctrl-C now
        parent.send_signal(signal.SIGINT)
        parent.communicate(timeout=30)
        assert parent.returncode == 42  # the command's own answer to Ctrl-C
        (run,) = Store(str(db_path)).list_runs()
        assert run["status"] == "interrupted"
        assert len(Store(str(db_path)).get_samples(run["run_id"])) > 0
        assert bystander.poll() is None  # monitor killed nothing but its own command
    finally:
        bystander.kill()
        bystander.wait()


def test_an_unknown_command_is_a_one_line_error(db_path):
    done = _monitor(db_path, "--", "no-such-program-xyz")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: command not found: no-such-program-xyz (give a program on PATH or a path)"
    )
    done = _monitor(db_path)
    assert done.returncode == 2 and "Missing argument" in done.stderr


def test_show_and_export_telemetry(db_path, tmp_path):
    run_id = json.loads(
        subprocess.run(
            [
                "dlbench",
                "run",
                "mlp-mnist",
                "--steps",
                "30",
                "--warmup",
                "5",
                "--interval",
                "0.1",
                "--json",
                "-",
            ],
            capture_output=True,
            text=True,
            env=cli_env(db_path),
        ).stdout
    )["run_id"]
    shown = subprocess.run(
        ["dlbench", "show", run_id, "--telemetry"],
        capture_output=True,
        text=True,
        env=cli_env(db_path),
    )
    assert "cpu.util_percent" in shown.stdout and "train" in shown.stdout
    as_json = json.loads(
        subprocess.run(
            ["dlbench", "show", run_id, "--telemetry", "--json"],
            capture_output=True,
            text=True,
            env=cli_env(db_path),
        ).stdout
    )
    assert "train" in as_json["telemetry"]["phases"]
    out = tmp_path / "samples.csv"
    done = subprocess.run(
        ["dlbench", "export", "--telemetry", "--run", run_id, "--out", str(out)],
        capture_output=True,
        text=True,
        env=cli_env(db_path),
    )
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "run_id,metric,t_s,wall,phase,value" and len(lines) > 20
