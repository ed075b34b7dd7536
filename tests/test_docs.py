"""The documentation: its generated reference covers the code, the README stays a landing page
whose links resolve, and nothing in the project cites a document outside it."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _hook(name: str):
    path = ROOT / "docs" / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_has_every_command_and_option():
    import typer

    from dlbench.cli import app

    page = _hook("cli").cli_reference()
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert f"## `dlbench {name}`" in page, name
        for sub in getattr(command, "commands", {}) or {}:
            assert f"## `dlbench {name} {sub}`" in page, (name, sub)
    run = page[page.index("## `dlbench run`") : page.index("## `dlbench runs`")]
    for option in ("--batch-size", "--precision", "--cpus", "--nodes", "--json"):
        assert option in run, option
    prose = re.sub(r"`[^`]*`|```.*?```", "", page, flags=re.S)
    assert "<" not in prose and ">" not in prose  # help text is shown, never taken for HTML


def test_field_tables_list_every_field_with_its_comment_and_bounds():
    from dlbench.config import RunSpec
    from dlbench.config.limits import MAX_STEPS
    from dlbench.records import RunResult

    fields_table = _hook("fields").fields_table
    spec = fields_table("dlbench.config.RunSpec")
    for name in RunSpec.model_fields:
        assert f"| `{name}` |" in spec, name
    assert (
        f"| `steps` | `int \\| None` | `None` (gt 0, le {MAX_STEPS}) | `--steps`: Training steps, "
        "warm-up included" in spec
    )  # the option's one declaration: its flag, bounds and help
    result = fields_table("dlbench.records.RunResult")
    for name in RunResult.__dataclass_fields__:
        assert f"| `{name}` |" in result, name
    assert "| `map50` |" in result and "mean average precision at IoU 0.5" in result


def test_a_field_table_of_a_class_that_moved_fails_the_build():
    with pytest.raises(AttributeError):
        _hook("fields").fields_table("dlbench.config.NoSuchSpec")


def test_the_readme_is_a_landing_page_whose_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "./scripts/quickstart" in readme and "./scripts/test" in readme
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert len(links) >= 20
    for link in links:
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def test_every_page_of_the_site_is_in_its_navigation():
    mkdocs = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    listed = set(re.findall(r":\s+([\w/.-]+\.md)\s*$", mkdocs, flags=re.M))
    assert pages == listed, pages ^ listed


def test_nothing_in_the_project_cites_a_document_outside_it():
    outside = ["../" + "shared", "STYLE" + ".md", "ENVIRONMENT" + ".md", "DESIGN" + ".md"]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    cited = [
        f"{path}: {word}"
        for path in tracked
        if (ROOT / path).is_file() and not path.endswith((".png", ".gz", ".whl"))
        for word in outside
        if word in (ROOT / path).read_text(errors="replace")
    ]
    assert not cited, cited


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_the_docs_extra_brings_the_site_builder():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert any(d.startswith("mkdocs-material") for d in extras["docs"])
    assert any(d.startswith("mkdocstrings") for d in extras["docs"])
