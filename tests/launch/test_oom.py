"""A run killed by the kernel's out-of-memory killer is stored ``oom``, under cgroup v1 as
under v2: the counters of the run's own memory cgroup and its parents are read."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from dlbench.launch.oom import memory_cgroups, oom_kills
from dlbench.store.database import Store

from conftest import cli_env


def _fake_proc(monkeypatch, text):
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if str(self) == f"/proc/{os.getpid()}/cgroup":
            return text
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)


def test_v1_counts_are_read_from_the_runs_cgroup_and_its_parents(tmp_path, monkeypatch):
    job = tmp_path / "memory" / "slurm" / "job_7"
    job.mkdir(parents=True)
    (tmp_path / "memory" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
    )
    (job / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    _fake_proc(monkeypatch, "5:cpu,cpuacct:/slurm/job_7\n4:memory:/slurm/job_7\n0::/\n")
    assert memory_cgroups(root=tmp_path)[:3] == [
        job, tmp_path / "memory" / "slurm", tmp_path / "memory"
    ]  # fmt: skip
    assert oom_kills(root=tmp_path) == 3


def test_v2_counts_are_read_from_the_runs_cgroup_too(tmp_path, monkeypatch):
    own = tmp_path / "system.slice" / "job.scope"
    own.mkdir(parents=True)
    (own / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    _fake_proc(monkeypatch, "0::/system.slice/job.scope\n")
    assert oom_kills(root=tmp_path) == 1
    _fake_proc(monkeypatch, "0::/elsewhere\n")  # no counter anywhere: unknown, not zero
    assert oom_kills(root=tmp_path) is None


def _v1_memory_cgroup() -> Path | None:
    """This process's v1 memory cgroup, where a child cgroup can be made (root, v1 mounted)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / path.strip("/")
            if folder.is_dir() and os.access(folder, os.W_OK):
                return folder
    return None


@pytest.mark.slow
@pytest.mark.skipif(_v1_memory_cgroup() is None, reason="no writable cgroup v1 memory controller")
def test_a_run_the_kernel_kills_in_a_v1_memory_cgroup_is_stored_oom(db_path):
    limited = _v1_memory_cgroup() / f"dlbench-test-{uuid.uuid4().hex[:8]}"
    limited.mkdir()
    try:
        (limited / "memory.limit_in_bytes").write_text(str(1536 * 2**20))
        swap = limited / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(1536 * 2**20))  # no swap to escape into
        command = (
            f"echo $$ > {limited}/cgroup.procs && exec dlbench run resnet18 --device cpu "
            "--batch-size 256 --image-size 224 --steps 8 --warmup 1 --no-validate --no-infer "
            "--no-telemetry"
        )
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                              env=cli_env(db_path), timeout=600)  # fmt: skip
        run = Store(str(db_path)).runs()[0]
        assert done.returncode == 3, done.stderr  # oom's exit code
        assert run.status == "oom" and "out-of-memory killer" in (run.error or ""), run.error
    finally:
        for _ in range(50):  # the processes leave the cgroup as they are reaped
            try:
                limited.rmdir()
                break
            except OSError:
                time.sleep(0.1)
