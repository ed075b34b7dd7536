"""A run option is declared once, on its ``RunSpec`` field: name, type, default, bounds, help,
and where the command line shows it. ``dlbench run``'s options, the sweep file's keys,
``dlbench.run()``'s keywords and the docs' tables are all read from that declaration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

# The command line's help panels, in the order `dlbench run --help` shows them.
WHAT = "What to train"
HOW_LONG = "How long"
DATA = "Data"
AFTER = "Phases after the timed steps"
MEASUREMENT = "Measurement"
NODES = "Across nodes"
PROMETHEUS = "Prometheus"
OUTPUT = "Output"
GENERATION = "Generation"


@dataclass(frozen=True)
class CliOption:
    """How a field appears on the command line."""

    field: str
    help: str
    panel: str
    flags: tuple[str, ...]  # its names: --field-name unless declared


def option(default: Any, panel: str, help: str, *flags: str, **constraints: Any) -> Any:
    """A RunSpec field that is also a command-line option (``flags``: its names, default
    ``--field-name``); ``constraints`` are pydantic's (gt, le, max_length...)."""
    return Field(
        default,
        description=help,
        json_schema_extra={"cli_panel": panel, "cli_flags": list(flags)},
        **constraints,
    )


def cli_options(model: type[BaseModel]) -> list[CliOption]:
    """The fields of ``model`` declared as command-line options, in declaration order."""
    found = []
    for name, info in model.model_fields.items():
        declared = cli_option(name, info)
        if declared is not None:
            found.append(declared)
    return found


def cli_option(name: str, info: FieldInfo) -> CliOption | None:
    extra = info.json_schema_extra
    if not isinstance(extra, dict) or "cli_panel" not in extra:
        return None
    flags = extra.get("cli_flags")
    names = tuple(str(f) for f in flags) if isinstance(flags, list) and flags else ()
    return CliOption(
        field=name,
        help=info.description or "",
        panel=str(extra["cli_panel"]),
        flags=names or ("--" + name.replace("_", "-"),),
    )
