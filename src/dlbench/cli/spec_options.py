"""Command-line options read from the run options' one declaration (``RunSpec``'s fields).

``with_spec_options`` gives a command one option per declared field, in its help panel, with
its help and default; ``spec_option`` gives one such option to a command that takes a few.
Adding a run option is one field in ``dlbench.config`` plus its behaviour.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Collection
from typing import Annotated, Any, Literal

import typer
from pydantic.fields import FieldInfo

from dlbench.config import RunSpec
from dlbench.config.checks import parse_tags
from dlbench.config.option import CliOption, cli_options


def _declared(field: str) -> CliOption:
    for declared in cli_options(RunSpec):
        if declared.field == field:
            return declared
    raise KeyError(f"RunSpec.{field} is not declared as a command-line option")


def _cli_type(annotation: Any) -> Any:
    """The type Typer parses a field's value as: its own, but ``key=value`` text for a mapping
    (tags), plain text for a choice, always optional (unset: the field's default)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is dict:
        return list[str] | None
    if typing.get_origin(annotation) is Literal:
        return str | None
    return annotation | None


def _is_flag(field: str) -> bool:
    return _cli_type(RunSpec.model_fields[field].annotation) == bool | None


def spec_option(field: str) -> Any:
    """A hand-written command's option for one run option, with the field's default and, for a
    whole number, its bounds: ``device: str = spec_option("device")``."""
    declared = _declared(field)
    info = RunSpec.model_fields[field]
    low, high = _int_bounds(info)
    return typer.Option(
        info.default,
        *declared.flags,
        help=declared.help,
        rich_help_panel=declared.panel,
        min=low,
        max=high,
    )


def _int_bounds(info: FieldInfo) -> tuple[int | None, int | None]:
    """A whole-number field's pydantic bounds as Typer's min and max: a value outside them is
    refused before the command runs, as RunSpec would refuse it."""
    low = high = None
    if _cli_type(info.annotation) == int | None:
        for limit in info.metadata:
            ge, gt = getattr(limit, "ge", None), getattr(limit, "gt", None)
            le, lt = getattr(limit, "le", None), getattr(limit, "lt", None)
            low = ge if isinstance(ge, int) else gt + 1 if isinstance(gt, int) else low
            high = le if isinstance(le, int) else lt - 1 if isinstance(lt, int) else high
    return low, high


def _parameter(declared: CliOption) -> inspect.Parameter:
    info = RunSpec.model_fields[declared.field]
    shown = info.default
    help_text = declared.help
    if shown is not None and not isinstance(shown, (bool, dict)) and "[default" not in help_text:
        help_text += f" [default: {shown}]"
    mapping = typing.get_origin(info.annotation) is dict
    option = typer.Option(
        *declared.flags,
        help=help_text,
        rich_help_panel=declared.panel,
        metavar="KEY=VALUE" if mapping else None,
    )
    flag = _is_flag(declared.field)
    return inspect.Parameter(
        declared.field,
        inspect.Parameter.KEYWORD_ONLY,
        default=False if flag else None,
        annotation=Annotated[bool if flag else _cli_type(info.annotation), option],
    )


def with_spec_options(
    skip: Collection[str] = (),
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a command whose signature ends in ``**options``: it takes its own parameters,
    then an option for every declared run option but ``skip``; ``options`` holds what the
    user gave of those (``spec_values`` turns them into RunSpec's values)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        taken = {p.name for p in own} | set(skip)
        generated = [_parameter(d) for d in cli_options(RunSpec) if d.field not in taken]

        @functools.wraps(command)
        def wrapper(**given: Any) -> None:
            command(**given)

        # Its arguments, the run options (their panels first in --help), then its own options.
        keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        required = [p for p in keyword_only if p.default is inspect.Parameter.empty]
        rest = [p for p in keyword_only if p.default is not inspect.Parameter.empty]
        wrapper.__signature__ = inspect.Signature([*required, *generated, *rest])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {}  # Typer reads the signature above, evaluated
        return wrapper

    return decorate


def spec_values(given: dict[str, Any]) -> dict[str, Any]:
    """What the user gave of the generated options, as RunSpec's values: a flag sets its field
    to the opposite of its default (``--no-telemetry``: telemetry False), ``--tag`` pairs
    become the tags mapping, and an option left out is left to the field's default."""
    values: dict[str, Any] = {}
    for field, value in given.items():
        if value is None or (value is False and _is_flag(field)):
            continue
        default = RunSpec.model_fields[field].default
        if _is_flag(field):
            values[field] = not default if isinstance(default, bool) else True
        elif typing.get_origin(RunSpec.model_fields[field].annotation) is dict:  # --tag
            values[field] = parse_tags(value)
        else:
            values[field] = value
    return values
