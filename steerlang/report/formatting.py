"""Numbers and phrases that the terminal summary and the HTML report write the same way."""

from __future__ import annotations

import html
from typing import Any

# (label, metric key) of the task metrics, baseline vs steered, in the order they are shown.
TASK_METRICS_TERMINAL = (
    ("accuracy", "accuracy"),
    ("worst-group accuracy", "worst_group"),
    ("average (plain)", "average_plain"),
    ("average (adjusted, train weights)", "average_adjusted"),
    ("reads the written word", "text_rate"),
)
TASK_METRICS_HTML = (
    ("accuracy", "accuracy"),
    ("worst-group accuracy", "worst_group"),
    ("average accuracy (plain, pooled)", "average_plain"),
    ("average accuracy (adjusted, train group weights)", "average_adjusted"),
    ("predicts the written word", "text_rate"),
)


def pct(v: Any) -> str:
    """A fraction as a percentage with one decimal; a dash when missing."""
    return "—" if v is None else f"{100 * float(v):.1f}"


def delta(a: Any, b: Any) -> str:
    """The change from `a` to `b` in percentage points, signed."""
    if a is None or b is None:
        return "—"
    d = 100 * (float(b) - float(a))
    return f"{d:+.1f}"


def stats_images_note(ds: dict[str, Any]) -> str:
    """How the statistics images were drawn, when not plain clean images."""
    mode = ds.get("stats_images", "clean")
    if mode == "clean":
        return ""
    what = "clean + attacked" if mode == "both" else "attacked"
    return f" ({what}, {ds.get('attack_style', '?')} style)"


def esc(s: Any) -> str:
    """Text for HTML (and the SVG inside it)."""
    return html.escape(str(s))
