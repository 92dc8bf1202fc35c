"""The Jinja2 environment of the report pages (templates in steerlang/report/templates/).

Autoescaping is on for every template: recipe names, descriptions, group and class names and
file paths come from users and datasets, and must never become markup. Values that are markup
by construction (matplotlib's SVG) are passed through `markupsafe.Markup` by their producer.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def environment() -> Any:
    from jinja2 import Environment, PackageLoader

    return Environment(
        loader=PackageLoader("steerlang.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template_name: str, **context: Any) -> str:
    """Render one template of steerlang/report/templates/ with `context`."""
    return environment().get_template(template_name).render(**context)
