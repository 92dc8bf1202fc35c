"""Run reports: the terminal summary, `report.json`, `report.html` (inline SVG plots, no
plotting library), `plan.json`, `explain.json` and `manifest.json` in one run folder.

Why a folder per run, written atomically: a report is evidence for a claim ("this recipe
raises worst-group accuracy by 12 points"), so each run keeps its own plan, numbers and the
hashes of everything it used, and a run killed mid-write leaves no half folder behind (files
are assembled in a hidden temporary folder renamed into place at the end).
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPORT_SCHEMA = "steerlang-report"
REPORT_VERSION = 1


def clean_json(v: Any) -> Any:
    """Strict-JSON copy: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, np.generic):
        return clean_json(v.item())
    if isinstance(v, np.ndarray):
        return [clean_json(x) for x in v.tolist()]
    if isinstance(v, dict):
        return {str(k): clean_json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [clean_json(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


# ------------------------------------------------------------------------------------------
# The report dict
# ------------------------------------------------------------------------------------------


def build_report(
    po: Any,
    ev: Any | None,
    *,
    classifier_info: dict[str, Any] | None,
    started: float,
    argv: Sequence[str] = (),
) -> dict[str, Any]:
    ir = po.ir
    b = po.binding
    sel = po.selection
    plan = sel.plan
    rules = []
    for r in sel.per_rule:
        rules.append(
            {
                "rule": r.rule,
                "layer": r.layer,
                "site": r.site,
                "tokens": r.tokens,
                "op": next((x.action.op for x in ir.rules if x.name == r.rule), None),
                "selected": len(r.selected),
                "won": len(r.won),
                "n_features": r.n_features,
                "candidates": r.candidates,
                "thresholds": r.thresholds,
                "stats": r.stats,
            }
        )
    steer = {k: v.summary() for k, v in po.stats.steerability.items()}
    rep: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "version": REPORT_VERSION,
        "recipe": {
            "name": ir.name,
            "description": ir.description,
            "source": ir.source,
            "hash": ir.source_hash,
            "params": {n: p.value for n, p in ir.params.items()},
            "settings": {k: ir.setting(k) for k in sorted(_settings_used(ir))},
        },
        "model": {"ref": b.model_ref, "hash": b.handle.content_hash},
        "device": b.device,
        "dataset": None,
        "saes": {f"{k[0]}:{k[1]}": ref for k, ref in b.sae_refs.items()},
        "classifier": classifier_info,
        "plan": {
            "n_edits": plan.n_edits,
            "sites": [
                {"layer": s.layer, "site": s.site, "sae": s.sae, "n_edits": len(s.edits)}
                for s in plan.sites
            ],
            "rules": rules,
            "overrides": len(plan.overrides),
            "stats_key": plan.stats_key,
        },
        "statistics": {
            "keys": po.stats.keys,
            "cached": po.stats.cached,
            "computed": po.stats.computed,
        },
        "metrics": ev.metrics if ev is not None else None,
        "groups": ev.group_names if ev is not None else [],
        "steerability": steer,
        "warnings": [w.to_json() for w in sel.warnings],
        "timings": {k: round(v, 3) for k, v in po.timings.items()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_seconds": round(time.time() - started, 3),
        "argv": list(argv),
    }
    if b.dataset is not None and b.table is not None:
        rep["dataset"] = {
            "name": b.dataset.name,
            "format": b.dataset.format,
            "root": str(b.table.root),
            "stats_split": ir.setting("stats_split"),
            "stats_images": ir.setting("stats_images"),
            "eval_split": ir.setting("eval_split"),
            "n_eval": ev.n if ev is not None else None,
        }
        if ir.setting("attack") != "none" or ir.setting("stats_images") != "clean":
            from steerlang.pipeline.run import attack_style_for

            rep["dataset"]["attack"] = ir.setting("attack")
            rep["dataset"]["attack_style"] = attack_style_for(ir, b)
    return clean_json(rep)


def _copies(ds: dict[str, Any]) -> str:
    """How the statistics images were drawn, when not plain clean images."""
    mode = ds.get("stats_images", "clean")
    if mode == "clean":
        return ""
    what = "clean + attacked" if mode == "both" else "attacked"
    return f" ({what}, {ds.get('attack_style', '?')} style)"


def _settings_used(ir: Any) -> set[str]:
    from steerlang.plan import SETTING_DEFAULTS

    return set(SETTING_DEFAULTS)


def manifest(po: Any, report: dict[str, Any]) -> dict[str, Any]:
    import numpy
    import torch

    import steerlang

    try:
        import open_clip

        oc = open_clip.__version__
    except Exception:  # noqa: BLE001 - version lookup only
        oc = None
    b = po.binding
    return clean_json(
        {
            "schema": "steerlang-manifest",
            "version": 1,
            "versions": {
                "steerlang": steerlang.__version__,
                "python": sys.version.split()[0],
                "torch": torch.__version__,
                "open_clip": oc,
                "numpy": numpy.__version__,
                "platform": platform.platform(),
            },
            "hashes": {
                "recipe": po.ir.source_hash,
                "model": b.handle.content_hash,
                "saes": {f"{k[0]}:{k[1]}": s.content_hash() for k, s in b.saes.items()},
                "statistics": po.stats.keys,
                "steerability": {k: v.key for k, v in po.stats.steerability.items()},
                "plan": po.selection.plan.stats_key,
            },
            "data": {
                "dataset": report.get("dataset"),
                "profile_dataset": b.dataset.to_dict() if b.dataset is not None else None,
            },
            "seeds": {"seed": po.ir.setting("seed")},
            "model_ref": b.model_ref,
            "sae_refs": report.get("saes"),
            "device": b.device,
            "profile": b.profile.to_dict() if hasattr(b.profile, "to_dict") else None,
            "argv": report.get("argv"),
            "started": report.get("started"),
        }
    )


# ------------------------------------------------------------------------------------------
# Run folder
# ------------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return keep.strip("-.") or "recipe"


def write_run_folder(po: Any, report: dict[str, Any], *, out_root: str | None = None) -> Path:
    """`<out_root or ./runs>/<recipe>-<timestamp>/` with plan, report, explain, manifest and
    HTML, assembled in a temporary folder and renamed into place."""
    root = Path(out_root) if out_root else Path.cwd() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{_safe_name(po.ir.name)}-{stamp}"
    final = root / base
    n = 1
    while final.exists():
        n += 1
        final = root / f"{base}-{n}"
    report = dict(report)
    report["run_dir"] = str(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=root))
    try:
        plan = po.selection.plan
        (tmp / "plan.json").write_text(plan.model_dump_json(indent=2) + "\n", "utf-8")
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
        (tmp / "explain.json").write_text(
            json.dumps(clean_json(po.selection.explain_json()), indent=2) + "\n", "utf-8"
        )
        (tmp / "manifest.json").write_text(
            json.dumps(manifest(po, report), indent=2) + "\n", "utf-8"
        )
        (tmp / "report.html").write_text(render_html(po, report), "utf-8")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# ------------------------------------------------------------------------------------------
# Terminal summary
# ------------------------------------------------------------------------------------------


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.1f}"


def _delta(a: Any, b: Any) -> str:
    if a is None or b is None:
        return "—"
    d = 100 * (float(b) - float(a))
    return f"{d:+.1f}"


def print_summary(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    rec = report["recipe"]
    console.print(f"[bold]{rec['name']}[/bold]  {rec.get('description') or ''}")
    ds = report.get("dataset") or {}
    console.print(
        f"model {report['model']['ref']} · dataset {ds.get('name', '—')} "
        f"(stats: {ds.get('stats_split', '—')}{_copies(ds)}, eval: {ds.get('eval_split', '—')}) · "
        f"device {report['device']}"
    )
    plan = report["plan"]
    rt = Table(title=f"plan: {plan['n_edits']} feature edits", title_justify="left")
    for col in ("rule", "site", "op", "selected", "kept", "of"):
        rt.add_column(col, justify="right" if col in ("selected", "kept", "of") else "left")
    for r in plan["rules"]:
        rt.add_row(
            r["rule"],
            f"L{r['layer']} {r['site']}",
            str(r["op"]),
            str(r["selected"]),
            str(r["won"]),
            str(r["n_features"]),
        )
    console.print(rt)
    m = report.get("metrics")
    if m:
        mt = Table(title="task metrics (%)", title_justify="left")
        for col in ("metric", "baseline", "steered", "Δ"):
            mt.add_column(col, justify="left" if col == "metric" else "right")
        base, st = m["baseline"], m["steered"]
        rows = [
            ("accuracy", "accuracy"),
            ("worst-group accuracy", "worst_group"),
            ("average (plain)", "average_plain"),
            ("average (adjusted, train weights)", "average_adjusted"),
            ("reads the written word", "text_rate"),
        ]
        for label, key in rows:
            if key in base:
                mt.add_row(
                    label,
                    _pct(base.get(key)),
                    _pct(st.get(key)),
                    _delta(base.get(key), st.get(key)),
                )
        if "attack" in m:
            a = m["attack"]
            for label, key in (
                ("clean images", "clean"),
                ("attacked images", "attacked"),
                ("attack drop (clean − attacked)", "drop"),
                ("attacked: reads the written word", "text_rate"),
            ):
                if a["baseline"].get(key) is not None:
                    mt.add_row(
                        label,
                        _pct(a["baseline"][key]),
                        _pct(a["steered"][key]),
                        _delta(a["baseline"][key], a["steered"][key]),
                    )
            if a.get("recovered") is not None:
                mt.add_row("attack drop recovered", "", _pct(a["recovered"]), "")
        console.print(mt)
        if base.get("per_group"):
            gt = Table(title="per-group accuracy (%)", title_justify="left")
            for col in ("group", "n", "baseline", "steered", "Δ"):
                gt.add_column(col, justify="left" if col == "group" else "right")
            names = report.get("groups") or []
            for i, (a, c) in enumerate(zip(base["per_group"], st["per_group"], strict=True)):
                name = names[i] if i < len(names) else str(i)
                n = base.get("group_counts", [None] * (i + 1))[i]
                gt.add_row(name, str(n), _pct(a), _pct(c), _delta(a, c))
            console.print(gt)
    for k, s in (report.get("steerability") or {}).items():
        console.print(
            f"steerability L{k.replace(':', ' ')}: {s['n_steerable']}/{s['n_units']} {s['kind']} units steerable "
            f"({_pct(s['fraction_steerable'])}%, S_f > {s['threshold']}, s = {s['strength']}), "
            f"{s['distinct_top_concepts']} distinct top concepts"
        )
    for w in report.get("warnings") or []:
        console.print(f"[yellow]warning[{w['code']}][/yellow]: {w['message']}")
    st = report.get("statistics") or {}
    if st.get("cached") or st.get("computed"):
        console.print(
            f"statistics: {len(st.get('cached', []))} cached, {len(st.get('computed', []))} computed"
        )
    if report.get("run_dir"):
        console.print(f"run folder: {report['run_dir']}")


# ------------------------------------------------------------------------------------------
# HTML with inline SVG
# ------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}.muted{color:#777}.warn{color:#a60}
svg text{font-family:system-ui,sans-serif;font-size:11px}figure{margin:1rem 0}figcaption{color:#555;font-size:.9rem}
"""
_BASE = "#8a9bb3"
_STEER = "#d1495b"


def _esc(s: Any) -> str:
    return html.escape(str(s))


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
        f'aria-label="{_esc(title)}">'
    ]
    out.append(f'<text x="{left}" y="14" font-weight="bold">{_esc(title)}</text>')
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
                f'fill="{color}"><title>{_esc(name)} {_esc(lab)}: {100 * float(v):.1f}%</title></rect>'
            )
        out.append(
            f'<text x="{x0 + gw * 0.4:.1f}" y="{h - bottom + 14}" text-anchor="middle">{_esc(lab)}</text>'
        )
    for j, (name, _, color) in enumerate(series):
        x = left + j * 110
        out.append(f'<rect x="{x}" y="{h - 22}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 14}" y="{h - 13}">{_esc(name)}</text>')
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
        f'aria-label="{_esc(title)}">'
    ]
    out.append(f'<text x="{left}" y="14" font-weight="bold">{_esc(title)}</text>')
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
            f'height="{bh:.1f}" fill="{_BASE}"><title>[{edges[i]:.3g}, {edges[i + 1]:.3g}): '
            f"{int(c)}</title></rect>"
        )
    for t, label in thresholds:
        x = left + pw * (t - lo) / (hi - lo)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="{_STEER}" '
            f'stroke-width="2"/>'
        )
        out.append(f'<text x="{x + 3:.1f}" y="{top + 10}" fill="{_STEER}">{_esc(label)}</text>')
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
        f'aria-label="{_esc(title)}">'
    ]
    out.append(f'<text x="{left}" y="14" font-weight="bold">{_esc(title)}</text>')
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
        out.append(f'<text x="{left + j * 160 + 14}" y="{h - 5}">{_esc(name)}</text>')
    if vline is not None and xlo <= vline <= xhi:
        x = left + pw * (vline - xlo) / (xhi - xlo)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#444" '
            f'stroke-dasharray="4 3"/>'
        )
    out.append(
        f'<text x="{w - 10}" y="{h - 26}" text-anchor="end" class="muted">{_esc(xlabel)}</text>'
    )
    out.append(f'<text x="{left}" y="{top - 4}" class="muted">{_esc(ylabel)}</text>')
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


def render_html(po: Any, report: dict[str, Any]) -> str:
    rec = report["recipe"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>steerlang report: {_esc(rec['name'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(rec['name'])}</h1><p>{_esc(rec.get('description') or '')}</p>",
        f"<p class='muted'>model {_esc(report['model']['ref'])} · device {_esc(report['device'])}"
        f" · started {_esc(report.get('started'))} · {report.get('wall_seconds')} s</p>",
    ]
    ds = report.get("dataset")
    if ds:
        parts.append(
            f"<p>dataset <b>{_esc(ds['name'])}</b> ({_esc(ds['format'])}); statistics on split "
            f"<b>{_esc(ds['stats_split'])}</b>{_esc(_copies(ds))} of the <i>unsteered</i> model, "
            "evaluation on "
            f"<b>{_esc(ds['eval_split'])}</b> ({_esc(ds.get('n_eval'))} images).</p>"
        )
    m = report.get("metrics")
    if m:
        parts.append(
            "<h2>Task metrics</h2><table><tr><th>metric</th><th>baseline</th>"
            "<th>steered</th><th>Δ (points)</th></tr>"
        )
        base, st = m["baseline"], m["steered"]
        for label, key in (
            ("accuracy", "accuracy"),
            ("worst-group accuracy", "worst_group"),
            ("average accuracy (plain, pooled)", "average_plain"),
            ("average accuracy (adjusted, train group weights)", "average_adjusted"),
            ("predicts the written word", "text_rate"),
        ):
            if key in base:
                parts.append(
                    f"<tr><td>{label}</td><td>{_pct(base.get(key))}</td><td>{_pct(st.get(key))}"
                    f"</td><td>{_delta(base.get(key), st.get(key))}</td></tr>"
                )
        if "attack" in m:
            a = m["attack"]
            for label, key in (("clean images", "clean"), ("attacked images", "attacked")):
                parts.append(
                    f"<tr><td>{label}</td><td>{_pct(a['baseline'][key])}</td>"
                    f"<td>{_pct(a['steered'][key])}</td>"
                    f"<td>{_delta(a['baseline'][key], a['steered'][key])}</td></tr>"
                )
            parts.append(
                f"<tr><td>share of the attack drop recovered</td><td></td>"
                f"<td>{_pct(a.get('recovered'))}</td><td></td></tr>"
            )
        parts.append("</table>")
        if base.get("per_group"):
            names = report.get("groups") or [str(i) for i in range(len(base["per_group"]))]
            parts.append(
                "<figure>"
                + svg_grouped_bars(
                    names,
                    [("baseline", base["per_group"], _BASE), ("steered", st["per_group"], _STEER)],
                    title="per-group accuracy (%)",
                )
                + "<figcaption>Per-group accuracy, baseline vs steered, same images."
                "</figcaption></figure>"
            )
        if "attack" in m:
            a = m["attack"]
            parts.append(
                "<figure>"
                + svg_grouped_bars(
                    ["clean", "attacked"],
                    [
                        ("baseline", [a["baseline"]["clean"], a["baseline"]["attacked"]], _BASE),
                        ("steered", [a["steered"]["clean"], a["steered"]["attacked"]], _STEER),
                    ],
                    title="typographic attack: accuracy (%)",
                )
                + "</figure>"
            )
    plan = report["plan"]
    parts.append(
        f"<h2>Plan</h2><p>{plan['n_edits']} feature edits over "
        f"{len(plan['sites'])} site(s); {plan['overrides']} overridden by later rules.</p>"
    )
    parts.append(
        "<table><tr><th>rule</th><th>site</th><th>op</th><th>selected</th>"
        "<th>kept</th><th>features</th></tr>"
    )
    for r in plan["rules"]:
        parts.append(
            f"<tr><td>{_esc(r['rule'])}</td><td>L{r['layer']} {_esc(r['site'])} "
            f"({_esc(r['tokens'])})</td><td>{_esc(r['op'])}</td><td>{r['selected']}</td>"
            f"<td>{r['won']}</td><td>{r['n_features']}</td></tr>"
        )
    parts.append("</table>")
    # Statistic histograms with each rule's thresholds.
    from steerlang.pipeline.stats_table import tokens_key

    shown: set[tuple[str, int, str, str]] = set()
    for r in po.selection.per_rule:
        table = po.stats.tables.get((r.layer, r.site, tokens_key(r.tokens)))
        if table is None:
            continue
        by_stat: dict[str, list[tuple[float, str]]] = {}
        for th in r.thresholds:
            by_stat.setdefault(th["stat"], []).append(
                (float(th["threshold"]), f"{th['op']} {th['threshold']:g}")
            )
        for stat in r.stats or []:
            if stat not in table.columns or table.columns[stat].dtype.kind == "O":
                continue
            key = (r.rule, r.layer, r.site, stat)
            if key in shown:
                continue
            shown.add(key)
            parts.append(
                "<figure>"
                + svg_histogram(
                    table.columns[stat],
                    title=f"{stat} over {table.n_features} features, L{r.layer} {r.site} "
                    f"(rule {r.rule}: {len(r.selected)} selected)",
                    thresholds=by_stat.get(stat, []),
                )
                + "</figure>"
            )
    steer = po.stats.steerability
    if steer:
        parts.append("<h2>Steerability</h2>")
        curves = []
        colors = [_STEER, _BASE, "#2e8b57", "#6a5acd"]
        thr = None
        for i, (k, res) in enumerate(steer.items()):
            s = report["steerability"][k]
            parts.append(
                f"<p>L{_esc(k.replace(':', ' '))}: <b>{s['n_steerable']}</b> of {s['n_units']} {s['kind']} units "
                f"steerable ({_pct(s['fraction_steerable'])}%) at s = {s['strength']:g}, "
                f"S_f &gt; {s['threshold']:g}; top concepts: "
                + ", ".join(f"{_esc(w)} ×{c}" for w, c in s["top_concepts"])
                + "</p>"
            )
            t, frac = steer_curve(res.steerability)
            curves.append((f"L{k.replace(':', ' ')} {res.kind}", t, frac, colors[i % len(colors)]))
            thr = res.threshold
            parts.append(
                "<figure>"
                + svg_histogram(
                    res.steerability,
                    title=f"S_f over {len(res.units)} units, L{k.replace(':', ' ')}",
                    thresholds=[(res.threshold, f"> {res.threshold:g}")],
                )
                + "</figure>"
            )
        parts.append(
            "<figure>"
            + svg_curves(
                curves,
                title="fraction of units with S_f above a threshold",
                xlabel="threshold on S_f",
                ylabel="fraction",
                vline=thr,
            )
            + "</figure>"
        )
    if report.get("warnings"):
        parts.append("<h2>Warnings</h2><ul>")
        for w in report["warnings"]:
            parts.append(f"<li class='warn'>{_esc(w['code'])}: {_esc(w['message'])}</li>")
        parts.append("</ul>")
    parts.append("<h2>Reproduce</h2><pre>" + _esc(" ".join(report.get("argv") or [])) + "</pre>")
    parts.append("</body></html>\n")
    return "".join(parts)
