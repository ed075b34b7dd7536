"""Scaling over 1 and 2 "nodes" x 1 and 2 processes each, on this machine: weak and strong.

Two nodes are two dlbench agents meeting over TCP on localhost (`--nodes 2 --node-rank K
--rdzv-endpoint 127.0.0.1:PORT`, each named through DLBENCH_HOSTNAME), as on two hosts; one
node is `--gpus-per-node N` alone. Weak scaling keeps each process's batch; strong scaling
keeps the global batch (each process takes batch / processes). Configurations alternate
within each repeat. `dlbench scaling` gives speed, speed-up and efficiency with their
intervals, and each run's ranks say what share of a step is communication (steps timed
without the gradient all-reduce). On a 2-core machine 4 processes share 2 cores: the figures
say what this machine does, not what a cluster's interconnect would.

    .venv/bin/python benchmarks/multinode_scaling.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import machine, write_section

WORKLOADS = {
    "lenet-mnist": (64, ["--steps", "60", "--warmup", "5"]),
    "gpt": (8, ["--depth", "2", "--width", "128", "--seq-len", "128", "--vocab", "4096"]
            + ["--steps", "25", "--warmup", "3"]),
}  # fmt: skip
COMMON = ["--device", "cpu", "--workers", "0", "--val-batches", "2", "--no-infer"]
LAYOUTS = ((1, 1), (1, 2), (2, 1), (2, 2))  # (nodes, processes per node)


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(workload: str, batch: int, extra: list[str], nodes: int, per_node: int, db: Path) -> None:
    base = [sys.executable, "-m", "dlbench", "run", workload, *COMMON, *extra]
    base += ["--batch-size", str(batch), "--db", str(db), "--tag", "bench=multinode"]
    if nodes == 1:
        done = subprocess.run([*base, "--gpus-per-node", str(per_node)], capture_output=True,
                              text=True, timeout=1800)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr[-800:])
        return
    port = _port()
    agents = [
        subprocess.Popen(
            [*base, "--nodes", "2", "--gpus-per-node", str(per_node), "--node-rank", str(k)]
            + ["--rdzv-endpoint", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**__import__("os").environ, "DLBENCH_HOSTNAME": f"node{k}"},
        )
        for k in (0, 1)
    ]
    for agent in agents:
        _, err = agent.communicate(timeout=1800)
        if agent.returncode != 0:
            raise SystemExit(err[-800:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scaling.sqlite"
        for repeat in range(args.repeats):
            for workload, (batch, extra) in WORKLOADS.items():
                for nodes, per_node in LAYOUTS:
                    processes = nodes * per_node
                    run(workload, batch, extra, nodes, per_node, db)  # weak
                    if processes > 1:  # strong: the 1-process batch, split
                        run(workload, batch // processes, extra, nodes, per_node, db)
                    print(f"repeat {repeat}: {workload} {nodes}x{per_node} done", flush=True)
        shown = subprocess.run(
            [sys.executable, "-m", "dlbench", "scaling", "--db", str(db)],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "COLUMNS": "160"},
        ).stdout
    markdown = f"""
{machine()}; {args.repeats} repeats of every layout, interleaved. Weak scaling: lenet-mnist
batch 64 and gpt (2 blocks, width 128, 128 tokens, vocabulary 4,096) batch 8 per process;
strong scaling: that batch split over the processes. Two "nodes" are two agents on this
machine meeting over TCP on localhost (gloo), so "communication" here is loopback TCP between
processes that also share its 2 cores.

```
{shown.strip()}
```

Command: `.venv/bin/python benchmarks/multinode_scaling.py --repeats {args.repeats}`
"""
    print(markdown)
    if not args.no_write:
        write_section("multinode-scaling", markdown)


if __name__ == "__main__":
    main()
