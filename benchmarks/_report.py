"""Write a benchmark's figures into its own section of docs/benchmarks.md."""

from __future__ import annotations

import platform
import re
from datetime import date
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    from dlbench.sysinfo import cpu_model, usable_cpus

    return f"{cpu_model()}, {usable_cpus()} usable CPUs, Python {platform.python_version()}"


def write_section(name: str, markdown: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    body = f"{start}\n_Measured {date.today():%Y-%m-%d}._\n\n{markdown.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else f"{text}\n{body}\n"
    DOC.write_text(text)
