"""The test suite's wall time and its slowest tests, as CI pays them.

Runs the suite's two passes as ``scripts/test`` does (every test but the serial ones on two
workers, then the serial ones alone) in this checkout and writes the figures; run it on a
quiet machine, nothing else running.

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
PASSES = {
    "parallel (-n 2, not serial)": ["-n", "2", "-m", "not serial"],
    "serial, alone": ["-m", "serial"],
}


def main() -> None:
    extra = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    slowest: list[tuple[float, str, str]] = []
    said, total = [], 0.0
    for name, options in PASSES.items():
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=10",
             *options, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        wall = time.monotonic() - started
        total += wall
        lines = done.stdout.splitlines()
        slowest += [
            (float(m.group(1)), m.group(2), m.group(3))
            for line in lines
            if (m := DURATION.match(line.strip()))
        ]
        outcome = next((m.group(1) for line in lines if (m := SUMMARY.search(line))), "?")
        said.append(f"{name}: {outcome}, {wall / 60:.1f} min")
        if done.returncode != 0:
            print(done.stdout[-3000:])
            raise SystemExit(f"the {name} pass failed: figures not written")
    rows = [f"| {s:.1f} | {when} | `{test}` |" for s, when, test in sorted(slowest)[::-1][:10]]
    table = "\n".join(
        [
            f"{machine()}; the suite as `scripts/test` runs it, **{total / 60:.1f} min wall** "
            f"(services, installs and linters excluded): {'; '.join(said)}.",
            "",
            "| seconds | phase | test |",
            "|---|---|---|",
            *rows,
            "",
            "Command: `.venv/bin/python benchmarks/suite_time.py`",
        ]
    )
    print(table)
    write_section("suite-time", table)


if __name__ == "__main__":
    main()
