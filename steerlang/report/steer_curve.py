"""The steerability curve: the fraction of steerable units against the clamp strength s, one
line per (site, kind of unit), as a matplotlib Figure.

`steer sweep --strengths ... --out DIR` saves it as DIR/steerability_curve.png; the rows are
the `curve` rows of the sweep's JSON (steerlang/commands/sweep.py `curve_rows`), so a report
template can draw the same figure from a run record's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

STYLES = {
    "SAE features": ("tab:blue", "o", "-"),
    "neurons": ("tab:orange", "s", "--"),
    "neurons (matched push)": ("tab:green", "^", ":"),
}


def curve_series(rows: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Label -> [(s, % steerable)] sorted by s, one series per site and kind of unit."""
    out: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        label = f"L{r['layer']} {r['site']}: {r['units']}"
        frac = r["fraction_steerable"]
        pct = float("nan") if frac is None else 100.0 * float(frac)
        out.setdefault(label, []).append((float(r["strength"]), pct))
    return {k: sorted(v) for k, v in out.items()}


def curve_figure(rows: Sequence[dict[str, Any]], *, title: str = "") -> Any:
    """A Figure of % steerable against s (log axis when every s is positive)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    series = curve_series(rows)
    one_site = len({label.split(": ", 1)[0] for label in series}) == 1
    for label, pts in series.items():
        color, marker, line = STYLES.get(label.split(": ", 1)[1], (None, "x", "-"))
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker=marker,
            ls=line,
            label=label,
            color=color if one_site else None,  # several sites: matplotlib's colour cycle
        )
    strengths = [p[0] for pts in series.values() for p in pts]
    if strengths and min(strengths) > 0:
        ax.set_xscale("log")
    ax.set_xlabel("clamp strength s")
    ax.set_ylabel("% steerable (S_f > threshold)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(f"readout {title}", fontsize="small")
    return fig


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write `fig` as PNG through steerlang.files (atomic, umask-respecting)."""
    from steerlang.files import atomic_write_with

    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
