"""Launchers and sweep executors are chosen through their registries, never by name checks."""

from pathlib import Path

import pytest

from dlbench.config import build_spec
from dlbench.errors import ConfigError
from dlbench.launch import LAUNCHERS, launcher_name
from dlbench.launch.local import CHILD_MODULE, child_command
from dlbench.sweep.executors import EXECUTORS, get_executor


def test_one_process_runs_locally_and_several_start_under_torchrun():
    payload = Path("/tmp/payload.json")
    one = build_spec(workload="mlp-mnist", device="cpu")
    two = build_spec(workload="mlp-mnist", device="cpu", gpus=2)
    assert launcher_name(one) == "local" and launcher_name(two) == "torchrun"
    assert set(LAUNCHERS) == {"local", "torchrun"}
    assert child_command(one, payload)[1:] == ["-m", CHILD_MODULE, str(payload)]
    command = child_command(two, payload)
    assert command[1:3] == ["-m", "torch.distributed.run"] and "--nproc-per-node=2" in command
    assert command[-3:] == ["-m", CHILD_MODULE, str(payload)]


def test_sweep_executors_say_where_their_runs_execute():
    assert set(EXECUTORS) == {"local", "slurm"}
    assert get_executor("local").local is True
    assert get_executor("slurm").local is False


def test_an_unknown_executor_is_a_config_error_naming_its_option():
    with pytest.raises(ConfigError) as refused:
        get_executor("pbs")
    assert refused.value.option == "--executor"
    assert refused.value.one_line().startswith("--executor 'pbs' is not local or slurm")


def test_a_process_still_running_after_its_run_was_stored_is_stopped(store, monkeypatch, capsys):
    """Rank 0 stored the result, then the process hung tearing down (a process group whose
    peer already exited): the launcher stops it after a grace, and the run stays ok."""
    import signal
    import sys

    from dlbench.launch import local, node_watch
    from dlbench.runner.payload import TrainPayload

    monkeypatch.setattr(node_watch, "CLOSED_GRACE_S", 1.0)
    spec = build_spec(workload="mlp-mnist", device="cpu")
    store.create_run("r", "train", spec.model_dump(mode="json"))
    script = (
        "import sys, time\n"
        "from dlbench.records import RunResult\n"
        "from dlbench.store.database import Store\n"
        "Store(sys.argv[1]).finish_run(RunResult(run_id='r', status='ok'))\n"
        "time.sleep(300)\n"
    )
    outcome = local._launch(
        "r", store, TrainPayload(spec=spec),
        lambda _: [sys.executable, "-c", script, store.url], None, None,
    )  # fmt: skip
    assert outcome.returncode == -signal.SIGTERM  # stopped, not left to sleep its 300 s
    assert outcome.status == "ok" and store.get_run("r")["status"] == "ok"
    assert (
        "its processes were still running 1 s after its rank 0 closed the run (ok), and were "
        "stopped" in capsys.readouterr().err
    )
