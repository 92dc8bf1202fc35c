"""The report's figures, drawn with matplotlib (Agg canvas, no pyplot state).

Each figure is rendered three ways from one `Figure`: SVG inlined in report.html (text kept as
text, so the page stays searchable and sharp), and PNG and PDF saved in the run folder's
`figures/` for slides and papers. Output is deterministic (fixed SVG id salt, no dates in the
metadata), so two runs with the same numbers write the same files.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

BASE_COLOR = "#8c8c8c"
STEER_COLOR = "#1f6fb4"
THRESHOLD_COLOR = "#d1495b"
SELECTED_SHADE = "#f4c7cd"

_RC = {
    "svg.hashsalt": "steerlang",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.dpi": 150,
}


@dataclass
class RenderedFigure:
    name: str  # file stem under figures/
    caption: str
    svg: str  # inline <svg> element (no XML prolog)
    png: bytes
    pdf: bytes


def _new(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def render(fig: Any, name: str, caption: str = "") -> RenderedFigure:
    """SVG text, PNG and PDF bytes of one figure."""
    out: dict[str, bytes] = {}
    for fmt, meta in (
        ("svg", {"Date": None}),
        ("png", {"Software": None}),
        ("pdf", {"CreationDate": None, "ModDate": None}),
    ):
        buf = io.BytesIO()
        with _style():  # the SVG settings are read when saving
            fig.savefig(buf, format=fmt, metadata=meta)
        out[fmt] = buf.getvalue()
    svg = out["svg"].decode("utf-8")
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE: inlined in HTML
    # One page holds several figures: make their internal ids unique to each.
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{name}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{name}-{m.group(1)})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{name}-{m.group(1)}"', svg)
    return RenderedFigure(name=name, caption=caption, svg=svg, png=out["png"], pdf=out["pdf"])


def _style() -> Any:
    import matplotlib

    return matplotlib.rc_context(_RC)


def _pct(v: Any) -> float:
    return np.nan if v is None else 100.0 * float(v)


def _err(values: list[float], cis: list[Any] | None) -> np.ndarray | None:
    """Asymmetric error bars (2 x n, in points) from [low, high] intervals."""
    if not cis:
        return None
    lo, hi = [], []
    for v, ci in zip(values, cis, strict=True):
        if ci is None or np.isnan(v):
            lo.append(0.0)
            hi.append(0.0)
        else:
            lo.append(max(0.0, v - 100 * ci[0]))
            hi.append(max(0.0, 100 * ci[1] - v))
    return np.array([lo, hi])


def grouped_bars(
    labels: list[str],
    series: list[tuple[str, list[Any], list[Any] | None, str]],
    *,
    title: str,
    ylabel: str = "accuracy (%)",
    marked: int | None = None,
) -> Any:
    """Bars per label and series (name, fractions, [low, high] intervals or None, colour),
    with 95% interval whiskers; `marked` underlines one label (the worst group)."""
    with _style():
        fig = _new(max(5.0, 1.25 * len(labels) + 1.5), 3.2)
        ax = fig.add_subplot()
        x = np.arange(len(labels))
        width = 0.8 / max(1, len(series))
        for j, (name, values, cis, color) in enumerate(series):
            v = [_pct(a) for a in values]
            ax.bar(
                x + (j - (len(series) - 1) / 2) * width,
                v,
                width,
                label=name,
                color=color,
                yerr=_err(v, cis),
                capsize=3,
                error_kw={"elinewidth": 1, "ecolor": "#333"},
            )
        ax.set_xticks(x, labels, rotation=0 if len(labels) <= 4 else 20, ha="center")
        if marked is not None and 0 <= marked < len(labels):
            tick = ax.get_xticklabels()[marked]
            tick.set_fontweight("bold")
            tick.set_color(THRESHOLD_COLOR)
        ax.set_ylim(0, 105)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
        return fig


def histogram(
    values: np.ndarray,
    *,
    title: str,
    xlabel: str,
    thresholds: list[tuple[float, str]] = (),  # type: ignore[assignment]
    bins: int = 40,
) -> Any:
    """A histogram with each threshold drawn and the side its rule selects shaded (`op` is
    the comparison a value must pass: `>`/`>=` shades the right, `<`/`<=` the left)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    with _style():
        fig = _new(6.0, 2.8)
        ax = fig.add_subplot()
        if v.size:
            ax.hist(v, bins=bins, color=BASE_COLOR, edgecolor="white", linewidth=0.4)
        ax.set_yscale("symlog", linthresh=1)
        lo, hi = ax.get_xlim()
        for thr, _op in thresholds:
            lo, hi = min(lo, thr), max(hi, thr)
        pad = 0.02 * (hi - lo or 1.0)
        lo, hi = lo - pad, hi + pad
        for thr, op in thresholds:
            if op.startswith(">"):
                ax.axvspan(thr, hi, color=SELECTED_SHADE, alpha=0.6, zorder=0, lw=0)
            elif op.startswith("<"):
                ax.axvspan(lo, thr, color=SELECTED_SHADE, alpha=0.6, zorder=0, lw=0)
            ax.axvline(thr, color=THRESHOLD_COLOR, linewidth=1.2)
            ax.annotate(
                f"{op} {thr:g}",
                (thr, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -10),
                textcoords="offset points",
                color=THRESHOLD_COLOR,
            )
        ax.set_xlim(lo, hi)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("features (log scale)")
        ax.set_title(title)
        return fig


def steer_curve(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(threshold t, fraction of units with S_f > t) over the observed range."""
    v = np.asarray(s, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return np.zeros(1), np.zeros(1)
    t = np.linspace(0.0, max(float(v.max()), 1e-9), 60)
    return t, np.array([(v > x).mean() for x in t])


def curves(
    lines: list[tuple[str, np.ndarray, np.ndarray, str]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    vline: float | None = None,
) -> Any:
    with _style():
        fig = _new(6.0, 2.8)
        ax = fig.add_subplot()
        for name, x, y, color in lines:
            ax.plot(x, y, label=name, color=color, linewidth=1.5)
        if vline is not None:
            ax.axvline(vline, color=THRESHOLD_COLOR, linewidth=1.2, linestyle="--")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.02)
        ax.set_title(title)
        if lines:
            ax.legend(fontsize=8)
        return fig


def report_figures(rec: Any, report: dict[str, Any]) -> list[RenderedFigure]:
    """Every figure of a run's report, in page order (names are file stems)."""
    out: list[RenderedFigure] = []
    m = report.get("metrics")
    if m and m["baseline"].get("per_group"):
        base, st = m["baseline"], m["steered"]
        iv = m.get("intervals") or {}
        counts = base.get("group_counts") or []
        names = report.get("groups") or [str(i) for i in range(len(base["per_group"]))]
        # One line per group column: long names side by side would overlap.
        labels = [
            n.replace(", ", "\n") + (f"\n(n={counts[i]})" if i < len(counts) else "")
            for i, n in enumerate(names)
        ]
        fig = grouped_bars(
            labels,
            [
                (
                    "baseline",
                    base["per_group"],
                    (iv.get("baseline") or {}).get("per_group"),
                    BASE_COLOR,
                ),
                (
                    "steered",
                    st["per_group"],
                    (iv.get("steered") or {}).get("per_group"),
                    STEER_COLOR,
                ),
            ],
            title="per-group accuracy, baseline vs steered (95% Wilson intervals)",
            marked=base.get("worst_group_id"),
        )
        out.append(
            render(
                fig,
                "per_group_accuracy",
                "Per-group accuracy on the same images; the baseline's worst group is in red.",
            )
        )
    if m and "attack" in m:
        a = m["attack"]
        fig = grouped_bars(
            ["clean", "attacked"],
            [
                ("baseline", [a["baseline"]["clean"], a["baseline"]["attacked"]], None, BASE_COLOR),
                ("steered", [a["steered"]["clean"], a["steered"]["attacked"]], None, STEER_COLOR),
            ],
            title="typographic attack: accuracy",
        )
        out.append(
            render(
                fig,
                "attack_accuracy",
                "The same images, clean and with a wrong class word written on them.",
            )
        )
    out += _statistic_histograms(rec)
    out += _steerability_figures(rec)
    return out


def _statistic_histograms(rec: Any) -> list[RenderedFigure]:
    """A histogram of every numeric statistic a rule thresholds or ranks by."""
    out: list[RenderedFigure] = []
    shown: set[tuple[str, int, str, str]] = set()
    for r in rec.selection.per_rule:
        table = rec.rule_tables.get((r.rule, r.layer, r.site))
        if table is None:
            continue
        by_stat: dict[str, list[tuple[float, str]]] = {}
        for th in r.thresholds:
            by_stat.setdefault(th["stat"], []).append((float(th["threshold"]), str(th["op"])))
        for stat in r.stats or []:
            if stat not in table.columns or table.columns[stat].dtype.kind == "O":
                continue
            key = (r.rule, r.layer, r.site, stat)
            if key in shown:
                continue
            shown.add(key)
            safe = re.sub(r"[^A-Za-z0-9_]+", "_", f"hist_{r.rule}_L{r.layer}_{r.site}_{stat}")
            fig = histogram(
                table.columns[stat],
                title=f"{stat} over {table.n_features} features, L{r.layer} {r.site}",
                xlabel=stat,
                thresholds=by_stat.get(stat, []),
            )
            out.append(
                render(
                    fig,
                    safe,
                    f"Rule {r.rule}: {len(r.selected)} features selected; the shaded side of "
                    "each red line is what the rule's threshold selects.",
                )
            )
    return out


def _steerability_figures(rec: Any) -> list[RenderedFigure]:
    if not rec.steerability:
        return []
    out: list[RenderedFigure] = []
    colors = [STEER_COLOR, BASE_COLOR, "#2e8b57", "#6a5acd"]
    lines = []
    thr = None
    for i, (k, res) in enumerate(rec.steerability.items()):
        site = k.replace(":", " ")
        t, frac = steer_curve(res.steerability)
        lines.append((f"L{site} {res.kind}", t, frac, colors[i % len(colors)]))
        thr = res.threshold
        fig = histogram(
            res.steerability,
            title=f"steerability S_f over {len(res.units)} units, L{site}",
            xlabel="S_f",
            thresholds=[(res.threshold, ">")],
        )
        out.append(render(fig, re.sub(r"[^A-Za-z0-9_]+", "_", f"steerability_L{site}")))
    fig = curves(
        lines,
        title="fraction of units with S_f above a threshold",
        xlabel="threshold on S_f",
        ylabel="fraction of units",
        vline=thr,
    )
    out.append(render(fig, "steerability_curve"))
    return out
