"""Lazy registries: a name maps to "module:attribute", imported only when used.

So ``dlbench list`` never imports torch, and a framework that is not installed costs nothing
until a run asks for it (the approach of AlgoPerf's workload registry).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from typing import Any

from dlbench.errors import ConfigError


def resolve(path: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def unknown_name(kind: str, name: str, known: Iterable[str]) -> ConfigError:
    """The error for a name that no registry entry has, with the nearest names as a hint."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=2)
    hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(names)}"
    return ConfigError(f"unknown {kind} {name!r}", hint)
