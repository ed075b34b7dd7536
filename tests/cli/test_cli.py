"""The dlbench command as a user runs it: real processes, a real database file."""

import json
import signal
import subprocess
import time

import psutil
import pytest

from dlbench.store.database import Store
from dlbench.workloads import WORKLOADS

from conftest import call_main, cli_env, dlbench_here, one_line_error, write_mnist

REQUIRED = {
    "run_id",
    "workload",
    "device",
    "status",
    "batch_size",
    "hardware",
    "mean_step_time_s",
    "mean_speed",
    "speed_stderr",
    "speed_jitter",
    "median_speed",
    "p5_speed",
    "p95_speed",
    "timed_steps",
    "throughput_e2e",
    "train_time_s",
    "val_time_s",
    "total_time_s",
    "accuracy",
    "inference",
    "peak_memory_bytes",
    "params",
    "flops_per_step",
    "achieved_tflops",
    "mfu",
}
FAST = ["--steps", "13", "--warmup", "3", "--val-batches", "2"]


def dlbench(db_path, *args, timeout=300):
    return subprocess.run(
        ["dlbench", *args], capture_output=True, text=True, env=cli_env(db_path), timeout=timeout
    )


def test_run_prints_stores_and_writes_the_json_summary(db_path):
    done = dlbench(db_path, "run", "mlp-mnist", *FAST, "--tag", "site=ci", "--json", "-")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert REQUIRED <= set(summary)
    assert {"load_time_s", "predict_time_s", "latency_p50_ms", "latency_p95_ms"} <= set(
        summary["inference"]
    )
    assert summary["status"] == "ok" and summary["timed_steps"] == 10
    assert summary["tags"] == {"site": "ci"}
    assert summary["mean_speed"] == pytest.approx(
        summary["batch_size"] / summary["mean_step_time_s"]
    )
    stored = Store(str(db_path)).get_run(summary["run_id"])
    assert stored["mean_speed"] == summary["mean_speed"]
    assert "mean speed" in done.stderr  # the table goes to stderr when JSON takes stdout


def test_phases_are_the_users_to_skip(db_path):
    done = dlbench(db_path, "run", "mlp-mnist", *FAST, "--no-validate", "--no-infer", "--json", "-")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "ok" and summary["timed_steps"] == 10
    assert summary["val_time_s"] is None and summary["accuracy"] is None
    assert summary["inference"] is None and summary["phase_reached"] == "done"
    assert summary["config"]["no_validate"] is True and summary["config"]["no_infer"] is True


def test_reading_results_back(db_path, tmp_path, capsys):
    run_id = json.loads(dlbench(db_path, "run", "lenet-mnist", *FAST, "--json", "-").stdout)[
        "run_id"
    ]
    listing = dlbench_here(capsys, "runs")
    assert run_id in listing.stdout and "lenet-mnist" in listing.stdout
    shown = json.loads(dlbench_here(capsys, "show", run_id[:17], "--steps", "--json").stdout)
    assert shown["run_id"] == run_id and len(shown["steps"]) == 10
    assert "Timed steps" in dlbench_here(capsys, "show", run_id, "--steps").stdout
    out = tmp_path / "all.csv"
    assert dlbench_here(capsys, "export", "--format", "csv", "--out", str(out)).returncode == 0
    header = out.read_text().splitlines()[0].split(",")
    for column in (
        "run_id",
        "date",
        "workload",
        "framework",
        "device",
        "device_name",
        "num_gpus",
        "batch_size",
        "mean_speed",
        "mean_step_time_s",
        "speed_stderr",
        "speed_jitter",
        "train_time_s",
        "val_time_s",
        "total_time_s",
        "accuracy",
        "status",
        "staged_from",
    ):
        assert column in header
    assert len(out.read_text().splitlines()) == 2


def test_real_mnist_files_from_the_command_line(db_path, tmp_path):
    write_mnist(tmp_path / "mnist", n_train=200, n_test=50, gz=True)
    done = dlbench(
        db_path,
        "run",
        "lenet-mnist",
        "--data",
        str(tmp_path / "mnist"),
        "--epochs",
        "1",
        "--warmup",
        "1",
        "-b",
        "40",
        "--json",
        "-",
    )
    summary = json.loads(done.stdout)
    assert summary["status"] == "ok" and summary["timed_steps"] == 5
    assert summary["data"] == str(tmp_path / "mnist")


READ_COMMANDS = ("show", "export", "predict")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "resnet-9000"], "unknown workload"),
        (["run", "lenet-mnist", "--batch-size", "0"], "--batch-size"),
        (["run", "lenet-mnist", "--steps", "10", "--warmup", "10"], "--steps"),
        (["run", "lenet-mnist", "--device", "cuda"], "no CUDA GPU"),
        (["run", "lenet-mnist", "--device", "tpu"], "--device"),
        (["run", "lenet-mnist", "--data", "/no/such/dir"], "does not exist"),
        (["run", "lenet-mnist", "--db", "/etc/hostname/x.sqlite"], "results database"),
        (["run", "lenet-mnist", "--steps", "many"], "--steps"),
        (["run", "lenet-mnist", "--frobnicate"], "No such option"),
        (["show", "nothing-like-this"], "no run"),
        (["export", "--format", "xlsx"], "--format"),
        (["run", "lenet-mnist", "--interval", "0"], "--interval"),
        (["monitor", "--interval", "0", "--", "true"], "--interval"),
        (["run", "resnet18", "--device", "cpu", "--precision", "tf32"], "compute capability 8.0"),
        (["run", "resnet18", "--data", "/tmp", "--dataset", "imagenet32"], "no ImageNet32"),
        (["run", "vgg11", "--image-size", "16"], "at least 32x32"),
        (["maxbatch", "resnet18", "--memory-limit", "lots"], "not a size"),
        (["predict", "mlp-mnist", "--dataset-size", "100"], "no stored runs with model"),
        (
            ["predict", "fasterrcnn", "--dataset-size", "100"],
            "only classification and language models",
        ),
        (["infer", "lenet-mnist", "--checkpoint", "/no/x.pt", "--images", "/tmp"], "not exist"),
        (["maxbatch", "resnet18", "--device", "cpu", "--precision", "tf32"], "TF32"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_stores_nothing(db_path, capsys, args, message):
    if args[0] in READ_COMMANDS:  # they never create a database: give them an empty one
        Store(str(db_path)).close()
    code, out, err = call_main(capsys, *args)  # the console entry point, in this process
    assert message in one_line_error(code, err)
    assert "Traceback" not in out + err
    if db_path.exists():
        assert Store(str(db_path)).count_runs() == 0


def test_debug_shows_the_traceback(db_path):
    done = dlbench(db_path, "--debug", "run", "resnet-9000")
    assert done.returncode == 2 and "Traceback" in done.stderr


def _start_long_run(db_path):
    parent = subprocess.Popen(
        ["dlbench", "run", "cifar10-cnn", "--steps", "100000"],
        env=cli_env(db_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if db_path.exists():
            runs = Store(str(db_path)).list_runs()
            if runs and runs[0]["phase_reached"] == "train":
                return parent, runs[0]["run_id"]
        time.sleep(0.3)
    parent.kill()
    raise AssertionError("the run never reached its train phase")


def _wait_for_stored_steps(db_path, run_id, timeout_s=120):
    """Until the run's heartbeat has stored some completed steps (bounded polling)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if Store(str(db_path)).get_steps(run_id):
            return
        time.sleep(0.2)
    raise AssertionError("no completed step reached the store")


def test_a_run_killed_hard_is_stored_as_failed_with_the_signal(db_path):
    parent, run_id = _start_long_run(db_path)
    _wait_for_stored_steps(db_path, run_id)
    (child,) = psutil.Process(parent.pid).children()
    child.send_signal(signal.SIGKILL)
    parent.communicate(timeout=60)
    run = Store(str(db_path)).get_run(run_id)
    assert parent.returncode == 1
    assert run["status"] == "failed"
    assert "SIGKILL" in run["error"] and "train phase" in run["error"]


def test_ctrl_c_stores_the_run_as_interrupted_with_its_steps(db_path):
    parent, run_id = _start_long_run(db_path)
    _wait_for_stored_steps(db_path, run_id)
    parent.send_signal(signal.SIGINT)
    out, err = parent.communicate(timeout=60)
    run = Store(str(db_path)).get_run(run_id)
    assert parent.returncode == 130, err
    assert run["status"] == "interrupted" and run["timed_steps"] > 0
    assert len(Store(str(db_path)).get_steps(run_id)) == run["timed_steps"]
    assert "interrupted" in out


def test_a_run_past_its_time_limit_is_stored_as_timeout(db_path):
    done = dlbench(
        db_path, "run", "cifar10-cnn", "--steps", "100000", "--timeout", "8", "--json", "-"
    )
    summary = json.loads(done.stdout)
    assert done.returncode == 4
    assert summary["status"] == "timeout" and "time limit" in summary["error"]


def test_a_zoo_run_reports_flops_and_the_feasibility_of_the_dataset(db_path):
    done = dlbench(
        db_path,
        "run",
        "resnet18",
        "--image-size",
        "32",
        "-b",
        "4",
        *FAST,
        "--precision",
        "amp-bf16",
        "--channels-last",
        "--dataset-size",
        "1000",
        "--epochs",
        "2",
        "--json",
        str(db_path.parent / "summary.json"),
    )
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "parameters / FLOPs per step" in text and "amp-bf16, channels-last" in text
    assert "this model fits at batch 4; 2 epoch(s) of 1,000 images would take 0:" in text
    summary = json.loads((db_path.parent / "summary.json").read_text())
    assert summary["params"] == 11_689_512 and summary["flops_per_step"] > 0
    assert summary["feasibility"]["steps_per_epoch"] == 250


def test_sysinfo_and_list(db_path, capsys):
    info = json.loads(dlbench_here(capsys, "sysinfo", "--json").stdout)
    assert info["cpu"]["logical_cpus"] >= 1 and info["memory_bytes"] > 0 and "gpus" in info
    table = dlbench_here(capsys, "sysinfo").stdout
    assert "Component" in table and "Description" in table
    listed = json.loads(dlbench_here(capsys, "list", "--json").stdout)
    assert [w["name"] for w in listed] == list(WORKLOADS)
    detectors = [w["name"] for w in listed if w["task"] == "detect"]
    assert detectors == ["fasterrcnn", "fasterrcnn-mobilenet"]
    by_name = {w["name"]: w for w in listed}
    assert by_name["lenet-mnist"]["image_size"] is None
    assert by_name["fasterrcnn"]["image_size"]["min"] == 64
    assert by_name["lenet-mnist"]["frameworks"] == ["pytorch", "tensorflow", "jax"]
    assert by_name["xception"]["frameworks"] == ["pytorch"]
    wide = subprocess.run(["dlbench", "list"], capture_output=True, text=True,
                          env={**cli_env(db_path), "COLUMNS": "250"}, timeout=60)  # fmt: skip
    assert "pytorch, tensorflow, jax" in wide.stdout


def test_version_alone_prints_dlbench_and_torch(capsys):
    from dlbench.version import __version__

    code, out, err = call_main(capsys, "--version")
    assert code == 0 and err == ""
    assert out.startswith(f"dlbench {__version__} (torch ")


def test_help_lists_commands_in_sections_with_whole_descriptions(capsys):
    import re

    code, out, _ = call_main(capsys, "--help")
    assert code == 0
    sections = re.findall(r"(?m)^([A-Z][a-z ,]+):$", out)
    assert sections[1:] == ["Measure", "Look at results", "Keep, check and share", "Predict",
                            "This machine"]  # fmt: skip
    names = re.findall(r"(?m)^  ([a-z]+)  ", out)
    order = [names.index(name) for name in ("run", "sweep", "runs", "compare", "predict")]
    assert order == sorted(order)
    assert "..." not in out.split("\n", 1)[1]  # a description wraps, it is never cut


def test_run_help_groups_its_options(capsys):
    code, out, _ = call_main(capsys, "run", "--help")
    assert code == 0
    for section in ("What to train", "How long", "Data", "Measurement", "Output", "Database"):
        assert f"\n{section}:\n" in out, section
    measurement = out.split("\nMeasurement:\n")[1].split("\n\n")[0]
    assert "--cpus" in measurement and "--wait-quiet" in measurement


def test_help_text_says_its_defaults_and_flags_take_no_value(capsys):
    import re

    code, out, _ = call_main(capsys, "run", "--help")
    assert code == 0
    assert "Images per step [default: the workload's]." in " ".join(out.split())
    assert "<bool>" not in out and not re.search(r"[a-z] \.(\s|$)", out)
    assert "imagefolder" in out and "coco" in out  # every dataset, not only mnist


@pytest.mark.parametrize(
    ("cuda", "gpus", "shown"),
    [
        (None, [], "none (a CPU build of torch)"),
        ("13.0", [], "no GPU here (torch is built for CUDA 13.0)"),
    ],
)
def test_sysinfo_does_not_pass_torchs_build_off_as_the_machines_cuda(cuda, gpus, shown):
    from rich.console import Console

    from dlbench.render.listings import sysinfo_table
    from dlbench.sysinfo import collect

    info = {**collect(), "cuda": cuda, "cudnn": "91000" if cuda else None, "gpus": gpus}
    console = Console(width=200, record=True)
    console.print(sysinfo_table(info))
    assert shown in console.export_text()


def test_json_output_writes_records_as_their_fields(capsys):
    from dlbench.cli.common import write_json
    from dlbench.store.stored import StoredRun

    run = StoredRun.from_summary({"run_id": "r", "kind": "train", "status": "ok"})
    write_json({"runs": [run]}, "-")
    written = json.loads(capsys.readouterr().out)
    assert written["runs"][0]["run_id"] == "r" and written["runs"][0]["status"] == "ok"
