"""The one exception tree of dlbench.

Every error a user can cause or fix is a ``DlbenchError``; the CLI prints it as one line
(``error: ...``) with an optional hint and exits with code 2. Third-party exceptions are
translated at the boundary (``raise StoreError(...) from exc``).
"""

from __future__ import annotations


class DlbenchError(Exception):
    """Base of every error dlbench reports to a user."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(DlbenchError):
    """An option, a workload name or a configuration value is not valid. ``field`` is the
    RunSpec field at fault and ``option`` its command-line option, where there is one."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        field: str | None = None,
        option: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.field = field
        self.option = option


class DataError(DlbenchError):
    """A dataset is missing, unreadable or not in the format expected."""


class EngineUnavailable(DlbenchError):
    """A framework or a device the run asks for is not usable on this machine."""


class StoreError(DlbenchError):
    """The results database cannot be opened, written or read."""


class RunNotFound(StoreError):
    """No stored run matches the id given."""


class MalformedRun(StoreError):
    """A stored row that does not hold what dlbench writes (another program's, a damaged one):
    readers leave it out with a warning instead of failing on it. ``field`` is where."""

    def __init__(self, run_id: str, field: str, problem: str) -> None:
        super().__init__(
            f"run {str(run_id)[:80]!r} cannot be read: {field}: {problem}",
            "another program or a damaged import wrote it; dlbench rm RUN removes it",
        )
        self.run_id = run_id
        self.field = field


class ResultNotStored(StoreError):
    """A run ended but its result is not in the database asked for: it is in a saved-run file.
    The CLI exits with ``exit_code`` (5), not 2: nothing the user typed was wrong."""

    exit_code = 5

    def __init__(self, run_id: str, path: str) -> None:
        super().__init__(
            f"run {run_id} was not stored in the database; its result is saved in {path}",
            f"put it back with dlbench import {path} once the database can take it",
        )
        self.run_id, self.path = run_id, path


class RunInterrupted(Exception):
    """Raised in a run's process on SIGTERM (Slurm's time limit, a kill, its launcher's
    death), as Ctrl-C raises KeyboardInterrupt."""


class MissingExtra(ConfigError):
    """A command needs an optional part of dlbench that is not installed."""


def require(module: str, extra: str, needed_by: str) -> None:
    """Find the top-level ``module`` installed, or raise MissingExtra naming the extra that
    brings it: dlbench's core install leaves the dashboard, PostgreSQL, Slurm, Parquet, ... to
    extras. It is found, not imported: scikit-learn alone takes 1.4 s to import, paid again
    by the process that uses it."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module whose import was blocked, or has no spec
        found = False
    if not found:
        raise MissingExtra(
            f"{needed_by} needs the {module.split('.')[0]} package, which is not installed",
            f"pip install 'dlbench[{extra}]'",
        ) from None
