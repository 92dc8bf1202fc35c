"""The grid run folder: `<out>/<recipe>-grid-<YYYYmmdd-HHMMSS>[-N]/` with

- `report.json`: the grid report (steerlang/report/grid_summary.py), its `grid` array holding
  one entry per point;
- `grid.csv`: one row per point, the grid params and every task metric;
- `report.html`: the summary table and the line plot of each metric (steerlang/report/
  grid_plot.py), a page of its own;
- `points/<i>/plan.json` and `points/<i>/report.json`: each point's plan and single-run report.

Assembled in a hidden temporary folder and renamed onto a name claimed with `mkdir`, as a
single run's folder is (steerlang/report/folder.py explains why).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steerlang.errors import SteerError
from steerlang.files import dir_mode
from steerlang.report.build import clean_json
from steerlang.report.folder import _claim, _remove_empty, _safe_name, out_root_path
from steerlang.report.formatting import esc, pct
from steerlang.report.grid_plot import grid_plot_svg
from steerlang.report.grid_summary import TASK_METRICS, metric_value, summary_csv


@dataclass
class GridPointFiles:
    plan_json: str
    report: dict[str, Any]


def write_grid_folder(
    recipe_name: str,
    report: dict[str, Any],
    points: list[GridPointFiles],
    *,
    out_root: str | os.PathLike[str] | None = None,
) -> Path:
    root = out_root_path(out_root)
    base = f"{_safe_name(recipe_name)}-grid-{time.strftime('%Y%m%d-%H%M%S')}"
    tmp: Path | None = None
    final: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=root))
        os.chmod(tmp, dir_mode())
        final = _claim(root, base)
        report["run_dir"] = str(final)
        doc = clean_json(report)
        (tmp / "report.json").write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
        (tmp / "grid.csv").write_text(summary_csv(doc), "utf-8")
        (tmp / "report.html").write_text(render_grid_html(doc), "utf-8")
        for i, p in enumerate(points):
            d = tmp / "points" / str(i)
            d.mkdir(parents=True, mode=dir_mode())
            (d / "plan.json").write_text(p.plan_json, "utf-8")
            (d / "report.json").write_text(json.dumps(clean_json(p.report), indent=2) + "\n")
        os.rename(tmp, final)
    except BaseException as e:
        if final is not None:
            _remove_empty(final)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise SteerError(
                f"could not write the grid folder in {root} ({e})",
                help="free space or fix permissions, or pass `--out DIR`; statistics are "
                "cached, so a rerun is fast",
            ) from e
        raise
    return final


def render_grid_html(report: dict[str, Any]) -> str:
    """The grid page: what was run, the summary table and the plot."""
    names = list(report.get("grid_params") or [])
    entries = report.get("grid") or []
    rec = report.get("recipe") or {}
    shown = [
        (k, label)
        for k, label in TASK_METRICS
        if any(metric_value(e, f"steered_{k}") is not None for e in entries)
    ]
    head = "".join(f"<th>{esc(n)}</th>" for n in names) + "<th>edits</th>"
    head += "".join(f"<th>{esc(label)} (%)<br>baseline → steered</th>" for _, label in shown)
    rows = []
    for e in entries:
        params = e.get("params") or {}
        cells = "".join(f"<td>{esc(params.get(n))}</td>" for n in names)
        cells += f"<td>{esc((e.get('plan') or {}).get('n_edits'))}</td>"
        for k, _ in shown:
            b, s = metric_value(e, f"baseline_{k}"), metric_value(e, f"steered_{k}")
            cells += f"<td>{pct(b)} → <b>{pct(s)}</b></td>"
        rows.append(f"<tr><td>{e['index']}</td>{cells}</tr>")
    svg = grid_plot_svg(report) or "<p>No task metrics to plot.</p>"
    ds = report.get("dataset") or {}
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(rec.get("name"))}: grid</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head>
<body>
<h1>{esc(rec.get("name"))}: grid over {esc(", ".join(names))}</h1>
<p>{esc(rec.get("description") or "")}</p>
<p>model {esc((report.get("model") or {}).get("ref"))} · dataset {esc(ds.get("name", "—"))}
(eval: {esc(ds.get("eval_split", "—"))}) · {len(entries)} points ·
{esc(report.get("wall_seconds"))} s</p>
<h2>Task metrics across the grid</h2>
{svg}
<h2>Summary</h2>
<table><tr><th>point</th>{head}</tr>
{"".join(rows)}
</table>
<p>Each point's plan and full report: <code>points/&lt;point&gt;/plan.json</code>,
<code>points/&lt;point&gt;/report.json</code>; the table as CSV: <code>grid.csv</code>.</p>
</body></html>
"""
