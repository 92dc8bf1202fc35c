"""The terminal tables of `--eval-on` datasets (steerlang/pipeline/eval_pass.py measures them;
report.json holds them under `evaluations`)."""

from __future__ import annotations

from typing import Any

from steerlang.report.formatting import TASK_METRICS_TERMINAL, delta, pct


def print_evaluations(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    evals = report.get("evaluations") or {}
    if not evals:
        return
    names = list(evals)
    t = Table(
        title="the same plan on each dataset (%, baseline → steered, Δ)", title_justify="left"
    )
    t.add_column("metric")
    for n in names:
        t.add_column(f"{n} (n={evals[n]['dataset']['n_eval']})", justify="right")
    rows: list[tuple[str, str, str]] = [(label, "", key) for label, key in TASK_METRICS_TERMINAL]
    rows += [
        ("attacked images", "attack", "attacked"),
        ("attack drop recovered", "attack", "recovered"),
    ]
    for label, section, key in rows:
        cells = []
        for n in names:
            m = evals[n].get("metrics") or {}
            if section == "attack":
                a = m.get("attack") or {}
                if key == "recovered":
                    cells.append(pct(a.get("recovered")) if a else "")
                    continue
                b, s = (a.get("baseline") or {}).get(key), (a.get("steered") or {}).get(key)
            else:
                b, s = (m.get("baseline") or {}).get(key), (m.get("steered") or {}).get(key)
            cells.append("" if b is None and s is None else f"{pct(b)} → {pct(s)} ({delta(b, s)})")
        if any(cells):
            t.add_row(label, *cells)
    console.print(t)
