"""dlbench: deep-learning hardware benchmarking.

How fast, how costly and how well does this hardware train deep networks, and where does the
time go? See docs/getting-started.md for the quick start and docs/concepts/phases-and-timing.md
for the definitions of every reported figure.
"""

from typing import TYPE_CHECKING

from dlbench.version import __version__

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports them
    from dlbench.api import Results, open_store, run
    from dlbench.store.stored import StoredRun


# The Python API, imported when first used so that `import dlbench` stays light.
__all__ = ["Results", "StoredRun", "__version__", "open_store", "run"]


def __getattr__(name: str) -> object:
    if name in ("open_store", "run", "Results"):
        from dlbench import api

        return getattr(api, name)
    if name == "StoredRun":
        from dlbench.store.stored import StoredRun

        return StoredRun
    raise AttributeError(f"module 'dlbench' has no attribute {name!r}")
