"""The run summary printed on the terminal (rich tables), read from `report.json`'s data."""

from __future__ import annotations

from typing import Any

from steerlang.report.formatting import (
    TASK_METRICS_TERMINAL,
    delta,
    empty_groups_note,
    logit_scale_phrase,
    pct,
    stats_images_note,
    worst_group_label,
)
from steerlang.report.steer_curve import curve_lines


def print_summary(report: dict[str, Any], console: Any) -> None:
    rec = report["recipe"]
    console.print(f"[bold]{rec['name']}[/bold]  {rec.get('description') or ''}")
    ds = report.get("dataset") or {}
    console.print(
        f"model {report['model']['ref']} · dataset {ds.get('name', '—')} "
        f"(stats: {ds.get('stats_split', '—')}{stats_images_note(ds)}, eval: "
        f"{ds.get('eval_split', '—')}) · device {report['device']}"
    )
    _print_plan(report["plan"], console)
    m = report.get("metrics")
    if m:
        _print_metrics(m, console)
        if m["baseline"].get("per_group"):
            _print_groups(m, report.get("groups") or [], console)
        note = empty_groups_note(report)
        if note:
            console.print(f"[yellow]warning[/yellow]: {note}")
    for k, s in (report.get("steerability") or {}).items():
        console.print(
            f"steerability L{k.replace(':', ' ')}: {s['n_steerable']}/{s['n_units']} "
            f"{s['kind']} units steerable ({pct(s['fraction_steerable'])}%, "
            f"S_f > {s['threshold']}, s = {s['strength']}), "
            f"{s['distinct_top_concepts']} distinct top concepts; readout "
            f"{logit_scale_phrase(s)}"
        )
        for line in curve_lines(s.get("curve") or []):
            console.print(f"  {line}")
    for w in report.get("warnings") or []:
        console.print(f"[yellow]warning[{w['code']}][/yellow]: {w['message']}")
    st = report.get("statistics") or {}
    if st.get("cached") or st.get("computed"):
        console.print(
            f"statistics: {len(st.get('cached', []))} cached, {len(st.get('computed', []))} computed"
        )
    if report.get("run_dir"):
        console.print(f"run folder: {report['run_dir']}")


def _print_plan(plan: dict[str, Any], console: Any) -> None:
    from rich.table import Table

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


def _print_metrics(m: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    mt = Table(title="task metrics (%)", title_justify="left")
    for col in ("metric", "baseline", "steered", "Δ"):
        mt.add_column(col, justify="left" if col == "metric" else "right")
    base, st = m["baseline"], m["steered"]
    for label, key in TASK_METRICS_TERMINAL:
        if key in base:
            mt.add_row(
                worst_group_label(label, key, base),
                pct(base.get(key)),
                pct(st.get(key)),
                delta(base.get(key), st.get(key)),
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
                    pct(a["baseline"][key]),
                    pct(a["steered"][key]),
                    delta(a["baseline"][key], a["steered"][key]),
                )
        if a.get("recovered") is not None:
            mt.add_row("attack drop recovered", "", pct(a["recovered"]), "")
    console.print(mt)


def _print_groups(m: dict[str, Any], names: list[str], console: Any) -> None:
    from rich.table import Table

    base, st = m["baseline"], m["steered"]
    gt = Table(title="per-group accuracy (%)", title_justify="left")
    for col in ("group", "n", "baseline", "steered", "Δ"):
        gt.add_column(col, justify="left" if col == "group" else "right")
    for i, (a, c) in enumerate(zip(base["per_group"], st["per_group"], strict=True)):
        name = names[i] if i < len(names) else str(i)
        n = base.get("group_counts", [None] * (i + 1))[i]
        if n == 0:
            name += " (no images)"
        gt.add_row(name, str(n), pct(a), pct(c), delta(a, c))
    console.print(gt)
