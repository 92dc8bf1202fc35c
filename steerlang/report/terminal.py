"""The run summary printed on the terminal (rich tables), read from `report.json`'s data."""

from __future__ import annotations

from typing import Any

from steerlang.report.formatting import (
    TASK_METRICS_TERMINAL,
    ci_text,
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
    from rich.markup import escape

    for w in report.get("warnings") or []:
        # Escaped: `[W301]` or `[guard:...]` would otherwise be read as a markup tag and vanish.
        code = escape(f"[{w['code']}]")
        console.print(f"[yellow]warning{code}[/yellow]: {escape(str(w['message']))}")
    st = report.get("statistics") or {}
    if st.get("cached") or st.get("computed"):
        console.print(
            f"statistics: {len(st.get('cached', []))} cached, {len(st.get('computed', []))} computed"
        )
    if report.get("run_dir"):
        console.print(f"run folder: {report['run_dir']}")
        console.print(f"report: [bold]{report['run_dir']}/report.html[/bold]")


def _signed(d: str, *, lower_is_better: bool = False) -> str:
    """A signed change in points, green when it is an improvement and red when not."""
    if not d or d == "—" or d.lstrip("+-") == "0.0":
        return d
    good = d.startswith("+") != lower_is_better
    return f"[green]{d}[/green]" if good else f"[red]{d}[/red]"


def _with_ci(value: str, ci: Any, *, signed: bool = False) -> str:
    text = ci_text(ci, signed=signed)
    # The interval on a second line keeps the table within 80 columns.
    return f"{value}\n[dim]{text}[/dim]" if text else value


def _iv(m: dict[str, Any], *path: str) -> Any:
    cur: Any = m.get("intervals") or {}
    for p in path:
        cur = cur.get(p) if isinstance(cur, dict) else None
    return cur


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

    mt = Table(title="task metrics (%, 95% intervals)", title_justify="left")
    for col in ("metric", "baseline", "steered", "Δ"):
        mt.add_column(col, justify="left" if col == "metric" else "right")
    base, st = m["baseline"], m["steered"]
    for label, key in TASK_METRICS_TERMINAL:
        if key in base:
            mt.add_row(
                worst_group_label(label, key, base),
                _with_ci(pct(base.get(key)), _iv(m, "baseline", key)),
                _with_ci(pct(st.get(key)), _iv(m, "steered", key)),
                _with_ci(
                    _signed(delta(base.get(key), st.get(key)), lower_is_better=key == "text_rate"),
                    _iv(m, "delta", key),
                    signed=True,
                ),
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
                ci = _iv(m, "attacked") if key == "attacked" else None
                mt.add_row(
                    label,
                    _with_ci(
                        pct(a["baseline"][key]), (ci or {}).get("baseline", {}).get("accuracy")
                    ),
                    _with_ci(pct(a["steered"][key]), (ci or {}).get("steered", {}).get("accuracy")),
                    _with_ci(
                        _signed(
                            delta(a["baseline"][key], a["steered"][key]),
                            lower_is_better=key in ("drop", "text_rate"),
                        ),
                        (ci or {}).get("delta", {}).get("accuracy"),
                        signed=True,
                    ),
                )
        if a.get("recovered") is not None:
            mt.add_row("attack drop recovered", "", pct(a["recovered"]), "")
    console.print(mt)


def _print_groups(m: dict[str, Any], names: list[str], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    base, st = m["baseline"], m["steered"]
    gt = Table(title="per-group accuracy (%, 95% intervals)", title_justify="left")
    for col in ("group", "n", "baseline", "steered", "Δ"):
        gt.add_column(col, justify="left" if col == "group" else "right")
    worst = base.get("worst_group_id")
    for i, (a, c) in enumerate(zip(base["per_group"], st["per_group"], strict=True)):
        name = escape(names[i] if i < len(names) else str(i))
        n = base.get("group_counts", [None] * (i + 1))[i]
        if n == 0:
            name += " (no images)"
        if i == worst:
            name += " [yellow]◀ worst[/yellow]"
        gt.add_row(
            name,
            str(n),
            _with_ci(pct(a), _nth(_iv(m, "baseline", "per_group"), i)),
            _with_ci(pct(c), _nth(_iv(m, "steered", "per_group"), i)),
            _with_ci(_signed(delta(a, c)), _nth(_iv(m, "delta", "per_group"), i), signed=True),
        )
    console.print(gt)


def _nth(xs: Any, i: int) -> Any:
    return xs[i] if isinstance(xs, list) and i < len(xs) else None
