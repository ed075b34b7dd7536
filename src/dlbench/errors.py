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


class RunInterrupted(Exception):
    """Raised in a run's process on SIGTERM (Slurm's time limit, a kill, its launcher's
    death), as Ctrl-C raises KeyboardInterrupt."""
