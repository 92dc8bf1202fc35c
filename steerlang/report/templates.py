"""The one Jinja2 environment of the HTML the report package writes (`report.html`, the page
of `steer show`): templates in `steerlang/report/templates/`, autoescaping on, so every value
a template prints (rule text, file names, words) is escaped unless a template says otherwise.

Undefined names are errors (StrictUndefined): a template that names a missing value fails in
the tests rather than printing an empty cell. Templates use no custom filters: what they print
is formatted by the values themselves (e.g. `FeatureCard.stat_rows`), so a partial such as
`_cards.html.j2` renders the same wherever it is included.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("steerlang.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template_name: str, **context: Any) -> str:
    """Render `steerlang/report/templates/<template_name>` with `context`."""
    return environment().get_template(template_name).render(**context)
