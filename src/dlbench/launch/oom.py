"""Did the kernel's out-of-memory killer stop a run? Its memory cgroups count the kills.

A process killed by SIGKILL died of the OOM killer when a memory cgroup it belongs to counted
one more kill meanwhile. The count is read from the process's own memory cgroup and every
parent up to the mount's root (a limit can be set at any level: a Slurm job's step, a
container, a systemd slice), in both hierarchies: cgroup v2's ``memory.events`` and cgroup
v1's ``memory.oom_control``, each with an ``oom_kill`` line (v1 since Linux 4.13).
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
COUNTERS = ("memory.events", "memory.oom_control")  # v2, v1


def oom_kills(pid: int | None = None, root: Path = CGROUP_ROOT) -> int | None:
    """Out-of-memory kills counted by ``pid``'s memory cgroups (default: this process), summed
    over the cgroup and its parents; None where no counter can be read."""
    counts = [_count(folder / name) for folder in memory_cgroups(pid, root) for name in COUNTERS]
    found = [c for c in counts if c is not None]
    return sum(found) if found else None


def memory_cgroups(pid: int | None = None, root: Path = CGROUP_ROOT) -> list[Path]:
    """The folders of ``pid``'s memory cgroups, its own first, then each parent to the root:
    the unified (v2) hierarchy's and the v1 memory controller's, where mounted."""
    try:
        lines = Path(f"/proc/{pid or os.getpid()}/cgroup").read_text().splitlines()
    except OSError:
        return [root]
    folders: list[Path] = []
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if controllers == "":  # cgroup v2: "0::/path", mounted at the root (or root/unified)
            bases = [root, root / "unified"]
        elif "memory" in controllers.split(","):
            bases = [root / controllers, root / "memory"]
        else:
            continue
        for base in bases:
            if base.is_dir():
                folders += _up_to(base, path)
                break
    return folders or [root]


def _up_to(base: Path, path: str) -> list[Path]:
    """``base``/``path`` and each parent folder of it up to ``base`` itself."""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    return [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _count(counter: Path) -> int | None:
    try:
        for line in counter.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None
