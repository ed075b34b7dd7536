"""The command line: one module per command group; options shared in common.py."""

from dlbench.cli.app import app, main

__all__ = ["app", "main"]
