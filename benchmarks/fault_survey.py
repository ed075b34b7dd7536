"""Faults tried and survived, bad inputs and security probes tried and refused: the tally of
tests/faults and the hostile cases beside it.

Runs the fault suite (real processes killed with real signals, a real 8 MB tmpfs filled in the
middle of a run, the database deleted or replaced under a run, a kernel OOM kill in a memory
cgroup, other programs' SQLite files, broken data files, absurd numbers, crafted imports,
stored markup in the terminal, the report and a real browser) and counts, per group, the
cases tried and the cases that held: for a fault, nothing lost and no row left ``running``;
for a bad input, one line and exit code 2 with nothing stored; for a security probe, nothing
rendered, fetched or executed. It also times the YAML alias bomb's refusal in a fresh
process.

    .venv/bin/python benchmarks/fault_survey.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from _report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {
    "test_kills": ("fault", "processes killed (SIGKILL, SIGTERM, Ctrl-C) at any moment"),
    "test_full_disk": (
        "fault",
        "the disk fills, the database is deleted or replaced during a run, a kill after training",
    ),
    "test_oom": ("fault", "the kernel's OOM killer in a cgroup v1 or v2 memory limit"),
    "test_foreign_files": ("fault", "other programs' databases, missing databases"),
    "test_mlflow_export": ("fault", "an MLflow server that does not answer"),
    "test_bad_input": (
        "bad input",
        "broken data, absurd numbers on every option, hostile YAML, unwritable outputs, filters",
    ),
    "test_import": ("bad input", "crafted saved runs and databases; malformed rows readers meet"),
    "test_exposure": (
        "security probe",
        "stored markup in the terminal and the report; model files the dashboard may import",
    ),
    "test_browser": ("security probe", "stored Markdown, HTML and Plotly markup in chromium"),
}
# What the survey runs beyond tests/faults: the hostile cases that live beside their module.
BESIDE = (
    "tests/launch/test_oom.py",
    "tests/dashboard/test_browser.py::test_stored_markup_is_shown_as_text_and_fetches_nothing",
    "tests/store/test_mlflow_export.py::"
    "test_an_mlflow_server_that_does_not_answer_is_one_line_within_the_timeout",
)


def run_suite(report: Path) -> dict[str, list[tuple[str, bool, bool]]]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/faults",
            *BESIDE,
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        cwd=ROOT,
        check=False,
    )
    cases: dict[str, list[tuple[str, bool, bool]]] = defaultdict(list)
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        cases[module].append((case.get("name", ""), not failed, skipped))
    return cases


def bomb_seconds(folder: Path) -> tuple[float, int, str]:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        levels.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    bomb = folder / "bomb.yaml"
    bomb.write_text("name: bomb\n" + "\n".join(levels) + "\nbase: {workload: lenet-mnist}\n")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dlbench", "sweep", str(bomb), "--db", str(folder / "x.sqlite")],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - start, done.returncode, done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = run_suite(Path(tmp) / "faults.xml")
        bomb_s, bomb_code, bomb_line = bomb_seconds(Path(tmp))
    rows, totals = [], defaultdict(lambda: [0, 0, 0])
    for module, (kind, what) in GROUPS.items():
        found = cases.get(module, [])
        held = sum(1 for _, ok, skipped in found if ok and not skipped)
        skipped = sum(1 for _, _, s in found if s)
        rows.append(f"| {kind} | {what} | {len(found)} | {held} | {skipped} |")
        totals[kind][0] += len(found)
        totals[kind][1] += held
        totals[kind][2] += skipped
    summary = [
        f"| **{kind}s, all** | | **{t[0]}** | **{t[1]}** | {t[2]} |" for kind, t in totals.items()
    ]
    table = "\n".join(
        [
            f"{machine()}; the cases are the tests of `tests/faults/` and "
            + ", ".join(f"`{b.split('::')[0]}`" for b in BESIDE)
            + " (one per fault, input or probe).",
            "",
            "| kind | what | tried | held (nothing lost / one line, exit 2, nothing stored / "
            "nothing rendered or fetched) | skipped here |",
            "|---|---|---|---|---|",
            *rows,
            *summary,
            "",
            f"The YAML alias bomb (9 levels of 9 aliases, 387 million values expanded) was "
            f"refused in {bomb_s:.2f} s in a fresh process (interpreter start included), exit "
            f"code {bomb_code}: `{bomb_line}`",
            "",
            "Command: `.venv/bin/python benchmarks/fault_survey.py`",
        ]
    )
    print(table)
    if not args.no_write:
        write_section("fault-survey", table)


if __name__ == "__main__":
    main()
