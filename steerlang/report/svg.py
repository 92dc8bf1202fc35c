"""The report's charts as inline SVG strings (no plotting library): grouped bars for
accuracies, histograms with threshold lines for statistics, and curves for steerability."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from steerlang.report.formatting import esc

BASE_COLOR = "#8a9bb3"
STEER_COLOR = "#d1495b"


def svg_grouped_bars(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], str]], *, title: str
) -> str:
    """Vertical grouped bars in [0, 1] (accuracies), one group per label."""
    w, h, left, bottom, top = 640, 260, 40, 60, 24
    n = max(1, len(labels))
    k = max(1, len(series))
    gw = (w - left - 10) / n
    bw = gw * 0.8 / k
    ph = h - bottom - top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="{esc(title)}">'
    ]
    out.append(f'<text x="{left}" y="14" font-weight="bold">{esc(title)}</text>')
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + ph * (1 - t)
        out.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{int(t * 100)}</text>')
    for i, lab in enumerate(labels):
        x0 = left + i * gw + gw * 0.1
        for j, (name, vals, color) in enumerate(series):
            v = vals[i] if i < len(vals) else None
            if v is None or not math.isfinite(float(v)):
                continue
            bh = ph * max(0.0, min(1.0, float(v)))
            x = x0 + j * bw
            out.append(
                f'<rect x="{x:.1f}" y="{top + ph - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                f'fill="{color}"><title>{esc(name)} {esc(lab)}: {100 * float(v):.1f}%</title></rect>'
            )
        out.append(
            f'<text x="{x0 + gw * 0.4:.1f}" y="{h - bottom + 14}" text-anchor="middle">{esc(lab)}</text>'
        )
    for j, (name, _, color) in enumerate(series):
        x = left + j * 110
        out.append(f'<rect x="{x}" y="{h - 22}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 14}" y="{h - 13}">{esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_histogram(
    values: np.ndarray,
    *,
    title: str,
    thresholds: Sequence[tuple[float, str]] = (),
    bins: int = 40,
    log_counts: bool = True,
) -> str:
    """Histogram of finite values with vertical lines at each threshold."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    w, h, left, bottom, top = 640, 220, 40, 36, 24
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="{esc(title)}">'
    ]
    out.append(f'<text x="{left}" y="14" font-weight="bold">{esc(title)}</text>')
    if v.size == 0:
        out.append(f'<text x="{left}" y="{h / 2}">no finite values</text></svg>')
        return "".join(out)
    lo = min(float(v.min()), *(t for t, _ in thresholds)) if thresholds else float(v.min())
    hi = max(float(v.max()), *(t for t, _ in thresholds)) if thresholds else float(v.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    pw, ph = w - left - 10, h - bottom - top
    scaled = np.log1p(counts) if log_counts else counts.astype(float)
    cmax = max(float(scaled.max()), 1e-9)
    bw = pw / bins
    for i, c in enumerate(counts):
        bh = ph * float(scaled[i]) / cmax
        x = left + i * bw
        out.append(
            f'<rect x="{x:.1f}" y="{top + ph - bh:.1f}" width="{max(bw - 1, 0.5):.1f}" '
            f'height="{bh:.1f}" fill="{BASE_COLOR}"><title>[{edges[i]:.3g}, {edges[i + 1]:.3g}): '
            f"{int(c)}</title></rect>"
        )
    for t, label in thresholds:
        x = left + pw * (t - lo) / (hi - lo)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="{STEER_COLOR}" '
            f'stroke-width="2"/>'
        )
        out.append(f'<text x="{x + 3:.1f}" y="{top + 10}" fill="{STEER_COLOR}">{esc(label)}</text>')
    out.append(f'<text x="{left}" y="{h - 8}">{lo:.3g}</text>')
    out.append(f'<text x="{w - 10}" y="{h - 8}" text-anchor="end">{hi:.3g}</text>')
    out.append(
        f'<text x="{w / 2:.0f}" y="{h - 8}" text-anchor="middle" class="muted">'
        f"{'log(1+count)' if log_counts else 'count'} per bin, n = {v.size}</text>"
    )
    out.append("</svg>")
    return "".join(out)


def svg_curves(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, str]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    vline: float | None = None,
) -> str:
    """Line plot of (x, y) curves, y in [0, 1]."""
    w, h, left, bottom, top = 640, 240, 44, 40, 24
    pw, ph = w - left - 10, h - bottom - top
    xs = np.concatenate([c[1] for c in curves]) if curves else np.zeros(1)
    xlo, xhi = float(np.nanmin(xs)), float(np.nanmax(xs))
    if xhi <= xlo:
        xhi = xlo + 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="{esc(title)}">'
    ]
    out.append(f'<text x="{left}" y="14" font-weight="bold">{esc(title)}</text>')
    for t in (0.0, 0.5, 1.0):
        y = top + ph * (1 - t)
        out.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{t:.1f}</text>')
    for j, (name, x, y, color) in enumerate(curves):
        pts = " ".join(
            f"{left + pw * (float(a) - xlo) / (xhi - xlo):.1f},{top + ph * (1 - float(b)):.1f}"
            for a, b in zip(x, y, strict=True)
        )
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        out.append(
            f'<rect x="{left + j * 160}" y="{h - 14}" width="10" height="10" fill="{color}"/>'
        )
        out.append(f'<text x="{left + j * 160 + 14}" y="{h - 5}">{esc(name)}</text>')
    if vline is not None and xlo <= vline <= xhi:
        x = left + pw * (vline - xlo) / (xhi - xlo)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#444" '
            f'stroke-dasharray="4 3"/>'
        )
    out.append(
        f'<text x="{w - 10}" y="{h - 26}" text-anchor="end" class="muted">{esc(xlabel)}</text>'
    )
    out.append(f'<text x="{left}" y="{top - 4}" class="muted">{esc(ylabel)}</text>')
    out.append("</svg>")
    return "".join(out)


def steer_curve(values: np.ndarray, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of units with S_f > t as t sweeps [0, max S_f]."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    hi = max(float(v.max()) if v.size else 0.0, 0.2)
    t = np.linspace(0.0, hi, n)
    frac = (v[None, :] > t[:, None]).mean(1) if v.size else np.zeros(n)
    return t, frac
