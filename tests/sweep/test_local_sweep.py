"""The local executor: a run killed with SIGKILL and one out of memory are stored and the sweep
goes on; --resume skips what is stored; staging copies, times and records."""

import json
import signal
import subprocess
import textwrap
import time

import psutil
import pytest

from dlbench.store.database import Store

from conftest import cli_env, dlbench_here, run_dlbench, write_mnist

FAST = "steps: 13, warmup: 3, val_batches: 1, device: cpu, telemetry: false"


def _sweep(tmp_path, body):
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def _start_sweep(path, db_path):
    return subprocess.Popen(
        ["dlbench", "sweep", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(db_path),
    )


def _kill_the_long_run_when_it_trains(db_path, sweep_process):
    """SIGKILL the run process of the 'steps: 100000' run once it is training."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and sweep_process.poll() is None:
        if db_path.exists():
            store = Store(str(db_path))
            rows = [r for r in store.list_runs() if r["config"].get("steps") == 100000]
            store.close()
            if rows and rows[0]["phase_reached"] == "train":
                for proc in psutil.Process(sweep_process.pid).children(recursive=True):
                    if "dlbench.runner.child" in " ".join(proc.cmdline()):
                        proc.send_signal(signal.SIGKILL)
                        return True
        time.sleep(0.3)
    return False


@pytest.mark.slow
def test_a_killed_run_and_an_oom_are_stored_and_the_sweep_goes_on(tmp_path, db_path):
    # batch 64: fine; 10^9 images: the allocator refuses (a real out-of-memory); batch 32 runs
    # 100000 steps and the test kills it with SIGKILL; batch 16 runs after it.
    path = _sweep(
        tmp_path,
        f"""
        name: rough
        base: {{workload: mlp-mnist, {FAST}}}
        matrix:
          batch_size: [64, 1000000000, 32, 16]
          steps: [13, 100000]
        exclude:
          - {{batch_size: 64, steps: 100000}}
          - {{batch_size: 1000000000, steps: 100000}}
          - {{batch_size: 16, steps: 100000}}
          - {{batch_size: 32, steps: 13}}
    """,
    )
    sweep = _start_sweep(path, db_path)
    assert _kill_the_long_run_when_it_trains(db_path, sweep)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 1, err  # not every run is ok
    store = Store(str(db_path))
    by_batch = {r["batch_size"]: r for r in store.list_runs(sweep="rough")}
    assert set(by_batch) == {64, 1000000000, 32, 16}
    assert by_batch[64]["status"] == by_batch[16]["status"] == "ok"  # 16 ran after the kill
    assert by_batch[1000000000]["status"] == "oom"
    killed = by_batch[32]
    assert killed["status"] == "failed" and "SIGKILL" in killed["error"]
    assert killed["phase_reached"] == "train"
    results = sorted((tmp_path / "results" / "sweeps" / "rough").glob("*.json"))
    assert len(results) == 4
    assert {json.loads(p.read_text())["status"] for p in results} == {"ok", "oom", "failed"}

    resumed = run_dlbench(db_path, "sweep", str(path), "--resume", "--dry-run")
    assert resumed.stdout.count("skip: already ok") == 2
    assert resumed.stdout.count("--retry-failed reruns it") == 2
    retried = run_dlbench(db_path, "sweep", str(path), "--retry-failed", "--dry-run")
    assert retried.stdout.count("│ run ") == 2


def test_ctrl_c_stops_the_sweep_after_storing_the_run_it_interrupted(tmp_path, db_path):
    path = _sweep(
        tmp_path,
        f"""
        name: stopped
        base: {{workload: mlp-mnist, {FAST}}}
        matrix: {{batch_size: [32, 16, 8], steps: [100000]}}
    """,
    )
    sweep = _start_sweep(path, db_path)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        store = Store(str(db_path)) if db_path.exists() else None
        rows = store.list_runs(sweep="stopped") if store else []
        if rows and rows[0]["phase_reached"] == "train":
            break
        time.sleep(0.3)
    sweep.send_signal(signal.SIGINT)  # as Ctrl-C: the sweep's process, not the run's
    _, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, err
    runs = Store(str(db_path)).list_runs(sweep="stopped")
    assert [r["status"] for r in runs] == ["interrupted"]  # no further run started
    assert runs[0]["batch_size"] == 32


def test_resume_skips_stored_runs_and_export_gives_the_aggregated_table(tmp_path, db_path, capsys):
    path = _sweep(
        tmp_path,
        f"""
        name: again
        base: {{workload: mlp-mnist, {FAST}}}
        matrix: {{batch_size: [16, 32]}}
    """,
    )
    first = run_dlbench(db_path, "sweep", str(path))
    assert first.returncode == 0, first.stderr
    assert "again" in first.stdout and first.stdout.count(" ok ") >= 2
    second = run_dlbench(db_path, "sweep", str(path), "--resume")
    assert second.returncode == 0 and second.stdout.count("skip: already ok") == 2
    assert len(Store(str(db_path)).list_runs(sweep="again")) == 2
    out = tmp_path / "table.csv"
    exported = dlbench_here(capsys, "export", "--sweep", "again", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    import pandas as pd

    table = pd.read_csv(out)
    assert len(table) == 2
    assert {
        "mean_speed",
        "mean_step_time_s",
        "speed_stderr",
        "speed_jitter",
        "gpu_type",
        "num_gpus",
        "staged_from",
        "sweep",
    } <= set(table.columns)
    # a synthetic run's accuracy is blank, and a column says why (runs shows "(synthetic)")
    assert table["accuracy"].isna().all() and table["accuracy_synthetic"].all()
    listed = dlbench_here(capsys, "runs", "--sweep", "again")
    assert listed.returncode == 0 and listed.stdout.count("mlp-mnist") == 2, listed.stderr
    as_tag = dlbench_here(capsys, "runs", "--tag", "sweep=again")
    assert "a run's sweep is not a tag: --sweep NAME" in as_tag.stdout
    unknown = dlbench_here(capsys, "runs", "--sweep", "nosuch")
    assert unknown.returncode == 2 and "no run of a sweep of that name" in unknown.stderr


def test_staging_copies_times_and_records_the_source(tmp_path, db_path):
    scratch = tmp_path / "scratch"
    write_mnist(scratch / "data" / "mnist", n_train=200, n_test=50)
    env = cli_env(db_path) | {"SCRATCH": str(scratch), "LOCAL": str(tmp_path / "local")}
    done = run_dlbench(
        db_path,
        "run",
        "lenet-mnist",
        "--data",
        "$SCRATCH/data/mnist",
        "--stage-from",
        "$SCRATCH/data",
        "--stage-to",
        "$LOCAL",
        "--steps",
        "6",
        "--warmup",
        "2",
        "--batch-size",
        "20",
        "--workers",
        "0",
        "--json",
        "-",
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    staged = summary["staging"]
    assert summary["staged_from"] == "$SCRATCH/data"
    assert staged["destination"] == str(tmp_path / "local" / "data")
    assert staged["files"] == 4 and staged["bytes"] > 200 * 784 and staged["bytes_per_s"] > 0
    assert not (tmp_path / "local" / "data").exists()  # removed after the run
    unset = subprocess.run(
        ["dlbench", "run", "lenet-mnist", "--data", "$NOPE/mnist"],
        capture_output=True,
        text=True,
        env=cli_env(db_path),
        timeout=120,
    )
    assert unset.returncode == 2 and "not set on this node" in unset.stderr


@pytest.mark.slow
def test_a_generation_sweep_over_prompt_lengths_and_batches_draws_its_tradeoff(tmp_path, db_path):
    from dlbench.report.serving import tradeoff_figure

    path = _sweep(
        tmp_path,
        """
        name: gen
        base: {workload: llama, depth: 1, width: 64, heads: 4, kv_heads: 2, vocab: 128,
               gen_len: 4, warmup: 1, steps: 4, device: cpu, telemetry: false}
        matrix: {prompt_len: [8, 16], batch_size: [1, 2]}
    """,
    )
    done = run_dlbench(db_path, "sweep", str(path))
    assert done.returncode == 0, done.stderr
    runs = Store(str(db_path)).runs(sweep="gen")
    assert sorted((r.generation.prompt_len, r.generation.batch) for r in runs) == [
        (8, 1), (8, 2), (16, 1), (16, 2),
    ]  # fmt: skip
    assert {r.kind for r in runs} == {"generate"} and all(r.timed_steps == 3 for r in runs)
    figure = tradeoff_figure(runs)
    assert figure is not None and len(figure.data) == 2  # one line per prompt length
    assert all(list(line.text) == ["1", "2"] for line in figure.data)
