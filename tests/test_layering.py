"""Dependencies point one way (STYLE.md): readers of the store never import a framework."""

import ast
import subprocess
import sys
from pathlib import Path

import dlbench

PACKAGE = Path(dlbench.__file__).parent
FRAMEWORKS = {"torch", "torchvision", "pynvml", "tensorflow", "jax", "keras"}
FRAMEWORK_FREE = [
    "records.py",
    "errors.py",
    "config.py",
    "registry.py",
    "store",
    "measure",
    "datasets",
    "workloads/__init__.py",
    "render.py",
    "console.py",
    "analysis",
    "report",
    "dashboard",
    "sweep/__init__.py",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_framework_free_modules_import_no_framework():
    for entry in FRAMEWORK_FREE:
        target = PACKAGE / entry
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            found = _imports(path) & FRAMEWORKS
            assert not found, f"{path.relative_to(PACKAGE)} imports {found}"


def test_listing_workloads_does_not_import_torch():
    code = (
        "import sys; from dlbench.cli import app; import dlbench.workloads, dlbench.store; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
