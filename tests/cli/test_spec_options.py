"""A run option is declared once, on its RunSpec field: `dlbench run`, the other commands that
take it, the sweep file and the docs read it from there."""

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from dlbench.cli import spec_options
from dlbench.cli.app import app
from dlbench.config import RunSpec, build_spec
from dlbench.config.option import WHAT, cli_options, option
from dlbench.errors import ConfigError

from conftest import call_main, one_line_error


def _command(name: str) -> Any:
    group = typer.main.get_command(app)
    return group.commands[name]  # type: ignore[attr-defined]


def test_every_declared_run_option_is_an_option_of_dlbench_run_with_its_help():
    from dlbench.cli.run import GENERATION_ONLY, TRAINING_ONLY

    declared = cli_options(RunSpec)
    assert len(declared) >= 40  # every run option but the sweep's own (sweep, repeat index)
    assert {"sweep", "workload"}.isdisjoint(o.field for o in declared)
    # generate declares its own --warmup: untimed requests, not steps
    for command, left_out in (("run", GENERATION_ONLY), ("generate", (*TRAINING_ONLY, "warmup"))):
        params = {p.name: p for p in _command(command).params}
        for option_ in declared:
            if option_.field == "warmup" and command == "generate":
                continue
            if option_.field in left_out:
                assert option_.field not in params, (command, option_.field)
                continue
            param = params[option_.field]
            assert set(option_.flags) <= set(param.opts), (command, option_.field)
            assert param.help.startswith(option_.help), (command, option_.field)


def test_a_new_field_becomes_an_option_with_no_other_edit(monkeypatch):
    class Extended(RunSpec):
        knob: int | None = option(None, WHAT, "How far to turn it.", "--knob", gt=0, le=5)

    monkeypatch.setattr(spec_options, "RunSpec", Extended)
    toy = typer.Typer()
    given: dict[str, Any] = {}

    @toy.command()
    @spec_options.with_spec_options()
    def go(workload: str, **options: Any) -> None:
        given.update(spec_options.spec_values(options))

    @toy.command()
    def turn(knob: int | None = spec_options.spec_option("knob")) -> None:
        given["turned"] = knob

    runner = CliRunner()
    done = runner.invoke(toy, ["go", "lenet-mnist", "--knob", "3", "--no-telemetry", "-b", "8"])
    assert done.exit_code == 0, done.output
    assert given == {"knob": 3, "telemetry": False, "batch_size": 8}
    assert "How far to turn it." in runner.invoke(toy, ["go", "--help"]).output
    assert runner.invoke(toy, ["turn", "--knob", "6"]).exit_code == 2  # the field's bound
    assert runner.invoke(toy, ["turn", "--knob", "5"]).exit_code == 0 and given["turned"] == 5


def test_spec_values_are_what_the_user_gave_as_fields():
    given = {
        "telemetry": True,  # --no-telemetry given
        "no_validate": True,  # --no-validate given
        "channels_last": False,  # not given
        "tags": ["team=ml", "note = a b"],
        "warmup": None,  # not given: the field's default
        "steps": 40,
    }
    assert spec_options.spec_values(given) == {
        "telemetry": False,
        "no_validate": True,
        "tags": {"team": "ml", "note": "a b"},
        "steps": 40,
    }


def test_run_builds_its_spec_from_the_generated_options(monkeypatch, capsys, tmp_path):
    seen: list[RunSpec] = []
    monkeypatch.setattr("dlbench.cli.run.run_as_asked", lambda spec, *rest: seen.append(spec))
    code, _, err = call_main(
        capsys, "run", "lenet-mnist", "--device", "cpu", "-b", "7", "--warmup", "3",
        "--steps", "20", "--precision", "amp-bf16", "--no-telemetry", "--no-validate",
        "--tag", "a=b", "--interval", "0.5", "--db", str(tmp_path / "r.sqlite"),
    )  # fmt: skip
    assert code == 0, err
    expected = build_spec(
        workload="lenet-mnist", device="cpu", batch_size=7, warmup=3, steps=20,
        precision="amp-bf16", telemetry=False, no_validate=True, tags={"a": "b"}, interval=0.5,
    )  # fmt: skip
    assert seen == [expected]


def test_a_bad_value_names_its_declared_option(capsys, tmp_path):
    db = str(tmp_path / "r.sqlite")
    code, _, err = call_main(capsys, "run", "lenet-mnist", "--tag", "a b=c", "--db", db)
    assert "--tag: tag key 'a b'" in one_line_error(code, err)
    code, _, err = call_main(capsys, "run", "lenet-mnist", "-b", "0", "--db", db)
    assert one_line_error(code, err).startswith("error: --batch-size: ")
    assert not (tmp_path / "r.sqlite").exists()  # refused before a store was opened


def test_frameworks_and_precisions_come_from_the_registry(monkeypatch):
    from dlbench import frameworks
    from dlbench.workloads import frameworks_of, get_workload

    with pytest.raises(ConfigError, match="--precision: 'fp8' is not one of fp32, tf32"):
        build_spec(workload="lenet-mnist", precision="fp8")
    extra = frameworks.Framework("toyflow", "toyflow.engine:Engine", "pytorch", ("fp32",), "toy")
    monkeypatch.setitem(frameworks.FRAMEWORKS, "toyflow", extra)
    assert "toyflow" in frameworks_of(get_workload("lenet-mnist"))
    assert build_spec(workload="lenet-mnist", framework="toyflow").framework == "toyflow"
    with pytest.raises(ConfigError, match="--framework toyflow runs fp32, not amp-bf16"):
        build_spec(workload="lenet-mnist", framework="toyflow", precision="amp-bf16")
