"""Runs beyond one process as the terminal shows them: each rank's pace and the stragglers,
and collectives (a row per size as it is measured, then the table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from dlbench.analysis.stragglers import stragglers
from dlbench.measure.collectives import CollectiveResult
from dlbench.measure.units import fmt_bytes
from dlbench.render.console import make_console, plain, table, text
from dlbench.store.stored import StoredRun

COLUMNS = (
    "operation",
    "size",
    "calls",
    "time (µs)",
    "algbw (GB/s)",
    "busbw (GB/s)",
    "busbw 95% CI",
    "check",
)


def _row(result: CollectiveResult) -> list[str | None]:
    interval = result.busbw_ci95_gb_s
    check = {True: "ok", False: "WRONG", None: "—"}[result.correct]
    return [
        result.operation,
        fmt_bytes(result.size_bytes),
        str(result.calls),
        f"{result.time_s * 1e6:,.1f}",
        f"{result.algbw_gb_s:,.3f}",
        f"{result.busbw_gb_s:,.3f}",
        f"{interval[0]:,.3f}–{interval[1]:,.3f}" if interval else None,
        check,
    ]


def print_row(result: CollectiveResult) -> None:
    """One measured size, printed as it comes (nccl-tests prints its rows so too), to stderr
    as progress is: stdout is the table's, or --json -'s."""
    cells = _row(result)
    make_console(stderr=True).print(
        f"  {cells[0]:<15} {cells[1]:>10}  {cells[3]:>12} µs  busbw {cells[5]:>9} GB/s  {cells[7]}",
        markup=False,
        highlight=False,
    )


def collectives_table(results: Sequence[CollectiveResult], title: str | None = None) -> Table:
    return table(title, COLUMNS, [_row(r) for r in results], optional=("calls", "busbw 95% CI"))


def link_line(run: StoredRun) -> str:
    """The links the bus bandwidth can be read against: each node's nominal rates, where
    sysfs gives them; on one node, that no network carried it."""
    nodes = int(run.config.get("nodes") or 1)
    found = (run.hardware or {}).get("links") or []
    if nodes == 1:
        return (
            "one node: the processes exchanged data through its memory (shared memory or "
            "loopback for gloo, NVLink or PCIe for NCCL), not a network"
        )
    if not found:
        return "links: node 0 reports no network rate in sysfs (a VM's NIC often does not)"
    shown = ", ".join(
        f"{plain(link.get('name'))} {plain(link.get('kind'))} {link.get('gbit_s')} Gb/s "
        f"= {float(link.get('gbit_s') or 0) / 8:,.1f} GB/s"
        for link in found[:6]
    )
    return f"node 0's links (nominal): {shown}"


def ranks_parts(run: StoredRun) -> list[Any]:
    """Each rank's host and pace, and the straggler verdict (nothing for one process)."""
    found = stragglers(run.ranks)
    if found is None:
        return []
    by_rank = {p.rank: p for p in found.paces}
    rows = []
    for rank in run.ranks:
        pace = by_rank.get(rank.rank)
        synced = rank.speed.mean_step_time_s * 1e3 if rank.speed else None
        own = rank.sync_free_step_time_s
        rows.append(
            (
                rank.rank,
                rank.host,
                rank.local_rank,
                f"{synced:,.2f}" if synced is not None else None,
                f"{own * 1e3:,.2f}" if own is not None else None,
                text(f"{pace.excess:+.1%}", "red" if pace.flagged else "") if pace else None,
            )
        )
    columns = ("Rank", "Host", "Local", "Step (ms)", "Own step (ms)", "vs median")
    parts: list[Any] = [table("ranks", columns, rows, optional=("Local",))]
    style = "red" if found.flagged else ""
    parts.append(text(found.line(), style))
    if found.communication_share is not None:
        parts.append(
            f"communication: {found.communication_share:.0%} of a synchronised step (the "
            "all-reduce and the wait for the slowest rank, beyond each rank's own pace)"
        )
    return parts


def straggler_warning(run: StoredRun) -> str | None:
    """One line for ``compare``: the run's flagged ranks, if any."""
    found = stragglers(run.ranks)
    if found is None or not found.flagged:
        return None
    return f"{run.run_id}: {found.line()}"


def collectives_comparison(runs: Sequence[StoredRun]) -> Table:
    """Collectives runs side by side: bus bandwidth per operation and size, and each run's
    ratio to the first where both measured it."""
    first = {(r.operation, r.size_bytes): r for r in runs[0].collectives}
    keys = sorted(
        {(r.operation, r.size_bytes) for run in runs for r in run.collectives},
        key=lambda key: (key[0], key[1]),
    )
    columns = ["operation", "size"]
    for run in runs:
        nodes = run.config.get("nodes") or 1
        columns.append(f"{run.run_id} busbw GB/s ({nodes}x{run.config.get('gpus')})")
    rows = []
    for key in keys:
        row: list[Any] = [key[0], fmt_bytes(key[1])]
        for index, run in enumerate(runs):
            found = next((r for r in run.collectives if (r.operation, r.size_bytes) == key), None)
            cell = f"{found.busbw_gb_s:,.3f}" if found else None
            base = first.get(key)
            if found and base and index:
                cell = f"{cell} ({found.busbw_gb_s / base.busbw_gb_s:.2f}x)"
            row.append(cell)
        rows.append(row)
    return table("bus bandwidth by run (ratio to the first)", columns, rows)
