"""The steerability curve: the fraction of steerable units against the clamp strength s, one
line per (site, kind of unit), as a matplotlib Figure.

`steer sweep --strengths ... --out DIR` saves it as DIR/steerability_curve.png. The rows are
`curve_rows` of the sweep summaries: the `curve` of the sweep's JSON, and the `curve` of a run
report's steerability summary when the recipe sets `steer_curve`, so a report template draws
the same figure from a run's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

UNIT_LABELS = {
    "clamp": "SAE features",
    "overwrite": "neurons",
    "matched": "neurons (matched push)",
}


def curve_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (site, units, strength): the steerable fraction, for the curve."""
    return [
        {
            "layer": s["layer"],
            "site": s["site"],
            "units": UNIT_LABELS[s["push"]],
            "push": s["push"],
            "strength": s["strength"],
            "n_units": s["n_units"],
            "n_steerable": s["n_steerable"],
            "fraction_steerable": s["fraction_steerable"],
        }
        for s in summaries
    ]


def parse_strengths(text: str) -> list[float]:
    """ "5,10,20" -> [5.0, 10.0, 20.0] (duplicates dropped); ValueError unless every item is a
    finite number of at least 0."""
    out = [float(x) for x in text.split(",") if x.strip()]
    if not out or any(not (0 <= v < float("inf")) for v in out):
        raise ValueError(text)
    return list(dict.fromkeys(out))


def curve_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The curve as text, one line per site and kind of unit: `% steerable at s = 5/10/...`."""
    out = []
    for label, pts in curve_series(rows).items():
        s = "/".join(f"{p[0]:g}" for p in pts)
        pct = "/".join(f"{p[1]:.1f}" for p in pts)
        out.append(f"{label}: {pct}% steerable at s = {s}")
    return out


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
