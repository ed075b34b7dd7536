"""What a core install of dlbench weighs against one with every extra, in fresh venvs.

Creates two venvs in a temporary folder, installs torch and torchvision first (the same build
in both), then ``pip install .`` into one and ``pip install '.[all]'`` into the other, and
reports ``du`` of each, of torch's NVIDIA libraries in it, and of what the extras add.

    .venv/bin/python benchmarks/install_size.py [--torch-index URL]

``--torch-index https://download.pytorch.org/whl/cpu`` measures with torch's CPU build;
without it, pip's default torch (the CUDA build on Linux x86-64).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent


def du_bytes(path: Path) -> int:
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


def venv(folder: Path, extras: str, torch_index: str | None) -> dict[str, float]:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    index = ["--index-url", torch_index] if torch_index else []
    subprocess.run([*pip, "torch", "torchvision", *index], check=True)
    subprocess.run([*pip, f"{ROOT}{extras}"], check=True)
    site = next((folder / "lib").glob("python3*/site-packages"))
    nvidia = site / "nvidia"
    return {
        "total": du_bytes(folder),
        "nvidia": du_bytes(nvidia) if nvidia.exists() else 0,
        "torch": du_bytes(site / "torch"),
        "seconds": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-index", default=None)
    args = parser.parse_args()
    build_folder_there = (ROOT / "build").exists()
    with tempfile.TemporaryDirectory(prefix="dlbench-install-") as tmp:
        core = venv(Path(tmp) / "core", "", args.torch_index)
        everything = venv(Path(tmp) / "all", "[all]", args.torch_index)
    if not build_folder_there:  # pip builds the wheel in the checkout: leave it as it was
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    build = "CPU build" if args.torch_index else "PyPI's default (CUDA) build"
    gib = 2**30

    def row(name: str, sizes: dict[str, float]) -> str:
        rest = sizes["total"] - sizes["nvidia"] - sizes["torch"]
        return (
            f"| `{name}` | {sizes['total'] / gib:.2f} | {sizes['nvidia'] / gib:.2f} | "
            f"{sizes['torch'] / gib:.2f} | {rest / gib:.2f} | {sizes['seconds']:.0f} |"
        )

    added = (everything["total"] - core["total"]) / 2**20
    table = "\n".join(
        [
            f"{machine()}; torch: {build}. Fresh venvs, `du -sb`; GiB.",
            "",
            "| install | venv | NVIDIA libraries | torch | everything else | install (s) |",
            "|---|---|---|---|---|---|",
            row("pip install .", core),
            row("pip install '.[all]'", everything),
            "",
            f"The extras of `[all]` add {added:,.0f} MiB (Streamlit, psycopg, submitit, "
            "pycocotools, pyarrow, scikit-learn, MLflow's client and what they pull).",
            "",
            "Command: `.venv/bin/python benchmarks/install_size.py"
            + (f" --torch-index {args.torch_index}`" if args.torch_index else "`"),
        ]
    )
    print(table)
    write_section("install-size" + ("-cpu" if args.torch_index else ""), table)


if __name__ == "__main__":
    main()
