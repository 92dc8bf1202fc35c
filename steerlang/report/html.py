"""`report.html`: one self-contained page (inline CSS, SVG figures, PNG thumbnails) rendered
from `templates/report.html.j2` with autoescaping. This module only shapes report.json's data
into rows the template prints; the numbers are the ones in report.json."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from steerlang.report.figures import RenderedFigure, report_figures
from steerlang.report.formatting import (
    TASK_METRICS_HTML,
    ci_text,
    delta,
    empty_groups_note,
    logit_scale_phrase,
    pct,
    stats_images_note,
    worst_group_label,
)
from steerlang.report.record import RunRecord
from steerlang.report.templates import render

_INTERVAL_KEYS = {"accuracy", "worst_group"}


def render_html(
    rec: RunRecord, report: dict[str, Any], figures: list[RenderedFigure] | None = None
) -> str:
    """The page; `figures` are drawn here when the caller has not drawn them already."""
    if figures is None:
        figures = report_figures(rec, report)
    m = report.get("metrics")
    by_name = {f.name: f for f in figures}
    return render(
        "report.html.j2",
        r=report,
        dataset_note=_dataset_note(report),
        metric_rows=_metric_rows(m) if m else [],
        attack_rows=_attack_rows(m) if m and "attack" in m else [],
        group_rows=_group_rows(m, report) if m and m["baseline"].get("per_group") else [],
        incomplete=empty_groups_note(report) if m else None,
        metric_figures=[
            _fig(by_name[n]) for n in ("per_group_accuracy", "attack_accuracy") if n in by_name
        ],
        other_figures=[
            _fig(f) for f in figures if f.name not in ("per_group_accuracy", "attack_accuracy")
        ],
        steerability=_steerability_lines(report),
        examples={"fixed_broken": [], "attack_pairs": [], **(rec.examples or {})},
        cards=rec.feature_cards,
        warnings=report.get("warnings") or [],
    )


def _fig(f: RenderedFigure) -> dict[str, Any]:
    # matplotlib writes the SVG (and escapes the text in it): markup by construction.
    return {"svg": Markup(f.svg), "caption": f.caption, "name": f.name}


def _dataset_note(report: dict[str, Any]) -> str:
    ds = report.get("dataset") or {}
    return stats_images_note(ds) if ds else ""


def _iv(m: dict[str, Any], *path: str) -> Any:
    cur: Any = m.get("intervals") or {}
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _metric_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    base, st = m["baseline"], m["steered"]
    for label, key in TASK_METRICS_HTML:
        if key not in base:
            continue
        with_ci = key in _INTERVAL_KEYS
        d = delta(base.get(key), st.get(key))
        rows.append(
            {
                "label": worst_group_label(label, key, base),
                "baseline": pct(base.get(key)),
                "baseline_ci": ci_text(_iv(m, "baseline", key)) if with_ci else "",
                "steered": pct(st.get(key)),
                "steered_ci": ci_text(_iv(m, "steered", key)) if with_ci else "",
                "delta": d,
                "delta_ci": ci_text(_iv(m, "delta", key), signed=True) if with_ci else "",
                "sign": _sign(d),
            }
        )
    return rows


def _attack_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    a = m["attack"]
    rows = []
    for label, key in (
        ("clean images", "clean"),
        ("attacked images", "attacked"),
        ("attack drop (clean − attacked)", "drop"),
        ("attacked: reads the written word", "text_rate"),
    ):
        if a["baseline"].get(key) is None:
            continue
        d = delta(a["baseline"][key], a["steered"][key])
        ci = _iv(m, "attacked") if key == "attacked" else None
        rows.append(
            {
                "label": label,
                "baseline": pct(a["baseline"][key]),
                "baseline_ci": ci_text((ci or {}).get("baseline", {}).get("accuracy"))
                if ci
                else "",
                "steered": pct(a["steered"][key]),
                "steered_ci": ci_text((ci or {}).get("steered", {}).get("accuracy")) if ci else "",
                "delta": d,
                "delta_ci": ci_text((ci or {}).get("delta", {}).get("accuracy"), signed=True)
                if ci
                else "",
                # a lower drop and a lower text rate are what steering is for
                "sign": _sign(d, lower_is_better=key in ("drop", "text_rate")),
            }
        )
    if a.get("recovered") is not None:
        rows.append(
            {
                "label": "share of the attack drop recovered",
                "baseline": "",
                "baseline_ci": "",
                "steered": pct(a["recovered"]),
                "steered_ci": "",
                "delta": "",
                "delta_ci": "",
                "sign": "",
            }
        )
    return rows


def _sign(d: str, *, lower_is_better: bool = False) -> str:
    """CSS class of a signed change: good, bad or none."""
    if not d or d == "—" or d.lstrip("+-") in ("0.0",):
        return ""
    up = d.startswith("+")
    return "good" if up != lower_is_better else "bad"


def _group_rows(m: dict[str, Any], report: dict[str, Any]) -> list[dict[str, Any]]:
    base, st = m["baseline"], m["steered"]
    names = report.get("groups") or []
    counts = base.get("group_counts") or []
    worst = base.get("worst_group_id")
    worst_st = st.get("worst_group_id")
    rows = []
    for i, (a, c) in enumerate(zip(base["per_group"], st["per_group"], strict=True)):
        d = delta(a, c)
        rows.append(
            {
                "name": names[i] if i < len(names) else str(i),
                "n": counts[i] if i < len(counts) else None,
                "baseline": pct(a),
                "baseline_ci": ci_text(_nth(_iv(m, "baseline", "per_group"), i)),
                "steered": pct(c),
                "steered_ci": ci_text(_nth(_iv(m, "steered", "per_group"), i)),
                "delta": d,
                "delta_ci": ci_text(_nth(_iv(m, "delta", "per_group"), i), signed=True),
                "sign": _sign(d),
                "worst_baseline": i == worst,
                "worst_steered": i == worst_st,
            }
        )
    return rows


def _nth(xs: Any, i: int) -> Any:
    return xs[i] if isinstance(xs, list) and i < len(xs) else None


def _steerability_lines(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for k, s in (report.get("steerability") or {}).items():
        out.append(
            {
                "site": k.replace(":", " "),
                "n_steerable": s["n_steerable"],
                "n_units": s["n_units"],
                "kind": s["kind"],
                "fraction": pct(s["fraction_steerable"]),
                "strength": f"{s['strength']:g}",
                "threshold": f"{s['threshold']:g}",
                "top_concepts": ", ".join(f"{w} ×{c}" for w, c in s["top_concepts"]),
                "readout": logit_scale_phrase(s),
            }
        )
    return out
