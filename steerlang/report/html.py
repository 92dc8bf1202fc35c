"""`report.html`: one self-contained page (inline CSS and SVG) with the task metrics, the plan,
a histogram of every statistic a rule thresholds and the steerability curves."""

from __future__ import annotations

from typing import Any

from steerlang.report.formatting import (
    TASK_METRICS_HTML,
    delta,
    empty_groups_note,
    esc,
    logit_scale_phrase,
    pct,
    stats_images_note,
    worst_group_label,
)
from steerlang.report.record import RunRecord
from steerlang.report.svg import (
    BASE_COLOR,
    STEER_COLOR,
    steer_curve,
    svg_curves,
    svg_grouped_bars,
    svg_histogram,
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}.muted{color:#777}.warn{color:#a60}
svg text{font-family:system-ui,sans-serif;font-size:11px}figure{margin:1rem 0}figcaption{color:#555;font-size:.9rem}
"""


def render_html(rec: RunRecord, report: dict[str, Any]) -> str:
    parts = _head(report)
    m = report.get("metrics")
    if m:
        parts += _metrics_table(m)
        note = empty_groups_note(report)
        if note:
            parts.append(f"<p class='warn'><b>Incomplete:</b> {esc(note)}</p>")
        parts += _metric_figures(m, report.get("groups"))
    parts += _plan_section(report["plan"])
    parts += _statistic_histograms(rec)
    if rec.steerability:
        parts += _steerability_section(rec, report["steerability"])
    if report.get("warnings"):
        parts.append("<h2>Warnings</h2><ul>")
        for w in report["warnings"]:
            parts.append(f"<li class='warn'>{esc(w['code'])}: {esc(w['message'])}</li>")
        parts.append("</ul>")
    parts.append("<h2>Reproduce</h2><pre>" + esc(" ".join(report.get("argv") or [])) + "</pre>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _figure(svg: str, caption: str = "") -> str:
    return (
        "<figure>" + svg + (f"<figcaption>{caption}</figcaption>" if caption else "") + "</figure>"
    )


def _head(report: dict[str, Any]) -> list[str]:
    rec = report["recipe"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>steerlang report: {esc(rec['name'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(rec['name'])}</h1><p>{esc(rec.get('description') or '')}</p>",
        f"<p class='muted'>model {esc(report['model']['ref'])} · device {esc(report['device'])}"
        f" · started {esc(report.get('started'))} · {report.get('wall_seconds')} s</p>",
    ]
    ds = report.get("dataset")
    if ds:
        parts.append(
            f"<p>dataset <b>{esc(ds['name'])}</b> ({esc(ds['format'])}); statistics on split "
            f"<b>{esc(ds['stats_split'])}</b>{esc(stats_images_note(ds))} of the <i>unsteered</i> "
            "model, evaluation on "
            f"<b>{esc(ds['eval_split'])}</b> ({esc(ds.get('n_eval'))} images).</p>"
        )
    return parts


def _metrics_table(m: dict[str, Any]) -> list[str]:
    parts = [
        "<h2>Task metrics</h2><table><tr><th>metric</th><th>baseline</th>"
        "<th>steered</th><th>Δ (points)</th></tr>"
    ]
    base, st = m["baseline"], m["steered"]
    for label, key in TASK_METRICS_HTML:
        if key in base:
            parts.append(
                f"<tr><td>{esc(worst_group_label(label, key, base))}</td>"
                f"<td>{pct(base.get(key))}</td><td>{pct(st.get(key))}"
                f"</td><td>{delta(base.get(key), st.get(key))}</td></tr>"
            )
    if "attack" in m:
        a = m["attack"]
        for label, key in (("clean images", "clean"), ("attacked images", "attacked")):
            parts.append(
                f"<tr><td>{label}</td><td>{pct(a['baseline'][key])}</td>"
                f"<td>{pct(a['steered'][key])}</td>"
                f"<td>{delta(a['baseline'][key], a['steered'][key])}</td></tr>"
            )
        parts.append(
            f"<tr><td>share of the attack drop recovered</td><td></td>"
            f"<td>{pct(a.get('recovered'))}</td><td></td></tr>"
        )
    parts.append("</table>")
    return parts


def _metric_figures(m: dict[str, Any], groups: list[str] | None) -> list[str]:
    parts = []
    base, st = m["baseline"], m["steered"]
    if base.get("per_group"):
        names = list(groups or [str(i) for i in range(len(base["per_group"]))])
        counts = base.get("group_counts") or []
        names = [
            f"{n} (no images)" if i < len(counts) and counts[i] == 0 else n
            for i, n in enumerate(names)
        ]
        bars = svg_grouped_bars(
            names,
            [
                ("baseline", base["per_group"], BASE_COLOR),
                ("steered", st["per_group"], STEER_COLOR),
            ],
            title="per-group accuracy (%)",
        )
        parts.append(_figure(bars, "Per-group accuracy, baseline vs steered, same images."))
    if "attack" in m:
        a = m["attack"]
        bars = svg_grouped_bars(
            ["clean", "attacked"],
            [
                ("baseline", [a["baseline"]["clean"], a["baseline"]["attacked"]], BASE_COLOR),
                ("steered", [a["steered"]["clean"], a["steered"]["attacked"]], STEER_COLOR),
            ],
            title="typographic attack: accuracy (%)",
        )
        parts.append(_figure(bars))
    return parts


def _plan_section(plan: dict[str, Any]) -> list[str]:
    parts = [
        f"<h2>Plan</h2><p>{plan['n_edits']} feature edits over "
        f"{len(plan['sites'])} site(s); {plan['overrides']} overridden by later rules.</p>",
        "<table><tr><th>rule</th><th>site</th><th>op</th><th>selected</th>"
        "<th>kept</th><th>features</th></tr>",
    ]
    for r in plan["rules"]:
        parts.append(
            f"<tr><td>{esc(r['rule'])}</td><td>L{r['layer']} {esc(r['site'])} "
            f"({esc(r['tokens'])})</td><td>{esc(r['op'])}</td><td>{r['selected']}</td>"
            f"<td>{r['won']}</td><td>{r['n_features']}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _statistic_histograms(rec: RunRecord) -> list[str]:
    """A histogram of every numeric statistic a rule reads, with the rule's thresholds."""
    parts = []
    shown: set[tuple[str, int, str, str]] = set()
    for r in rec.selection.per_rule:
        table = rec.rule_tables.get((r.rule, r.layer, r.site))
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
            hist = svg_histogram(
                table.columns[stat],
                title=f"{stat} over {table.n_features} features, L{r.layer} {r.site} "
                f"(rule {r.rule}: {len(r.selected)} selected)",
                thresholds=by_stat.get(stat, []),
            )
            parts.append(_figure(hist))
    return parts


def _steerability_section(rec: RunRecord, summaries: dict[str, Any]) -> list[str]:
    parts = ["<h2>Steerability</h2>"]
    curves = []
    colors = [STEER_COLOR, BASE_COLOR, "#2e8b57", "#6a5acd"]
    thr = None
    for i, (k, res) in enumerate(rec.steerability.items()):
        s = summaries[k]
        site = k.replace(":", " ")
        parts.append(
            f"<p>L{esc(site)}: <b>{s['n_steerable']}</b> of {s['n_units']} {s['kind']} units "
            f"steerable ({pct(s['fraction_steerable'])}%) at s = {s['strength']:g}, "
            f"S_f &gt; {s['threshold']:g}, readout {esc(logit_scale_phrase(s))}; top concepts: "
            + ", ".join(f"{esc(w)} ×{c}" for w, c in s["top_concepts"])
            + "</p>"
        )
        t, frac = steer_curve(res.steerability)
        curves.append((f"L{site} {res.kind}", t, frac, colors[i % len(colors)]))
        thr = res.threshold
        hist = svg_histogram(
            res.steerability,
            title=f"S_f over {len(res.units)} units, L{site}",
            thresholds=[(res.threshold, f"> {res.threshold:g}")],
        )
        parts.append(_figure(hist))
    parts.append(
        _figure(
            svg_curves(
                curves,
                title="fraction of units with S_f above a threshold",
                xlabel="threshold on S_f",
                ylabel="fraction",
                vline=thr,
            )
        )
    )
    return parts
