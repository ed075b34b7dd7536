"""Tables and the progress bar of ``dlbench sweep`` (Rich)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dlbench.render.console import plain, status_text, table, text
from dlbench.render.run import quality_word, speed_text
from dlbench.store.stored import StoredRun, speed_unit

if TYPE_CHECKING:  # a type only: rendering sits below the sweep package
    from dlbench.sweep.execute import SweepRow


def sweep_plan(sweep: Any, planned: list[Any], executor: str) -> Group:
    rows = [
        (
            str(i + 1),
            p.run.label,
            p.run.key[:12],
            text(f"skip: {p.skip_reason}", "dim") if p.skip_reason else "run",
        )
        for i, p in enumerate(planned)
    ]
    running = sum(1 for p in planned if not p.skip_reason)
    title = f"sweep {sweep.name}: {len(planned)} run(s), {running} to run ({executor})"
    return Group(table(title, ("#", "Run", "Key", "Action"), rows))


class SweepProgress:
    """One bar over the sweep's runs, with the run in progress and an ETA."""

    def __init__(self, total: int, console: Console) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.bar.add_task("sweep", total=total)
        self.console = console
        self._started = 0.0

    def __enter__(self) -> SweepProgress:
        self.bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.bar.stop()

    def start(self, run: Any) -> None:
        self._started = time.monotonic()
        self.bar.update(self.task, description=plain(run.label))

    def end(self, run: Any, summary: StoredRun) -> None:
        self.bar.advance(self.task)
        speed = summary.mean_speed
        figure = f"{speed:,.1f} {summary.speed_unit}" if speed else summary.error or ""
        if summary.tokens_per_s:
            figure += f", {summary.tokens_per_s:,.0f} tokens/s"
        word = quality_word(summary)
        self.console.print(
            f"{plain(run.label)}: {status_text(summary.status).markup} {plain(figure)}"
            + (f", {word.markup}" if word else "")
            + f" ({time.monotonic() - self._started:,.0f} s)"
        )


def sweep_table(name: str, rows: list[SweepRow]) -> Table:
    return table(
        f"sweep {name}",
        (
            "Run",
            "Device",
            "GPUs",
            "Batch",
            f"Speed ({speed_unit(row.run for row in rows)}, 95% CI)",
            "Quality",
            "Scaling eff.",
            "Staged from",
            "Status",
            "Run id",
        ),
        [
            (
                r.label,
                r.run.device,
                r.gpus,
                r.run.batch_size,
                speed_text(r.run),
                quality_word(r.run),
                f"{r.scaling_efficiency:.0%}" if r.scaling_efficiency else None,
                r.run.staged_from or "—",
                status_text(r.run.status),
                r.run.run_id,
            )
            for r in rows
        ],
    )


def jobs_table(name: str, report: list[tuple[Any, str, str | None]]) -> Table:
    return table(
        f"sweep {name}: Slurm jobs",
        ("Run", "Job", "Slurm state", "Stored", "Submitted"),
        [
            (sub.label, sub.job_id, state, status_text(stored) if stored else "—", sub.submitted_at)
            for sub, state, stored in report
        ],
    )
