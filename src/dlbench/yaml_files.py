"""YAML files the user hands dlbench (sweeps, price tables), read safely and in bounded time.

``yaml.safe_load`` builds no objects, but aliases let a few hundred bytes stand for billions of
values (the "billion laughs"): whatever walks the result afterwards (validation, JSON) never
ends. The document is composed first, its size counted with each alias expanded, and refused
past ``MAX_VALUES`` before anything is built.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_VALUES = 100_000  # far beyond any sweep or price table; a bomb expands to billions


class TooLarge(yaml.YAMLError):
    def __init__(self, values: int) -> None:
        super().__init__(
            f"the document expands to more than {MAX_VALUES:,} values through its aliases; "
            "write the values out, or use fewer aliases"
        )
        self.problem = str(self)


def load(text: str) -> tuple[Any, yaml.Node | None]:
    """The document's content and its node tree (for line numbers); raises yaml.YAMLError."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        expanded = _expanded_size(node, {})
        if expanded > MAX_VALUES:
            raise TooLarge(expanded)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """Values in ``node`` with every alias expanded; shared nodes are counted once per use
    but computed once, so a bomb is measured in linear time."""
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = MAX_VALUES + 1  # a node inside itself (a recursive alias) is too large
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, seen)
            if total > MAX_VALUES:
                break
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _expanded_size(key, seen) + _expanded_size(value, seen)
            if total > MAX_VALUES:
                break
    seen[id(node)] = total
    return total
