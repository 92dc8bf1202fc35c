"""The grid report's line plot: each task metric across the grid's points, baseline and steered.

Drawn with matplotlib (Agg, no display) as SVG text, so the page stays one self-contained file.
The x axis is the grid's param when there is one numeric param, else the point index with the
points' params as tick labels.
"""

from __future__ import annotations

import io
from typing import Any

from steerlang.report.grid_summary import TASK_METRICS, metric_value, point_label


def _x_axis(entries: list[dict[str, Any]], names: list[str]) -> tuple[list[float], str, list[str]]:
    if len(names) == 1:
        vals = [(e.get("params") or {}).get(names[0]) for e in entries]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            return [float(v) for v in vals], names[0], []
    return (
        [float(i) for i in range(len(entries))],
        "point",
        [point_label(e, names) for e in entries],
    )


def grid_plot_svg(report: dict[str, Any]) -> str | None:
    """SVG of one panel per task metric some point reports; None without metrics."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    entries = report.get("grid") or []
    names = list(report.get("grid_params") or [])
    shown = [
        (k, label)
        for k, label in TASK_METRICS
        if any(metric_value(e, f"steered_{k}") is not None for e in entries)
    ]
    if not entries or not shown:
        return None
    xs, xlabel, ticks = _x_axis(entries, names)
    fig, axes = plt.subplots(
        1, len(shown), figsize=(3.6 * len(shown), 3.2), squeeze=False, constrained_layout=True
    )
    for ax, (key, label) in zip(axes[0], shown, strict=True):
        for which, style in (("baseline", "--"), ("steered", "-")):
            ys = [metric_value(e, f"{which}_{key}") for e in entries]
            pts = [(x, 100 * y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, marker="o", markersize=3, label=which)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("%")
        ax.grid(alpha=0.3)
        if ticks:
            ax.set_xticks(xs, ticks, rotation=45, ha="right", fontsize=7)
    axes[0][0].legend(fontsize=8)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]
