"""What a launcher hands the process it starts, as one typed record per kind of run: written
as JSON to a file whose path is the process's one argument, and validated when read back.

The launcher fills in where the run is stored and where its process leaves word (``placed``);
whoever asks for the run fills in the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from dlbench.config import RunSpec

P = TypeVar("P", bound="RunPayload")


class RunPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = ""  # the row the process closes
    db: str = ""  # the results database's URL
    crash_file: str = ""  # where faulthandler writes a crash's traceback
    unsaved_marker: str | None = None  # where the process names its saved-run file, if any

    def placed(self: P, run_id: str, db: str, crash_file: str, unsaved_marker: str | None) -> P:
        return self.model_copy(
            update={
                "run_id": run_id,
                "db": db,
                "crash_file": crash_file,
                "unsaved_marker": unsaved_marker,
            }
        )

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json())

    @classmethod
    def read(cls: type[P], path: str | Path) -> P:
        return cls.model_validate_json(Path(path).read_text())


class TrainPayload(RunPayload):
    """A training benchmark (``dlbench.runner.child``)."""

    spec: RunSpec
    progress: bool = False  # rank 0 draws a progress bar on the terminal


class CollectivesPayload(RunPayload):
    """A collectives run (``dlbench.runner.collectives``); also the run's stored config."""

    operations: list[str] = Field(min_length=1)
    sizes: list[int] = Field(min_length=1)
    gpus: int = Field(ge=1)  # processes per node
    nodes: int = Field(default=1, ge=1)
    device: str
    iters: int | None = None  # calls per round; None: chosen per size
    warmup: int = Field(ge=0)
    rounds: int = Field(ge=1)
    tags: dict[str, str] = Field(default_factory=dict)

    def config(self) -> dict[str, object]:
        """The run's configuration as stored: the record without where it goes."""
        return self.model_dump(mode="json", exclude=set(RunPayload.model_fields))
