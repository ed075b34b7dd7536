"""The test suite's wall time and its ten slowest tests, as CI pays them.

Runs the whole suite once (``pytest --durations=10``) in this checkout and writes the figures;
run it on a quiet machine, nothing else running.

    .venv/bin/python benchmarks/suite_time.py [-- extra pytest arguments]
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from _report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
DURATION = re.compile(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)$")
SUMMARY = re.compile(r"^(?:=+ )?(\d+ (?:passed|failed).*?) in [\d.]+s")


def main() -> None:
    extra = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=10", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    lines = done.stdout.splitlines()
    slowest = [m.groups() for line in lines if (m := DURATION.match(line.strip()))]
    outcome = next((m.group(1) for line in lines if (m := SUMMARY.search(line))), "?")
    rows = [f"| {float(s):.1f} | {when} | `{name}` |" for s, when, name in slowest]
    table = "\n".join(
        [
            f"{machine()}; `pytest` on the whole suite: {outcome}, {wall / 60:.1f} min wall "
            "(services and installs excluded).",
            "",
            "| seconds | phase | test |",
            "|---|---|---|",
            *rows,
            "",
            "Command: `.venv/bin/python benchmarks/suite_time.py`",
        ]
    )
    print(table)
    if done.returncode != 0:
        print(done.stdout[-3000:])
        raise SystemExit("the suite failed: figures not written")
    write_section("suite-time", table)


if __name__ == "__main__":
    main()
