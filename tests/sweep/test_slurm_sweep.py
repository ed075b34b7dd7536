"""A real one-node Slurm cluster: a sweep submitted through dlbench and submitit, every result
found in the store; a job cancelled before it ran is still recorded by collect."""

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from dlbench.store.database import Store

from conftest import run_dlbench

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("sbatch") is None,
    reason="Slurm is not installed (no sbatch); .ci/run installs and starts a one-node cluster",
)


@pytest.fixture(scope="module")
def cluster():
    idle = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if "idle" not in idle.stdout and "mix" not in idle.stdout:
        subprocess.run([str(ROOT / "scripts" / "slurm-cluster"), "start"], check=True)


def _sweep(tmp_path, name, extra=""):
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""
        name: {name}
        base: {{workload: mlp-mnist, steps: 13, warmup: 3, val_batches: 1, device: cpu,
                telemetry: false}}
        matrix: {{batch_size: [16, 32]}}
        timeout: 300
        slurm: {{time: 10, cpus_per_task: 1, mem: 1G{extra}}}
    """)
    )
    return path


@pytest.mark.slow
def test_a_sweep_submitted_to_slurm_lands_in_the_store(cluster, tmp_path, db_path):
    path = _sweep(tmp_path, "slurmed")
    done = run_dlbench(db_path, "sweep", str(path), "--executor", "slurm", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = Store(str(db_path)).list_runs(sweep="slurmed")
    assert sorted(r["batch_size"] for r in runs) == [16, 32]
    assert {r["status"] for r in runs} == {"ok"}
    folder = tmp_path / "results" / "sweeps" / "slurmed"
    jobs = json.loads((folder / "jobs.json").read_text())
    assert len(jobs) == 2 and all(j["job_id"].isdigit() for j in jobs)
    files = sorted(folder.glob("*.json"))
    assert len([f for f in files if f.name != "jobs.json"]) == 2
    status = run_dlbench(db_path, "sweep", "status", str(path), cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.count("COMPLETED") == 2

    again = run_dlbench(
        db_path, "sweep", str(path), "--executor", "slurm", "--resume", "--archive", cwd=tmp_path
    )
    assert again.returncode == 0 and again.stdout.count("skip: already ok") == 2
    assert len(list((folder / "archived").glob("*.json"))) == 2
    assert (folder / "jobs.json").exists()  # still followed


@pytest.mark.slow
def test_a_job_cancelled_before_it_ran_is_recorded_by_collect(cluster, tmp_path, db_path):
    path = _sweep(tmp_path, "held", extra=", extra: {begin: now+3600}")
    done = run_dlbench(
        db_path, "sweep", str(path), "--executor", "slurm", "--no-wait", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    jobs = json.loads((tmp_path / "results" / "sweeps" / "held" / "jobs.json").read_text())
    pending = run_dlbench(db_path, "sweep", "status", str(path), cwd=tmp_path)
    assert pending.stdout.count("PENDING") == 2
    subprocess.run(["scancel", *[j["job_id"] for j in jobs]], check=True)
    collected = run_dlbench(db_path, "sweep", "collect", str(path), cwd=tmp_path)
    assert collected.returncode == 0, collected.stderr
    runs = Store(str(db_path)).list_runs(sweep="held")
    assert len(runs) == 2 and {r["status"] for r in runs} == {"failed"}
    assert all("CANCELLED" in r["error"] for r in runs)


@pytest.mark.slow
def test_a_node_count_sweep_runs_its_one_node_job_through_slurm(cluster, tmp_path, db_path):
    path = tmp_path / "nodes.yaml"
    path.write_text(
        textwrap.dedent("""
        name: nodes
        base: {workload: mlp-mnist, steps: 13, warmup: 3, val_batches: 1, device: cpu,
               telemetry: false, nodes: 1}
        matrix: {gpus_per_node: [1]}
        timeout: 300
        slurm: {time: 10, cpus_per_task: 1, mem: 1G, nodes: 1, exclusive: false}
    """)
    )
    done = run_dlbench(db_path, "sweep", str(path), "--executor", "slurm", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = Store(str(db_path)).runs(sweep="nodes")
    assert run.status == "ok" and run.config["gpus"] == 1 and run.config.get("nodes") is None


def test_a_multi_node_job_is_one_dlbench_per_node_under_srun(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string

    from dlbench.sweep.file import SlurmOptions
    from dlbench.sweep.slurm import _parameters

    options = SlurmOptions(
        partition="gpu", gres_type="a100", time=30, exclusive=True, constraint="ib"
    )
    params = _parameters(options, 4, "dlbench-scale", nodes=2)
    script = _make_sbatch_string("python -u -m submitit.core._submit X", tmp_path, **params)
    lines = set(script.splitlines())
    for expected in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gres=gpu:a100:4",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=30",
        "#SBATCH --exclusive",
        "#SBATCH --constraint=ib",
        "#SBATCH --job-name=dlbench-scale",
    ):
        assert expected in lines, script
    assert any(line.startswith("srun ") for line in lines), script  # one task per node
    one = _parameters(SlurmOptions(), 2, "dlbench-one")
    assert one["use_srun"] is False and "nodes" not in one
