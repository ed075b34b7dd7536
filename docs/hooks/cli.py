"""MkDocs hook: the command-line reference, generated from dlbench's Typer application.

A page writes ``<!-- cli: dlbench -->`` and gets every command (sub-commands included) with
its whole help, its usage line and a table of its arguments and options as ``--help`` shows
them (defaults and bounds included). A command added, renamed or removed changes the page;
nothing is written by hand.
"""

from __future__ import annotations

import re
from typing import Any

MARKER = re.compile(r"<!-- cli: dlbench -->")


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda _match: cli_reference(), markdown)


def cli_reference() -> str:
    import typer
    from typer._click.core import Context

    from dlbench.cli import app

    group = typer.main.get_command(app)
    root = Context(group, info_name="dlbench")
    parts = [_command(group, root, "dlbench", level=2)]
    for name in sorted(group.commands):
        parts.append(_walk(group.commands[name], root, name, f"dlbench {name}", Context))
    return "\n".join(parts)


def _walk(command: Any, parent: Any, name: str, path: str, context: Any) -> str:
    ctx = context(command, info_name=name, parent=parent)
    text = _command(command, ctx, path, level=2)
    for sub in sorted(getattr(command, "commands", {}) or {}):
        text += "\n" + _walk(command.commands[sub], ctx, sub, f"{path} {sub}", context)
    return text


def _command(command: Any, ctx: Any, path: str, level: int) -> str:
    lines = [f"{'#' * level} `{path}`", ""]
    if command.help:
        lines += [_escape(command.help.strip()), ""]
    usage = command.get_usage(ctx).removeprefix("Usage: ")
    lines += ["```", usage, "```", ""]
    records = [p.get_help_record(ctx) for p in command.params]
    records = [r for r in records if r is not None]
    if records:
        lines += ["| argument or option | meaning |", "|---|---|"]
        lines += [f"| `{_cell(opts)}` | {_cell(_escape(said))} |" for opts, said in records]
        lines.append("")
    return "\n".join(lines)


def _escape(text: str) -> str:
    """Help text is plain text: angle brackets shown, never taken for HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
