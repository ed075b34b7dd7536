"""MkDocs hook: a table of a class's fields, generated from its definition at build time.

A page writes ``<!-- fields: dlbench.sweep.file.SweepFile -->`` and gets one row per field:
name, type, default (and a pydantic field's bounds), its declared description and the comment
written beside it in the code. A class that moved or was renamed fails the build (``mkdocs
build --strict``), so the reference cannot drift from the code.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import io
import re
import textwrap
import tokenize
from typing import Any

MARKER = re.compile(r"<!-- fields: ([\w.]+) -->")
BOUNDS = ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern")


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda match: fields_table(match.group(1)), markdown)


def fields_table(path: str) -> str:
    module_name, _, name = path.rpartition(".")
    owner = getattr(importlib.import_module(module_name), name)
    source = textwrap.dedent(inspect.getsource(owner))
    comments = _comments(source)
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for node in body.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        field = node.target.id
        if field == "model_config":
            continue
        said = comments.get(node.end_lineno or node.lineno) or comments.get(node.lineno, "")
        above = comments.get(-(node.lineno - 1), "")
        meaning = "; ".join(part for part in (above, said, _described(owner, field)) if part)
        default = _default(owner, field)
        shown_type = _cell(ast.unparse(node.annotation))
        rows.append(f"| `{field}` | `{shown_type}` | {default} | {_cell(meaning)} |")
    return "\n".join(rows) + "\n"


def _comments(source: str) -> dict[int, str]:
    """Comments by line: a trailing comment under its line number, a comment alone on its
    line under minus that number (it speaks of the field below it)."""
    found: dict[int, str] = {}
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        row = token.start[0]
        text = token.string.lstrip("#").strip()
        if text.startswith(("noqa", "type:", "fmt:")):
            continue
        alone = not lines[row - 1][: token.start[1]].strip()
        found[-row if alone else row] = text
    return found


def _described(owner: type, field: str) -> str:
    """A pydantic field's declared help; a run option's with its command-line names, as
    ``dlbench run --help`` shows them."""
    from dlbench.config.option import cli_option

    model_fields = getattr(owner, "model_fields", None)
    if model_fields is None:
        return ""
    info = model_fields[field]
    declared = cli_option(field, info)
    if declared is None:
        return info.description or ""
    return f"{', '.join(f'`{flag}`' for flag in declared.flags)}: {declared.help}"


def _default(owner: type, field: str) -> str:
    model_fields = getattr(owner, "model_fields", None)
    if model_fields is not None:  # pydantic
        info = model_fields[field]
        if info.default_factory is not None:
            shown = "empty"
        elif info.is_required():
            shown = "required"
        else:
            shown = f"`{info.default!r}`"
        bounds = [
            f"{key} {getattr(item, key)}"
            for item in info.metadata
            for key in BOUNDS
            if getattr(item, key, None) is not None
        ]
        return shown + (f" ({', '.join(bounds)})" if bounds else "")
    for item in dataclasses.fields(owner):
        if item.name == field:
            if item.default is not dataclasses.MISSING:
                return f"`{item.default!r}`"
            return "empty" if item.default_factory is not dataclasses.MISSING else "required"
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
