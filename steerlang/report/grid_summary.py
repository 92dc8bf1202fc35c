"""A grid run's summary, from the single-run reports of its points: the `grid` array of the
JSON report, the summary CSV and the terminal table.

Every number here is copied from a point's report (`report["metrics"]`, built by
steerlang/report/build.py), so a point of a grid reports exactly what a single run reports.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from steerlang.report.formatting import delta, pct

GRID_SCHEMA = "steerlang-grid-report"
GRID_VERSION = 1

# The task metrics a grid table shows, in order: (key in metrics[which], label).
TASK_METRICS: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy"),
    ("worst_group", "worst-group accuracy"),
    ("average_plain", "average (plain)"),
    ("average_adjusted", "average (adjusted)"),
    ("text_rate", "reads the written word"),
)
ATTACK_METRICS: tuple[tuple[str, str], ...] = (
    ("clean", "attack: clean accuracy"),
    ("attacked", "attack: attacked accuracy"),
)


def grid_entry(index: int, values: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """One object of the `grid` array: the point's params and what a single run reports."""
    plan = report.get("plan") or {}
    return {
        "index": index,
        "params": dict(values),
        "metrics": report.get("metrics"),
        "groups": report.get("groups") or [],
        "empty_groups": report.get("empty_groups") or [],
        "plan": {
            "n_edits": plan.get("n_edits"),
            "sites": plan.get("sites"),
            "rules": [
                {k: r.get(k) for k in ("rule", "layer", "site", "op", "selected", "won")}
                for r in plan.get("rules") or []
            ],
            "stats_key": plan.get("stats_key"),
        },
        "warnings": report.get("warnings") or [],
        "timings": report.get("timings") or {},
    }


def grid_report(
    entries: list[dict[str, Any]],
    *,
    names: list[str],
    first: dict[str, Any],
    timings: dict[str, float],
    started: float,
    argv: list[str],
) -> dict[str, Any]:
    """The grid's report.json: what the points share (recipe, model, dataset, classifier),
    the grid's names and one entry per point."""
    recipe = dict(first.get("recipe") or {})
    recipe["params"] = {k: v for k, v in (recipe.get("params") or {}).items() if k not in names}
    return {
        "schema": GRID_SCHEMA,
        "version": GRID_VERSION,
        "recipe": recipe,
        "model": first.get("model"),
        "device": first.get("device"),
        "dataset": first.get("dataset"),
        "classifier": first.get("classifier"),
        "grid_params": list(names),
        "n_points": len(entries),
        "columns": [c for c, _ in metric_columns(entries)],
        "grid": entries,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_seconds": round(time.time() - started, 3),
        "argv": list(argv),
    }


def metric_columns(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(column name, label) of every task metric some point reports, baseline then steered."""
    cols: list[tuple[str, str]] = []
    for key, label in TASK_METRICS:
        for which in ("baseline", "steered"):
            if any((e.get("metrics") or {}).get(which, {}).get(key) is not None for e in entries):
                cols.append((f"{which}_{key}", f"{label} ({which})"))
    for key, label in ATTACK_METRICS:
        for which in ("baseline", "steered"):
            if any(_attack(e, which, key) is not None for e in entries):
                cols.append((f"{which}_attack_{key}", f"{label} ({which})"))
    return cols


def _attack(e: dict[str, Any], which: str, key: str) -> Any:
    return (((e.get("metrics") or {}).get("attack") or {}).get(which) or {}).get(key)


def metric_value(e: dict[str, Any], column: str) -> float | None:
    """A column of `metric_columns` for one entry (None when the point lacks it)."""
    which, _, key = column.partition("_")
    if key.startswith("attack_"):
        return _attack(e, which, key[len("attack_") :])
    return ((e.get("metrics") or {}).get(which) or {}).get(key)


def summary_csv(report: dict[str, Any]) -> str:
    """One row per point: index, the grid params, the plan's size, then every metric column."""
    names = list(report.get("grid_params") or [])
    entries = report.get("grid") or []
    cols = [c for c, _ in metric_columns(entries)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["point", *names, "n_edits", *cols])
    for e in entries:
        params = e.get("params") or {}
        w.writerow(
            [
                e["index"],
                *[params.get(n) for n in names],
                (e.get("plan") or {}).get("n_edits"),
                *["" if (v := metric_value(e, c)) is None else f"{v:.6f}" for c in cols],
            ]
        )
    return buf.getvalue()


def point_label(e: dict[str, Any], names: list[str]) -> str:
    params = e.get("params") or {}
    return ", ".join(f"{n}={params.get(n)}" for n in names)


def print_grid_summary(report: dict[str, Any], console: Any) -> None:
    """The summary table: one row per point, steered metrics with their change from the
    baseline (the baseline is the same unsteered model at every point)."""
    from rich.table import Table

    names = list(report.get("grid_params") or [])
    entries = report.get("grid") or []
    rec = report.get("recipe") or {}
    title = f"grid over {', '.join(names)}: {len(entries)} points ({rec.get('name', '')})"
    t = Table(title=title, title_justify="left")
    for n in names:
        t.add_column(n, justify="right")
    t.add_column("edits", justify="right")
    shown = [
        (k, label)
        for k, label in TASK_METRICS
        if any(metric_value(e, f"steered_{k}") is not None for e in entries)
    ]
    for _, label in shown:
        t.add_column(f"{label} (%)", justify="right")
    for e in entries:
        params = e.get("params") or {}
        row = [str(params.get(n)) for n in names]
        row.append(str((e.get("plan") or {}).get("n_edits")))
        for k, _ in shown:
            s, b = metric_value(e, f"steered_{k}"), metric_value(e, f"baseline_{k}")
            row.append(f"{pct(s)} ({delta(b, s)})")
        t.add_row(*row)
    console.print(t)
    if entries:
        base = [f"{label} {pct(metric_value(entries[0], f'baseline_{k}'))}" for k, label in shown]
        console.print("baseline (unsteered): " + ", ".join(base))
    if report.get("run_dir"):
        console.print(f"grid folder: {report['run_dir']}")
