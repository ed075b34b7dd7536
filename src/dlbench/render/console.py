"""Terminal rendering: progress bars and tables (Rich). No measuring, no storing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 160  # output to a file or pipe: wide enough that tables do not wrap


def make_console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


err_console = make_console(stderr=True)
REFRESH_S = 0.25  # progress redraws at most this often, so the bar costs the loop nothing


class ImagesPerSecond(ProgressColumn):
    """The phase's speed so far, in images per second (steps/s x images per step)."""

    def render(self, task: Task) -> Text:
        images = task.fields.get("images_per_step")
        if not images or not task.speed:
            return Text("")
        return Text(f"{task.speed * images:,.0f} img/s", style="progress.data.speed")


class RichProgress:
    """A progress bar per phase on stderr; updates are coalesced to a few per second."""

    def __init__(self, title: str, images_per_step: int | None = None) -> None:
        self._title = title
        self._images = images_per_step
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            ImagesPerSecond(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err_console,
            refresh_per_second=4,
            transient=False,
        )
        self._task: TaskID | None = None
        self._pending = 0
        self._last = 0.0
        self._bar.start()

    def phase(self, name: str, total: int | None) -> None:
        self._flush()
        if self._task is not None:
            self._bar.update(
                self._task,
                completed=self._bar.tasks[-1].total or 1,
                total=self._bar.tasks[-1].total or 1,
            )
        self._task = self._bar.add_task(
            f"{self._title} {name}", total=total, images_per_step=self._images
        )

    def advance(self) -> None:
        self._pending += 1
        now = time.monotonic()
        if now - self._last >= REFRESH_S:
            self._flush()
            self._last = now

    def _flush(self) -> None:
        if self._task is not None and self._pending:
            self._bar.advance(self._task, self._pending)
        self._pending = 0

    def close(self) -> None:
        self._flush()
        if self._task is not None and self._bar.tasks[-1].total is None:
            self._bar.update(self._task, total=1, completed=1)
        self._bar.stop()


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    optional: Sequence[str] = (),
) -> Table:
    """A table whose title, headers and text cells are shown as written: a stored ``[/x]`` or
    ``[link=...]`` is text, never Rich markup. A styled cell is a ``Text``. On a narrow
    terminal the ``optional`` columns go, first named first, before any cell is cut."""
    return FittedTable(title, columns, [[_cell(v) for v in row] for row in rows], optional)


WRAP_AT = 20  # a cell longer than this may wrap; shorter ones (ids, numbers, words) never do
WRAP_MIN = 12  # the narrowest a column of prose is wrapped to


class FittedTable(Table):
    """A table that fits the terminal by leaving out its least useful columns, as ``gh``,
    ``kubectl`` and ``docker ps`` do, instead of cutting every cell to three characters:
    each kept column is at least as wide as its cells (up to ``WRAP_AT``), and the first
    column (a run id, a metric) is never cut or wrapped."""

    def __init__(
        self,
        title: str | None,
        columns: Sequence[str],
        rows: list[list[Any]],
        optional: Sequence[str],
    ) -> None:
        super().__init__(
            title=None if title is None else plain(title), title_justify="left",
            header_style="bold",
        )  # fmt: skip
        self._names, self._cells, self._optional = list(columns), rows, list(optional)
        self._fill(self, list(range(len(columns))), [0] * len(columns), {})

    def _fill(
        self, target: Table, keep: list[int], least: list[int], fixed: dict[int, int]
    ) -> None:
        for i in keep:
            name = self._names[i]
            justify: JustifyMethod = "left" if i == 0 or not _numeric(name) else "right"
            # at least as wide as its cells: a cell wraps only past WRAP_AT, a header at spaces;
            # prose gets the width it was given, and folds a word too long for it (never cut)
            target.add_column(
                plain(name), justify=justify, no_wrap=i == 0, min_width=least[i] or None,
                width=fixed.get(i), overflow="fold" if i in fixed else "ellipsis",
            )  # fmt: skip
        for row in self._cells:
            target.add_row(*(row[i] for i in keep))

    def _widths(self) -> tuple[list[int], list[int], list[int]]:
        """Each column's longest cell; its comfortable width: that (up to WRAP_AT, the first
        column's always whole), and at least its header's longest word; and its narrowest:
        its longest word (the first column's whole)."""
        longest, least, words = [], [], []
        for i, name in enumerate(self._names):
            cells = max([_width(row[i]) for row in self._cells] or [0])
            comfortable = cells if i == 0 else min(cells, WRAP_AT)
            if i and cells > WRAP_AT:  # prose (a description): it wraps, narrow enough
                word = max(_longest_word(row[i]) for row in self._cells)
                comfortable = max(WRAP_MIN, min(word, WRAP_AT))
            header = max(len(word) for word in name.split() or [""])
            longest.append(max(cells, header))
            least.append(max(comfortable, header))
            word = max((_longest_word(row[i]) for row in self._cells), default=0)
            words.append(max(cells if i == 0 else min(word, comfortable), header))
        return longest, least, words

    def _fitted(self, max_width: int) -> Table:
        longest, least, words = self._widths()
        keep = list(range(len(self._names)))
        for name in self._optional:
            if sum(least[i] + 3 for i in keep) + 1 <= max_width:
                break
            if name in self._names and self._names.index(name) in keep:
                keep.remove(self._names.index(name))
        if sum(least[i] + 3 for i in keep) + 1 > max_width:
            least = words  # still too wide: cells wrap at their spaces rather than be cut
        fitted = Table(title=self.title, title_justify="left", header_style="bold")
        self._fill(fitted, keep, least, _prose_widths(keep, longest, least, max_width))
        return fitted

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._fitted(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self._fitted(options.max_width))


def _prose_widths(
    keep: list[int], longest: list[int], least: list[int], max_width: int
) -> dict[int, int]:
    """Where the kept columns do not fit whole, the room the others leave goes to the prose
    columns, levelled: every one as wide as a common level (at least its narrowest, at most
    its longest cell), the level as high as fits. A short list stays whole on one line and a
    long description takes the rest, instead of all of them squeezed to one width."""
    if sum(longest[i] + 3 for i in keep) + 1 <= max_width:
        return {}
    prose = [i for i in keep if i and longest[i] > WRAP_AT]
    room = max_width - 1 - 3 * len(keep) - sum(least[i] for i in keep if i not in prose)

    def at(level: int) -> dict[int, int]:
        return {i: min(longest[i], max(least[i], level)) for i in prose}

    if not prose or sum(at(0).values()) > room:
        return {}  # even the narrowest does not fit: Rich squeezes what is left
    low, high = 0, max(longest)  # the highest level that fits, by bisection
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if sum(at(mid).values()) <= room else (low, mid - 1)
    return at(low)


def _longest_word(cell: Any) -> int:
    text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
    return max((cell_len(word) for word in text.plain.split()), default=0)


def _width(cell: Any) -> int:
    text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


def _cell(value: Any) -> Any:
    if value is None:
        return "—"
    if isinstance(value, Text):
        return value
    return plain(value)


# Control characters other than newline and tab: an ESC in a stored string would otherwise
# reach the terminal as an escape sequence (colours, cursor moves, hyperlinks, a cleared screen).
_CONTROLS = {c: "\ufffd" for c in (*range(0, 9), *range(11, 32), 127)}


def plain(value: Any) -> str:
    """Any value, stored or typed by a user, as console markup that shows it literally."""
    return escape(str(value).translate(_CONTROLS))


def text(value: Any, style: str = "") -> Text:
    """A stored or user-given string as one styled ``Text``: never markup, never a control."""
    return Text(str(value).translate(_CONTROLS), style=style)


def _numeric(name: str) -> bool:
    return any(
        word in name.lower()
        for word in (
            "speed",
            "time",
            "img",
            "acc",
            "batch",
            "steps",
            "ms",
            "mem",
            "gpus",
            "±",
            "jitter",
            "s)",
        )
    )


STATUS_STYLE = {
    "ok": "green",
    "oom": "magenta",
    "failed": "red",
    "interrupted": "yellow",
    "timeout": "yellow",
    "running": "cyan",
    "lost": "red",
}


def status_text(status: str) -> Text:
    """A run's status in its colour (in a line: ``status_text(s).markup``)."""
    return text(status, STATUS_STYLE.get(status, "white"))


DAY_S = 86_400
YEAR_S = 365.25 * DAY_S


def hms(seconds: float | None) -> str | None:
    """H:MM:SS up to two days; beyond, days ("3.4 days"), and years past one ("17.6 years"),
    which nobody reads off hours. None stays None."""
    if seconds is None:
        return None
    if seconds >= YEAR_S:
        return f"{seconds / YEAR_S:,.1f} years"
    if seconds >= 2 * DAY_S:
        return f"{seconds / DAY_S:,.1f} days"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class QuietConsole:
    """The pre-run quiet check's words on a console: warnings, and a countdown while waiting."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Any = None

    def warn(self, message: str) -> None:
        self._console.print(f"[yellow]warning:[/] {plain(message)}", highlight=False)

    def waiting(self, seconds_left: float, why: str) -> None:
        text = f"waiting for a quiet machine, {seconds_left:.0f} s left: {plain(why)}"
        if self._status is None:
            self._status = self._console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def done_waiting(self, message: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if message:
            self._console.print(plain(message), highlight=False)
