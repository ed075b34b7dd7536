"""Where a multi-node run's processes go, and the nodes' meeting before torchrun starts.

A run over N nodes starts one dlbench per node: by hand (``--node-rank K --rdzv-endpoint
HOST:PORT`` on each) or from Slurm (``srun --ntasks-per-node=1 dlbench run ... --nodes N``,
the node rank and node 0's host read from the job). The nodes first meet at node 0's
HOST:PORT (a torch TCPStore): each says its host and its dlbench, torch and Python versions,
node 0 hands out the run's id, and a node that never comes or runs other versions stops the
run there, in one line, before any timing. torchrun then starts G processes per node with its
static rendezvous at HOST:PORT+1, which gives node K the ranks K*G .. K*G+G-1: rank 0 is node
0's, and stores the run. (torchrun's c10d rendezvous numbers nodes in the order of their host
names and process ids, which would put the storing rank on any node.)
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dlbench.errors import ConfigError, DlbenchError
from dlbench.sysinfo import node_name
from dlbench.version import __version__

DEFAULT_PORT = 29400  # the meeting; torchrun's rendezvous takes the next port
DEFAULT_JOIN_TIMEOUT_S = 300
MAX_NODES = 4096
SAME_VERSIONS = "install the same dlbench and torch on every node"
FREE_PORTS = "give --rdzv-endpoint a port P with P and P+1 free on node 0"
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?)$")


class JoinError(DlbenchError):
    """The nodes did not all meet: one never came, or one runs other versions."""


@dataclass(frozen=True)
class Placement:
    """This node's place in a multi-node run."""

    nodes: int
    node_rank: int
    host: str  # node 0's address, where the nodes meet
    port: int
    join_timeout_s: int = DEFAULT_JOIN_TIMEOUT_S

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def torchrun_args(self, processes_per_node: int) -> list[str]:
        return [
            f"--nnodes={self.nodes}",
            f"--nproc-per-node={processes_per_node}",
            f"--node-rank={self.node_rank}",
            "--rdzv-backend=static",
            f"--rdzv-endpoint={self.host.strip('[]')}:{self.port + 1}",
            f"--rdzv-conf=timeout={self.join_timeout_s}",
            "--max-restarts=0",
        ]

    def ranks(self, processes_per_node: int) -> range:
        first = self.node_rank * processes_per_node
        return range(first, first + processes_per_node)


def parse_endpoint(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``HOST`` (port 29400); IPv6 as ``[::1]:PORT``."""
    host, port_text = text.strip(), str(DEFAULT_PORT)
    if host.count(":") == 1 or (host.startswith("[") and "]:" in host):
        host, _, port_text = host.rpartition(":")
    if not _HOST.match(host) or not port_text.isdigit() or not 1 <= int(port_text) < 65535:
        raise ConfigError(
            f"--rdzv-endpoint {text[:80]!r} is not HOST:PORT",
            "give node 0's address and a free port, e.g. --rdzv-endpoint node001:29400",
        )
    return host, int(port_text)


def placement(
    nodes: int | None,
    node_rank: int | None,
    endpoint: str | None,
    join_timeout_s: int | None,
    env: dict[str, str] | None = None,
) -> Placement | None:
    """This node's Placement from the options, or from the Slurm step it runs in; None for a
    run on this node alone."""
    env = dict(os.environ) if env is None else env
    timeout = DEFAULT_JOIN_TIMEOUT_S if join_timeout_s is None else join_timeout_s
    if not 1 <= timeout <= 86_400:
        raise ConfigError("--join-timeout must be 1 to 86400 seconds")
    if nodes is None or nodes == 1:
        if node_rank is not None or endpoint is not None:
            raise ConfigError(
                "--node-rank and --rdzv-endpoint are for a run over several nodes",
                "give --nodes N too",
            )
        return None
    if not 2 <= nodes <= MAX_NODES:
        raise ConfigError(f"--nodes must be 1 to {MAX_NODES}")
    slurm = _from_slurm(nodes, env) if "SLURM_JOB_ID" in env else None
    if node_rank is None:
        if slurm is None:
            raise ConfigError(
                f"--nodes {nodes} outside a Slurm job needs --node-rank and --rdzv-endpoint",
                "on each node: dlbench run ... --nodes N --node-rank K --rdzv-endpoint "
                "NODE0:29400 (or run it with srun inside an allocation)",
            )
        node_rank = slurm[0]
    if not 0 <= node_rank < nodes:
        raise ConfigError(f"--node-rank {node_rank} is not 0 to {nodes - 1} (--nodes {nodes})")
    if endpoint is None:
        if slurm is None:
            raise ConfigError(
                "--node-rank needs --rdzv-endpoint HOST:PORT: node 0's address, where the "
                "nodes meet"
            )
        host, port = slurm[1], slurm[2]
    else:
        host, port = parse_endpoint(endpoint)
    return Placement(nodes, node_rank, host, port, timeout)


def _from_slurm(nodes: int, env: dict[str, str]) -> tuple[int, str, int]:
    """(node rank, node 0's host, port) from the Slurm step this dlbench runs in."""
    job_nodes = int(env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES") or 1)
    if job_nodes != nodes:
        raise ConfigError(
            f"--nodes {nodes} in a Slurm job of {job_nodes} node(s)",
            f"allocate {nodes} nodes (sbatch --nodes {nodes}) or give --nodes {job_nodes}",
        )
    tasks = int(env.get("SLURM_NTASKS") or nodes)
    if tasks != nodes:
        raise ConfigError(
            f"{tasks} Slurm tasks for {nodes} nodes: dlbench starts the processes of a node itself",
            "run one dlbench per node: srun --ntasks-per-node=1 dlbench run ...",
        )
    first = first_host(env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or "")
    # One port per job, so that two jobs sharing node 0 do not meet each other.
    port = 20000 + int(env.get("SLURM_JOB_ID", "0") or 0) % 20000
    return int(env.get("SLURM_NODEID", "0")), first, port


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``node[001-004]``): scontrol's expansion, or
    the list's own first name where scontrol is not on the PATH."""
    try:
        shown = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        if shown:
            return shown[0]
    except (OSError, subprocess.SubprocessError):
        pass
    match = re.match(r"^([^,\[]+)(?:\[(\d+)[^\]]*\])?", nodelist)
    if not match:
        raise ConfigError(f"cannot read node 0 from SLURM_JOB_NODELIST {nodelist[:80]!r}")
    return match.group(1) + (match.group(2) or "")


def describe_node() -> dict[str, Any]:
    import torch

    return {
        "host": node_name(),
        "dlbench": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def meet(where: Placement, run_id: str | None) -> tuple[str, list[dict[str, Any]]]:
    """All nodes meet at node 0 before torchrun starts: (the run's id, every node's
    description in node order). Node 0 gives ``run_id``; the others learn it here."""
    from torch.distributed import TCPStore

    timeout = timedelta(seconds=where.join_timeout_s)
    mine = describe_node()
    with _c10d_logs_silenced():
        return _meet(where, run_id, mine, timeout, TCPStore)


@contextmanager
def _c10d_logs_silenced() -> Iterator[None]:
    """torch's C++ store logs each connection retry and timeout to the terminal (file
    descriptor 2) as well as raising: while the nodes meet, the error dlbench raises says it
    once, in one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _meet(
    where: Placement, run_id: str | None, mine: dict[str, Any], timeout: timedelta, tcp_store: Any
) -> tuple[str, list[dict[str, Any]]]:
    try:
        store = tcp_store(
            where.host.strip("[]"),
            where.port,
            world_size=where.nodes,
            is_master=where.node_rank == 0,
            timeout=timeout,
            wait_for_workers=False,
        )
    except (RuntimeError, OSError) as exc:  # DistNetworkError, DistStoreError, a bound port
        raise JoinError(
            f"node {where.node_rank} could not reach the meeting point {where.endpoint} "
            f"within {where.join_timeout_s} s: {str(exc).splitlines()[0][:200]}",
            "start node 0 first, check its address and that the port is open",
        ) from None
    if where.node_rank == 0:
        return run_id or "", _gather(store, where, mine, run_id or "")
    return _report(store, where, mine)


def _gather(
    store: Any, where: Placement, mine: dict[str, Any], run_id: str
) -> list[dict[str, Any]]:
    """Node 0: wait for every node, check their versions, hand out the run's id."""
    others = [f"node/{k}" for k in range(1, where.nodes)]
    try:
        store.wait(others, timedelta(seconds=where.join_timeout_s))
    except RuntimeError:
        missing = [k for k in range(1, where.nodes) if not store.check([f"node/{k}"])]
        shown = ", ".join(str(k) for k in missing)
        raise JoinError(
            f"node(s) {shown} of {where.nodes} did not join at {where.endpoint} within "
            f"{where.join_timeout_s} s",
            f"start dlbench run ... --nodes {where.nodes} --node-rank K --rdzv-endpoint "
            f"{where.endpoint} on each, or raise --join-timeout",
        ) from None
    nodes = [mine] + [json.loads(store.get(key)) for key in others]
    problem, hint = version_mismatch(nodes), SAME_VERSIONS
    if problem is None:
        problem, hint = rendezvous_port_taken(where.port + 1), FREE_PORTS
    store.set("run", json.dumps({"run_id": run_id, "refused": problem, "hint": hint}))
    store.wait([f"ack/{k}" for k in range(1, where.nodes)], timedelta(seconds=60))
    if problem:
        raise JoinError(problem, hint)
    return nodes


def _report(store: Any, where: Placement, mine: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Node K: say who this node is; learn the run's id (or why node 0 refused)."""
    store.set(f"node/{where.node_rank}", json.dumps(mine))
    try:
        store.wait(["run"], timedelta(seconds=where.join_timeout_s))
        answer = json.loads(store.get("run"))
        store.set(f"ack/{where.node_rank}", "1")
    except RuntimeError as exc:
        raise JoinError(
            f"node 0 at {where.endpoint} did not answer within {where.join_timeout_s} s: "
            f"{str(exc).splitlines()[0][:200]}"
        ) from None
    if answer.get("refused"):
        raise JoinError(answer["refused"], answer.get("hint") or SAME_VERSIONS)
    return str(answer["run_id"]), [mine]


def rendezvous_port_taken(port: int) -> str | None:
    """One line if torchrun's rendezvous port on node 0 is held by another program (node 0's
    torchrun would fail to listen there, and the other nodes would wait on whatever holds
    it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as torch's store does
        try:
            probe.bind(("", port))
        except OSError as exc:
            return (
                f"port {port} on node 0 (torchrun's rendezvous, the meeting port + 1) is in "
                f"use ({exc.strerror})"
            )
    return None


def version_mismatch(nodes: list[dict[str, Any]]) -> str | None:
    """One line naming the first node whose dlbench, torch or Python differs from node 0's."""
    first = nodes[0]
    for rank, node in enumerate(nodes[1:], start=1):
        for key in ("dlbench", "torch", "python"):
            if node.get(key) != first.get(key):
                return (
                    f"node {rank} ({node.get('host')}) runs {key} {node.get(key)}, node 0 "
                    f"({first.get('host')}) {key} {first.get(key)}: a run over both would "
                    "compare two programs"
                )
    return None
