"""Two "nodes" on this machine: two dlbench agents meeting over TCP on localhost, each with
its own torchrun, its own processes and its own node name (DLBENCH_HOSTNAME, which dlbench
reads for that purpose only)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time

import psutil
import pytest

from conftest import cli_env, dlbench_here, wait_for

# Nodes meet and watch each other against clocks (join, heartbeat, 30 s after node 0).
pytestmark = pytest.mark.serial

SHORT = ["lenet-mnist", "--device", "cpu", "--steps", "30", "--warmup", "2", "--workers", "0"]
SHORT += ["--val-batches", "2", "--no-infer"]


def free_port() -> int:
    """A port with its successor free too (the nodes meet at PORT, torchrun's at PORT+1),
    below the kernel's ephemeral range, where another test's outgoing connection could take
    PORT+1 between this check and torchrun's listen."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        if _free(port) and _free(port + 1):
            return port
    raise RuntimeError("no two free ports in a row")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_node(db_path, rank: int, port: int, *args: str, command: str = "run"):
    """``dlbench COMMAND ARGS`` as node ``rank``; its output goes to node{rank}.out/.err
    beside the database (read them with ``said``)."""
    env = {**cli_env(db_path), "DLBENCH_HOSTNAME": f"node{rank}"}
    folder = db_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"node{rank}.out", "w") as out, open(folder / f"node{rank}.err", "w") as err:
        return subprocess.Popen(
            ["dlbench", command, *args, "--node-rank", str(rank)]
            + ["--rdzv-endpoint", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=err,
            text=True,
            env=env,
            start_new_session=True,
        )


def said(db_path, rank: int) -> tuple[str, str]:
    """What node ``rank`` printed: (stdout, stderr)."""
    folder = db_path.parent
    return (folder / f"node{rank}.out").read_text(), (folder / f"node{rank}.err").read_text()


def finish(db_path, nodes, timeout_s: float = 600) -> list[tuple[str, str]]:
    """Every node's output once all have exited; one still running after ``timeout_s`` is
    killed with its whole session, and the test fails with what each node printed."""
    deadline = time.monotonic() + timeout_s
    for node in nodes:
        try:
            node.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in nodes:
                _end(other)
            pytest.fail(f"a node ran past {timeout_s} s: {said_all(db_path, len(nodes))}")
    return said_all(db_path, len(nodes))


def said_all(db_path, count: int) -> list[tuple[str, str]]:
    return [said(db_path, rank) for rank in range(count)]


def _rows(db_path):
    from dlbench.store.database import Store

    return Store(str(db_path)).list_runs()


def _end(node: subprocess.Popen) -> None:
    """A node left running by a failed assertion: its whole session killed."""
    if node.poll() is None:
        os.killpg(node.pid, signal.SIGKILL)
        node.wait()


def _stored(db_path):
    from dlbench.store.database import Store

    return Store(str(db_path)).runs()


@pytest.mark.slow
def test_two_nodes_store_one_run_with_every_rank_and_its_host(db_path, capsys):
    port = free_port()
    node1 = start_node(db_path, 1, port, *SHORT, "--nodes", "2", "--gpus-per-node", "1")
    node0 = start_node(
        db_path, 0, port, *SHORT, "--nodes", "2", "--gpus-per-node", "1", "--json", "-"
    )  # node 1 first: it waits for node 0
    outputs = finish(db_path, [node0, node1])
    assert [node0.returncode, node1.returncode] == [0, 0], outputs
    summary = json.loads(outputs[0][0])
    assert summary["status"] == "ok", summary["error"]
    assert summary["config"]["nodes"] == 2 and summary["config"]["gpus"] == 1
    hosts = {rank["rank"]: rank["host"] for rank in summary["ranks"]}
    assert hosts == {0: "node0", 1: "node1"}
    assert all(rank["sync_free_step_time_s"] > 0 for rank in summary["ranks"])
    assert summary["mean_speed"] == pytest.approx(
        2 * summary["batch_size"] / summary["mean_step_time_s"]
    )
    assert len(_stored(db_path)) == 1  # node 1 stored no run of its own
    assert "node 1 (ranks 1-1): run " + summary["run_id"] in outputs[1][0]
    shown = dlbench_here(capsys, "show", summary["run_id"])
    assert "node1" in shown.stdout and "slowest rank" in shown.stdout
    # Node 1 watched its own share: its telemetry under its name, its verdict in the run's.
    from dlbench.store.database import Store

    store = Store(str(db_path))
    metrics = {s.metric for s in store.get_samples(summary["run_id"])}
    assert "node1/cpu.util_percent" in metrics and "cpu.util_percent" in metrics, metrics
    run = store.run(summary["run_id"])
    assert any(r.startswith("node 1 (node1, ranks 1-1): ") for r in run.quality.reasons)


@pytest.mark.slow
def test_a_rank_killed_mid_run_fails_the_run_and_leaves_no_process(db_path):
    port = free_port()
    long_run = [*SHORT[:3], "--steps", "1000000", "--warmup", "2", "--workers", "0"]
    nodes = [
        start_node(db_path, k, port, *long_run, "--nodes", "2", "--gpus-per-node", "1")
        for k in (0, 1)
    ]
    trees = [psutil.Process(node.pid) for node in nodes]
    try:
        wait_for(lambda: any(r["phase_reached"] == "train" for r in _rows(db_path)))
        worker = _worker_of(trees[1])
        os.kill(worker.pid, signal.SIGKILL)
        codes = [node.wait(timeout=120) for node in nodes]
    finally:
        for node in nodes:
            _end(node)
    assert codes[0] == 1 and codes[1] != 0, [said(db_path, k) for k in (0, 1)]
    run = wait_for(lambda: [r for r in _stored(db_path) if r.status != "running"])[0]
    assert run.status == "failed"
    assert "node 1 (node1, ranks 1-1): the run's process" in (run.error or ""), run.error
    time.sleep(1)
    leftover = [p for p in psutil.process_iter(["cmdline"]) if _ours(p, db_path)]
    assert not leftover, [p.info["cmdline"] for p in leftover]


def _worker_of(agent: psutil.Process) -> psutil.Process:
    """The training process under a node's torchrun."""

    def found() -> psutil.Process | None:
        for child in agent.children(recursive=True):
            if "dlbench.runner.child" in " ".join(child.cmdline()) and child.ppid() != agent.pid:
                return child
        return None

    return wait_for(found)


def _ours(process: psutil.Process, db_path) -> bool:
    try:
        command = " ".join(process.info["cmdline"] or [])
        return "dlbench.runner.child" in command or "torch.distributed.run" in command
    except psutil.Error:
        return False


@pytest.mark.slow
def test_a_node_that_never_joins_fails_the_run_in_one_line(db_path):
    port = free_port()
    node0 = start_node(db_path, 0, port, *SHORT, "--nodes", "2", "--join-timeout", "3")
    out, err = finish(db_path, [node0], 120)[0]
    assert node0.returncode == 1, err
    run = _stored(db_path)[0]
    assert run.status == "failed"
    assert run.error.startswith("the nodes did not meet: node(s) 1 of 2 did not join at ")
    assert "within 3 s" in run.error
    node1 = start_node(db_path, 1, free_port(), *SHORT, "--nodes", "2", "--join-timeout", "2")
    node1.wait(timeout=120)
    out, err = said(db_path, 1)
    assert node1.returncode == 2
    assert err.strip().startswith("error: node 1 could not reach the meeting point")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_collectives_over_two_nodes_are_one_run(db_path):
    port = free_port()
    args = ["--sizes", "4KiB:16KiB", "--ops", "all_reduce,all_gather", "--nodes", "2"]
    args += ["--gpus-per-node", "1", "--rounds", "2", "--iters", "3"]
    nodes = [start_node(db_path, k, port, *args, command="collectives") for k in (0, 1)]
    outputs = finish(db_path, nodes, 300)
    assert [node.returncode for node in nodes] == [0, 0], outputs
    (run,) = _stored(db_path)
    assert run.kind == "collective" and run.status == "ok"
    assert {r.host for r in run.ranks} == {"node0", "node1"}
    assert [(r.operation, r.size_bytes) for r in run.collectives] == [
        ("all_reduce", 4096),
        ("all_reduce", 8192),
        ("all_reduce", 16384),
        ("all_gather", 4096),
        ("all_gather", 8192),
        ("all_gather", 16384),
    ]
    assert all(r.correct and r.ranks == 2 for r in run.collectives)


@pytest.mark.slow
def test_a_rank_lost_before_the_group_forms_stops_node_0_at_once(db_path):
    """Node 0's rank would wait for the lost one in the process group's setup (for the
    backend's timeout, half an hour): node 1 says in the run that its processes failed, and
    node 0 stops its own."""
    port = free_port()
    args = [*SHORT, "--nodes", "2", "--gpus-per-node", "1"]
    nodes = [start_node(db_path, k, port, *args) for k in (0, 1)]
    try:
        worker = _worker_of(psutil.Process(nodes[1].pid))  # as soon as it exists: importing
        os.kill(worker.pid, signal.SIGKILL)
        codes = [node.wait(timeout=120) for node in nodes]
    finally:
        for node in nodes:
            _end(node)
    assert codes[0] == 1, said(db_path, 0)
    (run,) = _stored(db_path)
    assert run.status == "failed"
    words = "node 1 (node1, ranks 1-1): the run's process exited with code 1"  # torchrun's code
    assert run.error.startswith(words) and run.error.count(words) == 1, run.error
    # Node 0's own processes were stopped by node 0 (interrupted) or, on a busy machine, had
    # already failed on the lost peer themselves: either way in setup, and said after node 1.
    assert re.search(
        r"; node 0 stopped its processes then \((interrupted during|the run's process exited "
        r"with code 1 before storing a result in) the setup phase\)$",
        run.error,
    ), run.error


@pytest.mark.slow
def test_a_held_rendezvous_port_is_refused_on_every_node_in_one_line(db_path):
    """Another program holds PORT+1 on node 0 (accepting, never answering): node 0's torchrun
    could not listen there and node 1's would wait on the program. Both refuse at the
    meeting, naming the port."""
    port = free_port()
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", port + 1))
        hole.listen(4)
        args = [*SHORT, "--nodes", "2", "--gpus-per-node", "1", "--join-timeout", "60"]
        nodes = [start_node(db_path, k, port, *args) for k in (1, 0)]
        outputs = finish(db_path, nodes, 120)
    assert nodes[1].returncode == 1 and nodes[0].returncode == 2, outputs
    (run,) = _stored(db_path)
    assert run.status == "failed"
    assert f"port {port + 1} on node 0 (torchrun's rendezvous" in run.error, run.error
    node1_err = outputs[1][1].strip()
    assert node1_err.startswith("error: port ") and "Traceback" not in node1_err, node1_err
    assert "P and P+1 free" in node1_err


def test_node_k_stops_its_processes_once_node_0_has_closed_the_run(store):
    """Node K's processes still running after node 0 closed the run (stuck on a peer that
    is gone) are stopped after a grace, not left to the backend's half-hour timeout."""
    from dlbench.launch.node_watch import RunClosed

    store.create_run("r1", "train", {})
    stuck = subprocess.Popen(["sleep", "300"])
    closed = RunClosed(store, "r1", grace_s=1.0)
    try:
        closed.start(stuck.pid)
        time.sleep(1.5)
        assert stuck.poll() is None  # the run is open: nothing to stop
        store.end_unfinished("r1", "failed", "node 0's torchrun could not start")
        assert stuck.wait(timeout=15) == -signal.SIGTERM
    finally:
        closed.stop()
        if stuck.poll() is None:
            stuck.kill()
            stuck.wait()
    assert closed.said == (
        "its processes were still running 1 s after node 0 closed the run (failed), and were "
        "stopped"
    )
