"""Tables and lines of several runs: the runs list, the quick start's comparison, and a
configuration's repeats (each as it ends, then what they say together)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from dlbench.measure.units import fmt
from dlbench.render.console import plain, status_text, table
from dlbench.render.run import accuracy_text, input_text, ms_text, quality_word, speed_text
from dlbench.store.stored import StoredRun, speed_unit


def comparison_table(summaries: list[StoredRun], title: str) -> Table:
    return table(
        title,
        (
            "Workload",
            "Data",
            "Input",
            "Device",
            "Batch",
            "Precision",
            f"Speed ({speed_unit(summaries)}, 95% CI)",
            "Quality",
            "Step (ms)",
            "TFLOP/s (MFU)",
            "Train (s)",
            "Accuracy",
            "Status",
        ),
        [
            (
                s.workload,
                s.data,
                input_text(s),
                s.device,
                s.batch_size,
                s.precision,
                speed_text(s),
                quality_word(s),
                ms_text(s.mean_step_time_s),
                _tflops_short(s),
                fmt(s.train_time_s, 2),
                accuracy_text(s),
                status_text(s.status),
            )
            for s in summaries
        ],
        # at 80 columns: the workload, its input, speed, quality, accuracy and status
        optional=(
            "Train (s)",
            "TFLOP/s (MFU)",
            "Precision",
            "Device",
            "Step (ms)",
            "Batch",
            "Data",
        ),  # fmt: skip
    )


def _tflops_short(summary: StoredRun) -> str | None:
    achieved = summary.achieved_tflops
    if achieved is None:
        return None
    mfu = summary.mfu
    return f"{achieved:,.3f}" + (f" ({mfu:.0%})" if mfu is not None else "")


def quickstart_footer(summaries: list[StoredRun], where: str) -> str:
    failed = [s for s in summaries if s.status != "ok"]
    lines = [
        f"[bold]{len(summaries) - len(failed)} of {len(summaries)} runs ok[/], stored in "
        + plain(where)
    ]
    lines += [f"[red]{plain(f'{s.workload}: {s.status}: {s.error}')}[/]" for s in failed]
    contended = [s for s in summaries if s.quality_verdict == "contended"]
    if contended:
        lines.append(
            f"[yellow]{len(contended)} of {len(summaries)} runs were measured contended: other "
            "work took part of their CPUs, so those speeds are this busy machine's, not its "
            "hardware's. Measure again on the idle CPUs (dlbench quickstart --cpus auto) or "
            "when it is quiet; dlbench show RUN_ID says how much other work there was[/]"
        )
    lines.append("next: dlbench runs · dlbench show RUN_ID --steps · dlbench export --format csv")
    return "\n".join(lines)


def runs_table(summaries: list[StoredRun]) -> Table:
    return table(
        None,
        (
            "Run",
            "Date (UTC)",
            "Workload",
            "Input",
            "Device",
            "Batch",
            f"Speed ({speed_unit(summaries)}, 95% CI)",
            "Quality",
            "Accuracy",
            "Status",
        ),
        [
            (
                s.run_id,
                str(s.created_at)[:19].replace("T", " "),
                f"{s.workload} (monitor)" if s.is_monitor else s.workload,
                input_text(s),
                s.device,
                f"c{s.serving.concurrency}" if s.serving else s.batch_size,
                speed_text(s),
                quality_word(s),
                accuracy_text(s),
                status_text(s.status),
            )
            for s in summaries
        ],
        # at 80 columns: the run, its workload, speed, quality and status, never cut
        optional=("Accuracy", "Date (UTC)", "Batch", "Device", "Input"),
    )


def repeat_line(run: StoredRun) -> str:
    """One repeat as it ends: its id, status, speed and quality verdict."""
    speed = speed_text(run)
    word = quality_word(run)
    return (
        f"{run.run_id} {status_text(run.status).markup}"
        + (f" {speed.markup} {run.speed_unit}" if speed else "")
        + (f", {word.markup}" if word else "")
    )


def baseline_hint(summaries: list[StoredRun]) -> str:
    """How to keep repeats as a check's reference, saying what a contended one needs."""
    ok = [s for s in summaries if s.status == "ok"]
    if not ok:
        return "no repeat ended ok: nothing to keep as a reference"
    hint = "keep them as a reference for dlbench check: dlbench baseline set NAME " + " ".join(
        s.run_id for s in ok
    )
    if any(s.quality_verdict == "contended" for s in ok):
        hint += (
            " --accept-contended\n[yellow]they were measured contended: --accept-contended "
            "keeps them knowingly (baseline list and every check say so); or measure again "
            "with --cpus auto (the idle CPUs) or --wait-quiet SECONDS[/]"
        )
    return hint


def between_runs_lines(spread: Any, summaries: list[StoredRun]) -> str:
    """Repeats of one configuration: the between-run mean, its spread and interval."""
    if spread is None:
        return "[red]no repeat ended ok: nothing to summarise[/]"
    unit = speed_unit(summaries)
    lines = [
        f"between runs ({spread.runs} ok of {len(summaries)}): mean {spread.mean_speed:,.1f} {unit}"
    ]
    if spread.ci95 is not None:
        lines[0] += (
            f", 95% CI {spread.ci95[0]:,.1f}–{spread.ci95[1]:,.1f}, coefficient of variation "
            f"{spread.cv:.1%}, range {spread.low:,.1f}–{spread.high:,.1f}"
        )
    widths = [
        (s.speed_ci95[1] - s.speed_ci95[0]) / 2 / s.mean_speed
        for s in summaries
        if s.speed_ci95 and s.mean_speed
    ]
    if widths and spread.cv is not None:
        lines.append(
            f"within a run the 95% CI is ±{sum(widths) / len(widths):.1%} of the speed on "
            f"average; between runs the speed varies by {spread.cv:.1%} (one standard deviation)"
        )
    not_clean = [s for s in summaries if s.quality_verdict in ("noisy", "contended")]
    if not_clean:
        lines.append(
            "[yellow]"
            + plain(", ".join(f"{s.run_id} {s.quality_verdict}" for s in not_clean))
            + ": see dlbench show RUN for why[/]"
        )
    return "\n".join(lines)
