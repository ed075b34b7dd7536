"""The report's HTML, autoescaped: every stored text (run ids, tags, errors, host names) goes in
escaped unless it is ``Markup`` that dlbench built itself. Fragments are made with ``html()``
(``Markup.format``: its arguments are escaped) and the page and tables by jinja2 templates
with autoescape on, never by joining plain strings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

TABLE = ENV.from_string(
    "<table><thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>"
    "{% for row in rows %}<tr>{% for v in row %}"
    "<td{% if loop.index0 in numeric %} class='num'{% endif %}>{{ '—' if v is none else v }}</td>"
    "{% endfor %}</tr>{% endfor %}</tbody></table>"
)

PAGE = ENV.from_string(
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{{ title }}</title>"
    "<style>{{ css }}</style><script type='text/javascript'>{{ plotly_js }}</script></head>"
    "<body><header><h1>{{ title }}</h1><p>{{ runs }} run(s) · dlbench {{ version }} · {{ made }}"
    "</p></header><main>{% for name, content in sections %}<section><h2>{{ name }}</h2>"
    "{{ content }}</section>{% endfor %}</main></body></html>"
)


def html(template: str, *args: Any) -> Markup:
    """An HTML fragment: ``template`` is dlbench's, every argument is escaped (unless Markup)."""
    return Markup(template).format(*args)


def esc(value: Any) -> Markup:
    return escape("—" if value is None else str(value))


def join(parts: Iterable[Any], separator: str = "") -> Markup:
    """Fragments joined; plain strings among them are escaped."""
    return Markup(separator).join(parts)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> Markup:
    return Markup(TABLE.render(columns=columns, rows=rows, numeric=numeric))


def page(
    title: str,
    css: str,
    plotly_js: str,
    runs: int,
    version: str,
    made: str,
    sections: Sequence[tuple[str, Markup]],
) -> str:
    """The whole document. ``css`` and ``plotly_js`` are dlbench's own, included as they are."""
    return PAGE.render(
        title=title,
        css=Markup(css),
        plotly_js=Markup(plotly_js),
        runs=runs,
        version=version,
        made=made,
        sections=sections,
    )
