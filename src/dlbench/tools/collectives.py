"""``dlbench collectives``: the interconnect on its own, as nccl-tests measures it.

torchrun starts the processes (``--gpus-per-node`` on each of ``--nodes``); each times every
collective over every size (runner/collectives.py) and rank 0 stores one run of kind
``collective``. The run is in the store from before its processes start to after they end,
closed as failed, interrupted or timed out if they die first, as a training run is.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from dlbench.errors import ConfigError
from dlbench.launch.local import LaunchOutcome, join_run, launch_supervised, new_run_id
from dlbench.launch.node_watch import WatchPlan
from dlbench.launch.nodes import Placement
from dlbench.runner.payload import CollectivesPayload
from dlbench.store.database import Store

MODULE = "dlbench.runner.collectives"
MAX_ITERS = 100_000
MAX_ROUNDS = 1000


@dataclass(frozen=True)
class CollectivesPlan:
    operations: tuple[str, ...]
    sizes: tuple[int, ...]
    processes_per_node: int
    device: str  # cpu (gloo) or cuda (NCCL, one GPU per process)
    iters: int | None = None  # calls per round; None: by size
    warmup: int = 5
    rounds: int = 5
    tags: dict[str, str] | None = None

    def check(self) -> None:
        if not 1 <= self.processes_per_node <= 1024:
            raise ConfigError("--gpus-per-node must be 1 to 1024")
        if self.iters is not None and not 1 <= self.iters <= MAX_ITERS:
            raise ConfigError(f"--iters must be 1 to {MAX_ITERS:,}")
        if not 0 <= self.warmup <= MAX_ITERS:
            raise ConfigError(f"--warmup must be 0 to {MAX_ITERS:,}")
        if not 2 <= self.rounds <= MAX_ROUNDS:
            raise ConfigError(
                f"--rounds must be 2 to {MAX_ROUNDS}", "two rounds at least give an interval"
            )
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"--device {self.device!r}: collectives run on cpu or cuda")

    def payload(self, placement: Placement | None) -> CollectivesPayload:
        return CollectivesPayload(
            operations=list(self.operations),
            sizes=list(self.sizes),
            gpus=self.processes_per_node,
            nodes=placement.nodes if placement else 1,
            device=self.device,
            iters=self.iters,
            warmup=self.warmup,
            rounds=self.rounds,
            tags=self.tags or {},
        )


def check_processes(plan: CollectivesPlan, placement: Placement | None) -> None:
    """At least two processes in all; on a GPU, no more per node than the node has GPUs."""
    nodes = placement.nodes if placement else 1
    if plan.processes_per_node * nodes < 2:
        raise ConfigError(
            "a collective needs two processes at least",
            "give --gpus-per-node 2 (gloo processes on a CPU) or --nodes 2",
        )
    if plan.device == "cuda":
        from dlbench.engines.pytorch.distributed import gpus_here

        here = gpus_here()
        if plan.processes_per_node > here:
            raise ConfigError(
                f"--gpus-per-node {plan.processes_per_node}: this node has {here} GPU(s)",
                f"give --gpus-per-node {here} at most, or --device cpu",
            )


def run_collectives(
    plan: CollectivesPlan,
    store: Store,
    placement: Placement | None = None,
    timeout_s: float | None = None,
) -> LaunchOutcome:
    """Measure and store (node 0); on another node, take part and return how it ended."""
    plan.check()
    check_processes(plan, placement)
    store.check_writable()
    payload = plan.payload(placement)

    def command(path: Any) -> list[str]:
        return torchrun_command(plan.processes_per_node, placement, path)

    if placement is not None and placement.node_rank > 0:
        watch = WatchPlan(1.0, plan.device == "cuda", timed_phase="measure")
        return join_run(
            store, placement, payload, command, timeout_s, plan.processes_per_node, watch
        )
    run_id = new_run_id()
    store.create_run(
        run_id,
        "collective",
        payload.config(),
        workload="collectives",
        framework="pytorch",
        device=plan.device,
        num_gpus=plan.processes_per_node * (placement.nodes if placement else 1),
    )
    return launch_supervised(run_id, store, payload, command, timeout_s, placement=placement)


def torchrun_command(processes: int, placement: Placement | None, payload: Any) -> list[str]:
    where = (
        placement.torchrun_args(processes)
        if placement is not None
        else ["--standalone", f"--nproc-per-node={processes}", "--max-restarts=0"]
    )
    return [sys.executable, "-m", "torch.distributed.run", *where, "-m", MODULE, str(payload)]
