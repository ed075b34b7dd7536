"""The layout shows the architecture (docs/development/architecture.md). Which package may
import which, and that readers never import a framework, is import-linter's job
([tool.importlinter], run by scripts/test); these tests check what it cannot: sizes, and what
a command imports at run time."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dlbench

PACKAGE = Path(dlbench.__file__).parent
SHARED_VOCABULARY = 8  # top-level modules besides __init__ and __main__
MODULE_LINES = 450
FUNCTION_BODY_LINES = 60  # a command's option declarations are its signature, not its body


def test_the_top_level_holds_only_shared_vocabulary():
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if not p.name.startswith("__"))
    assert len(modules) <= SHARED_VOCABULARY, modules


def test_every_package_says_what_lives_there():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(PACKAGE)} has no docstring"


def test_no_module_or_function_is_too_long_to_read():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(PACKAGE)
        if len(text.splitlines()) > MODULE_LINES:
            too_long.append(f"{where}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.end_lineno - node.body[0].lineno + 1
                if body > FUNCTION_BODY_LINES:
                    too_long.append(f"{where}:{node.lineno} {node.name}: {body} lines")
    assert not too_long, too_long


def test_listing_workloads_does_not_import_torch():
    code = (
        "import sys; from dlbench.cli import app; import dlbench.workloads; "
        "import dlbench.store.database; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_training_process_imports_no_learning_library():
    """The run's child process stays lean: scikit-learn and SciPy's optimisers (the
    calculator's) would cost every run ~150 MB of memory, enough to change a memory-capped
    maxbatch probe's answer."""
    check = (
        "import sys, dlbench.runner.child; "
        "print(sorted(m for m in ('sklearn', 'scipy.optimize') if m in sys.modules))"
    )
    assert _printed_by_a_fresh_process(check) == "[]"


def _printed_by_a_fresh_process(script: str) -> str:
    """What ``script`` prints in a new interpreter, whose imports are its own."""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_cpu_runs_launcher_checks_it_without_torch_and_its_statistics_without_scipy_stats():
    """torch takes ~2 s to import and scipy.stats ~1 s: the launcher of a CPU run (which only
    checks it and waits) needs neither, and the run's statistics need only scipy.special."""
    check = (
        "import sys, numpy as np\n"
        "from dlbench.api import preflight_device\n"
        "from dlbench.config import build_spec\n"
        "from dlbench.measure.stats import speed_stats\n"
        "device = preflight_device(build_spec(workload='lenet-mnist', device='cpu'))\n"
        "stats = speed_stats([0.1, 0.12, 0.11], [0.0, 0.0, 0.0], 32)\n"
        "print(device.kind, stats.speed_ci95 is not None, "
        "sorted(m for m in ('torch', 'scipy.stats') if m in sys.modules))"
    )
    assert _printed_by_a_fresh_process(check) == "cpu True []"


def test_auto_on_a_machine_without_a_gpu_driver_is_the_cpu_without_torch(monkeypatch):
    """--device auto where no GPU driver exists (this VM): the CPU, as torch itself resolves
    it, known without importing torch; where a driver exists, torch is asked."""
    from dlbench.engines.pytorch import devices
    from dlbench.engines.pytorch.engine import TorchEngine

    if not devices.no_gpu_driver():
        pytest.skip("a GPU driver is present: auto is torch's to resolve here")
    check = (
        "import sys\n"
        "from dlbench.api import preflight_device\n"
        "from dlbench.config import build_spec\n"
        "device = preflight_device(build_spec(workload='lenet-mnist'))\n"
        "print(device.device, 'torch' in sys.modules)"
    )
    assert _printed_by_a_fresh_process(check) == "cpu False"
    assert TorchEngine().resolve_device("auto").device == "cpu"  # what the run will use
    monkeypatch.setattr(devices, "GPU_DRIVER_PATHS", ("/",))  # a driver: torch decides
    assert not devices.no_gpu_driver()


def test_tf32_on_the_cpu_is_refused_without_torch_as_the_engine_refuses_it():
    from dlbench.api import preflight_device
    from dlbench.config import build_spec
    from dlbench.engines.pytorch.engine import TorchEngine
    from dlbench.errors import EngineUnavailable

    spec = build_spec(workload="lenet-mnist", device="cpu", precision="tf32")
    with pytest.raises(EngineUnavailable) as light:
        preflight_device(spec)
    engine = TorchEngine()
    with pytest.raises(EngineUnavailable) as full:
        engine.check_precision(engine.resolve_device("cpu"), "tf32")
    assert light.value.one_line() == full.value.one_line()
    assert "tf32 needs an NVIDIA GPU" in light.value.one_line()
