"""Where a multi-node run's processes go: options, Slurm's variables, torchrun's arguments."""

from __future__ import annotations

import pytest

from dlbench.errors import ConfigError
from dlbench.launch.nodes import Placement, first_host, parse_endpoint, placement, version_mismatch

SLURM = {
    "SLURM_JOB_ID": "123456",
    "SLURM_NNODES": "4",
    "SLURM_NTASKS": "4",
    "SLURM_NODEID": "2",
    "SLURM_JOB_NODELIST": "gpu[017-020]",
}


def test_one_node_needs_no_placement():
    assert placement(None, None, None, None, env={}) is None
    assert placement(1, None, None, None, env={}) is None


def test_options_place_a_node_and_torchrun_gets_a_static_rendezvous():
    where = placement(2, 1, "node0:29400", 60, env={})
    assert where == Placement(2, 1, "node0", 29400, 60)
    assert where.torchrun_args(4) == [
        "--nnodes=2",
        "--nproc-per-node=4",
        "--node-rank=1",
        "--rdzv-backend=static",
        "--rdzv-endpoint=node0:29401",
        "--rdzv-conf=timeout=60",
        "--max-restarts=0",
    ]
    assert list(where.ranks(4)) == [4, 5, 6, 7]


def test_slurm_gives_the_node_rank_and_node_0(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no scontrol: the list's own first name
    where = placement(4, None, None, None, env=SLURM)
    assert (where.node_rank, where.host, where.port) == (2, "gpu017", 20000 + 123456 % 20000)
    assert placement(4, None, "login1:31000", None, env=SLURM).host == "login1"


@pytest.mark.parametrize(
    ("nodes", "rank", "endpoint", "env", "says"),
    [
        (0, None, None, {}, "--nodes must be 1 to 4096"),
        (2, None, None, {}, "needs --node-rank and --rdzv-endpoint"),
        (2, 0, None, {}, "needs --rdzv-endpoint"),
        (2, 2, "h:1", {}, "--node-rank 2 is not 0 to 1"),
        (2, 0, "h:99999", {}, "is not HOST:PORT"),
        (2, 0, "h:x", {}, "is not HOST:PORT"),
        (2, 0, "bad host:1", {}, "is not HOST:PORT"),
        (None, 1, None, {}, "give --nodes N too"),
        (2, None, None, SLURM, "--nodes 2 in a Slurm job of 4 node"),
        (4, None, None, {**SLURM, "SLURM_NTASKS": "16"}, "srun --ntasks-per-node=1"),
    ],
)
def test_bad_placements_are_one_line(nodes, rank, endpoint, env, says):
    with pytest.raises(ConfigError) as refused:
        placement(nodes, rank, endpoint, None, env=env)
    assert says in refused.value.one_line()


def test_endpoints():
    assert parse_endpoint("10.0.0.1:1234") == ("10.0.0.1", 1234)
    assert parse_endpoint("[::1]:1234") == ("[::1]", 1234)
    assert parse_endpoint("node0") == ("node0", 29400)


def test_node_lists_first_host():
    assert first_host("node[001-004],big7") == "node001"
    assert first_host("login3") == "login3"


def test_other_versions_on_a_node_are_named():
    node0 = {"host": "a", "dlbench": "0.1.0", "torch": "2.14.1", "python": "3.11.2"}
    node1 = {**node0, "host": "b", "torch": "2.11.0"}
    said = version_mismatch([node0, node0, node1])
    assert said.startswith("node 2 (b) runs torch 2.11.0, node 0 (a) torch 2.14.1")
    assert version_mismatch([node0, dict(node0)]) is None
