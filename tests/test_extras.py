"""The core install leaves optional parts to extras: a command whose extra is missing says in
one line which to install (exit 2) and stores nothing; each extra named exists and brings the
package; the version is written in one place."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from dlbench.store.database import Store
from dlbench.version import __version__

from conftest import call_main, one_line_error

tomllib = pytest.importorskip("tomllib")  # Python 3.11 and newer
ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIRE = re.compile(r'require\(\s*"([\w.]+)",\s*"(\w+)"')
# The import name of each package an extra brings, where the two differ.
IMPORT_NAME = {"scikit-learn": "sklearn", "psycopg[binary]": "psycopg", "mlflow-skinny": "mlflow"}

MISSING = [
    ("streamlit", ["dashboard"], "dlbench dashboard needs the streamlit package", "dashboard"),
    ("pyarrow", ["export", "--format", "parquet", "--out", "{tmp}/x.parquet"],
     "--format parquet needs the pyarrow package", "parquet"),
    ("psycopg", ["runs", "--db", "postgresql://u@127.0.0.1:1/x"],
     "a PostgreSQL results database needs the psycopg package", "postgres"),
    ("sklearn", ["insights"], "dlbench insights needs the sklearn package", "predict"),
    ("sklearn", ["predict", "lenet-mnist", "--dataset-size", "100"],
     "dlbench predict needs the sklearn package", "predict"),
    ("sklearn", ["calibrate", "--device", "cpu"],
     "dlbench calibrate needs the sklearn package", "predict"),
    ("sklearn", ["run", "lenet-mnist", "--data", "digits", "--device", "cpu"],
     "--data digits (scikit-learn's bundled digits) needs the sklearn package", "digits"),
    ("sklearn", ["quickstart", "--device", "cpu"],
     "the quick start's real-data run (scikit-learn's digits) needs the sklearn", "digits"),
    ("pycocotools", ["run", "fasterrcnn-mobilenet", "--device", "cpu"],
     "fasterrcnn-mobilenet (its mAP) needs the pycocotools package", "detection"),
    ("aiohttp", ["serve-bench", "--url", "http://127.0.0.1:1/v1", "--model", "m"],
     "dlbench serve-bench needs the aiohttp package", "serving"),
]  # fmt: skip


@pytest.mark.parametrize(("module", "args", "said", "extra"), MISSING)
def test_a_missing_extra_is_one_line_naming_it_and_stores_nothing(
    module, args, said, extra, db_path, tmp_path, capsys, monkeypatch
):
    Store(str(db_path)).close()
    for name in [m for m in sys.modules if m == module or m.startswith(f"{module}.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    code, _, err = call_main(capsys, *[a.format(tmp=tmp_path) for a in args])
    line = one_line_error(code, err)
    assert said in line and f"pip install 'dlbench[{extra}]'" in line, line
    assert Store(str(db_path)).list_runs() == []


def test_a_slurm_sweep_without_submitit_is_one_line(db_path, tmp_path, capsys, monkeypatch):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\nbase: {workload: lenet-mnist, device: cpu}\n")
    monkeypatch.setitem(sys.modules, "submitit", None)
    code, _, err = call_main(capsys, "sweep", str(sweep), "--executor", "slurm")
    line = one_line_error(code, err)
    assert "--executor slurm needs the submitit package" in line
    assert "pip install 'dlbench[slurm]'" in line


def test_every_extra_named_exists_and_brings_the_package_it_is_named_for():
    extras = PYPROJECT["project"]["optional-dependencies"]
    named = {
        match.groups()
        for path in (ROOT / "src" / "dlbench").rglob("*.py")
        for match in REQUIRE.finditer(path.read_text())
    }
    assert len(named) >= 7, named
    for module, extra in named:
        names = [re.split(r"[<>=]", d)[0] for d in extras[extra]]
        brought = {IMPORT_NAME.get(name, name) for name in names}
        assert module in brought, (module, extra, extras[extra])
        assert extra in extras["all"][0], f"[all] lacks [{extra}]"


def test_the_core_brings_no_optional_part():
    core = " ".join(PYPROJECT["project"]["dependencies"])
    for package in (
        "streamlit", "psycopg", "submitit", "pyarrow", "pycocotools", "mlflow", "aiohttp",
    ):  # fmt: skip
        assert package not in core, package
    assert "scikit-learn" not in core


def test_the_version_is_written_once():
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    setuptools = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert setuptools == {"attr": "dlbench.version.__version__"}
    assert importlib.metadata.version("dlbench") == __version__
