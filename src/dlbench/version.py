"""The version dlbench reports (--version, sysinfo, the report's footer, every stored run)."""

__version__ = "0.1.0"
