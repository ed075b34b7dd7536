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
