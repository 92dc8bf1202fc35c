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
    ("reads the written word (predicts the word on the image)", "text_rate"),
)


def worst_group_label(label: str, key: str, metrics: dict[str, Any]) -> str:
    """A metric's label, marked when it covers only the groups that have images."""
    if key in ("worst_group", "average_adjusted") and metrics.get("worst_group_complete") is False:
        return f"{label} (incomplete)"
    return label


def empty_groups_note(report: dict[str, Any]) -> str | None:
    """The warning that some groups have no evaluated images, or None when all have some."""
    empty = report.get("empty_groups") or []
    if not empty:
        return None
    n = len(report.get("groups") or [])
    split = (report.get("dataset") or {}).get("eval_split", "evaluation")
    were = "group has" if len(empty) == 1 else "groups have"
    return (
        f"{len(empty)} of {n} {were} no images in the {split} split ({', '.join(empty)}): "
        f"worst-group accuracy and the adjusted average cover only the other {n - len(empty)}, "
        "so they are incomplete (the missing group may be the worst)"
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


def ci_text(ci: Any, *, signed: bool = False) -> str:
    """A 95% interval of fractions as "[lo, hi]" in percent (points when `signed`); empty
    when there is none."""
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    f = "{:+.1f}" if signed else "{:.1f}"
    return "[" + f.format(100 * float(ci[0])) + ", " + f.format(100 * float(ci[1])) + "]"


def stats_images_note(ds: dict[str, Any]) -> str:
    """How the statistics images were drawn, when not plain clean images."""
    mode = ds.get("stats_images", "clean")
    if mode == "clean":
        return ""
    what = "clean + attacked" if mode == "both" else "attacked"
    return f" ({what}, {ds.get('attack_style', '?')} style)"


def logit_scale_phrase(summary: dict[str, Any]) -> str:
    """The steerability readout's logit scale as the outputs name it: the model's own
    exp(logit_scale), or a fixed number (the authors' 100 by default)."""
    scale = summary.get("logit_scale", 100.0)
    if summary.get("logit_scale_source") == "model":
        return f"logit scale {scale:.4g} (the model's own)"
    return f"logit scale {scale:.4g} (fixed)"


def esc(s: Any) -> str:
    """Text for hand-written HTML (the grid page, steerlang/report/grid_folder.py)."""
    return html.escape(str(s))
