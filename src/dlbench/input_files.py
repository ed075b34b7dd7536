"""Files a user hands dlbench (sweep and price YAML, saved runs and annotations in JSON), read
safely: bounded in size, time and depth, refused in one line when they are not what they claim.

Reading stops at a size limit, in chunks (so Ctrl-C and SIGTERM still work), and only from a
regular file: ``/dev/zero`` or a link to it would otherwise grow without end. The text must be
UTF-8. ``yaml.safe_load`` builds no objects, but aliases let a few hundred bytes stand for
billions of values (the "billion laughs"): whatever walks the result afterwards (validation,
JSON) never ends. A YAML document is composed first, its size counted with each alias
expanded, and refused past ``MAX_VALUES`` before anything is built. Nesting deeper than
``MAX_DEPTH`` is refused in both formats (no real file comes near it; a crafted one would
exhaust the interpreter's stack).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import yaml

from dlbench.errors import ConfigError

MAX_VALUES = 100_000  # far beyond any sweep or price table; a bomb expands to billions
MAX_DEPTH = 64  # levels of nesting; dlbench's own files use fewer than 10
CHUNK_BYTES = 1 << 20
MAX_YAML_BYTES = 1 << 20  # a sweep or price table of a megabyte is already absurd


class TooLarge(yaml.YAMLError):
    def __init__(self, values: int) -> None:
        super().__init__(
            f"the document expands to more than {MAX_VALUES:,} values through its aliases; "
            "write the values out, or use fewer aliases"
        )
        self.problem = str(self)


class TooDeep(yaml.YAMLError):
    def __init__(self) -> None:
        super().__init__(f"the document nests deeper than {MAX_DEPTH} levels")
        self.problem = str(self)


def read_text(path: Path, what: str, limit_bytes: int) -> str:
    """The UTF-8 text of the regular file ``path`` (``what`` names it in errors), at most
    ``limit_bytes`` long, or one ConfigError line saying why not."""
    try:
        found = path.stat()  # follows a link: a link to a device is a device
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(found.st_mode):
        kind = "a folder" if stat.S_ISDIR(found.st_mode) else "not a regular file"
        raise ConfigError(f"{what} {path} is {kind}", "give the path of a file")
    blob = bytearray()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                blob += chunk
                if len(blob) > limit_bytes:
                    raise ConfigError(
                        f"{what} {path} is larger than {_size(limit_bytes)}: not one dlbench "
                        "reads (a wrong file?)"
                    )
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if b"\0" in blob:
        raise ConfigError(f"{what} {path} is binary, not text (it holds NUL bytes)")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start:,} cannot be decoded)",
            "save it as UTF-8",
        ) from None


def load_json(path: Path, what: str, limit_bytes: int) -> Any:
    """The JSON document in ``path``, bounded as ``read_text`` and in depth."""
    text = read_text(path, what, limit_bytes)
    try:
        document = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{what} {path} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise ConfigError(f"{what} {path} is not JSON ({exc})") from None
    if depth(document) > MAX_DEPTH:
        raise ConfigError(f"{what} {path} nests deeper than {MAX_DEPTH} levels")
    return document


def depth(value: Any) -> int:
    """Levels of nesting of lists and mappings in a JSON value (a scalar: 0), without
    recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


def load(text: str) -> tuple[Any, yaml.Node | None]:
    """The YAML document's content and its node tree (for line numbers); raises
    yaml.YAMLError (TooLarge, TooDeep for the bounds)."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:  # the composer recurses once per level
            raise TooDeep() from None
        if node is None:
            return None, None
        expanded = _expanded_size(node, {}, 0)
        if expanded > MAX_VALUES:
            raise TooLarge(expanded)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, seen: dict[int, int], level: int) -> int:
    """Values in ``node`` with every alias expanded; shared nodes are counted once per use
    but computed once, so a bomb is measured in linear time."""
    if level > MAX_DEPTH:
        raise TooDeep()
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = MAX_VALUES + 1  # a node inside itself (a recursive alias) is too large
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, seen, level + 1)
            if total > MAX_VALUES:
                break
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _expanded_size(key, seen, level + 1) + _expanded_size(value, seen, level + 1)
            if total > MAX_VALUES:
                break
    seen[id(node)] = total
    return total


def _size(count: int) -> str:
    return f"{count / 2**30:g} GiB" if count >= 2**30 else f"{count / 2**20:g} MiB"
