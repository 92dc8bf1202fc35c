"""`steer compare RUN_A RUN_B …`: finished runs side by side.

Reads each run folder's `report.json` and `plan.json` (a `steer run` folder, or a grid point's
`points/<i>/` folder; a grid folder stands for all its points) and shows

- the task metrics of every run, baseline and steered, with each run's difference from the
  first (RUN_A), in percentage points;
- the features the plans share: edited by every run, and those only some runs edit, per
  (layer, site).

Nothing is recomputed: the numbers are those the runs reported. Cheap to import (no torch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from steerlang.errors import SteerError

# (key in metrics[which], label), the scalar task metrics in the order a run reports them.
METRICS = (
    ("accuracy", "accuracy"),
    ("worst_group", "worst-group accuracy"),
    ("average_plain", "average (plain)"),
    ("average_adjusted", "average (adjusted)"),
    ("text_rate", "reads the written word"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="finished runs side by side: metrics, differences, shared features",
        description="Compare finished run folders (or grid folders, one entry per point): "
        "task metrics with their differences from the first run, and which features the plans "
        "share and do not share.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (runs/<recipe>-<time>)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=compare_command)


def _load(path: Path, label: str) -> dict[str, Any]:
    try:
        report = json.loads((path / "report.json").read_text("utf-8"))
        plan = json.loads((path / "plan.json").read_text("utf-8"))
    except FileNotFoundError as e:
        raise SteerError(
            f"{path} is not a finished run folder (no {Path(e.filename).name})",
            help="pass folders written by `steer run` (they hold report.json and plan.json)",
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise SteerError(f"cannot read the run folder {path}: {e}") from None
    features = {
        f"L{s['layer']} {s.get('site', 'resid_post')}": sorted(
            {int(e["feature"]) for e in s.get("edits", [])}
        )
        for s in plan.get("sites", [])
    }
    return {
        "run": label,
        "path": str(path),
        "recipe": (report.get("recipe") or {}).get("name"),
        "params": plan.get("params") or {},
        "metrics": report.get("metrics") or {},
        "n_edits": sum(len(v) for v in features.values()),
        "features": features,
    }


def load_runs(paths: list[str]) -> list[dict[str, Any]]:
    """Every run named, a grid folder expanded into its points."""
    runs: list[dict[str, Any]] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise SteerError(f"no run folder {raw}", help="pass a folder under runs/")
        points = path / "points"
        if points.is_dir() and not (path / "plan.json").exists():
            for p in sorted(points.iterdir(), key=lambda q: int(q.name) if q.name.isdigit() else 0):
                runs.append(_load(p, f"{path.name}#{p.name}"))
        else:
            runs.append(_load(path, path.name))
    if len(runs) < 2:
        raise SteerError("compare needs at least two runs", help="pass two or more run folders")
    return runs


def comparison(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics with differences from the first run, and the shared and unshared features."""
    rows = []
    for which in ("baseline", "steered"):
        for key, label in METRICS:
            vals = [((r["metrics"].get(which) or {}).get(key)) for r in runs]
            if all(v is None for v in vals):
                continue
            first = vals[0]
            rows.append(
                {
                    "metric": f"{which} {label}",
                    "key": f"{which}.{key}",
                    "values": vals,
                    "diff_from_first": [
                        None if v is None or first is None else v - first for v in vals
                    ],
                }
            )
    sites = sorted({s for r in runs for s in r["features"]})
    shared: dict[str, Any] = {}
    for s in sites:
        sets = [set(r["features"].get(s, [])) for r in runs]
        common = set.intersection(*sets)
        only = {}
        for i, (r, fs) in enumerate(zip(runs, sets, strict=True)):
            others = set().union(*(o for j, o in enumerate(sets) if j != i))
            if fs - others:
                only[r["run"]] = sorted(fs - others)
        shared[s] = {
            "counts": {r["run"]: len(fs) for r, fs in zip(runs, sets, strict=True)},
            "in_all": sorted(common),
            # Edited by this run and by no other.
            "only_in": only,
            # How many of each run's features the first run edits too.
            "shared_with_first": {
                r["run"]: len(fs & sets[0]) for r, fs in zip(runs[1:], sets[1:], strict=True)
            },
        }
    return {
        "runs": [{k: r[k] for k in ("run", "path", "recipe", "params", "n_edits")} for r in runs],
        "metrics": rows,
        "features": shared,
    }


def compare_command(args: argparse.Namespace) -> int:
    doc = comparison(load_runs(list(args.runs)))
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    from rich.console import Console

    print_comparison(doc, Console())
    return 0


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def _pp(v: Any) -> str:
    return "—" if v is None else f"{100 * v:+.1f}"


def print_comparison(doc: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    runs = doc["runs"]
    t = Table(title="task metrics (%), Δ from the first run in points", title_justify="left")
    t.add_column("metric")
    for i, r in enumerate(runs):
        t.add_column(r["run"] if i == 0 else f"{r['run']} (Δ)", justify="right")
    for row in doc["metrics"]:
        cells = [_pct(row["values"][0])]
        cells += [
            f"{_pct(v)} ({_pp(d)})"
            for v, d in zip(row["values"][1:], row["diff_from_first"][1:], strict=True)
        ]
        t.add_row(row["metric"], *cells)
    t.add_row("feature edits", *[str(r["n_edits"]) for r in runs])
    console.print(t)
    for r in runs:
        if r["params"]:
            shown = ", ".join(f"{k}={v}" for k, v in r["params"].items())
            console.print(f"{r['run']}: {r['recipe']} ({shown})")
    ft = Table(title="features edited", title_justify="left")
    ft.add_column("site")
    for i, r in enumerate(runs):
        ft.add_column(r["run"] if i == 0 else f"{r['run']} (shared with first)", justify="right")
    ft.add_column("in every run", justify="right")
    ft.add_column("in this run only")
    for site, f in doc["features"].items():
        cells = [str(f["counts"][runs[0]["run"]])]
        cells += [f"{f['counts'][r['run']]} ({f['shared_with_first'][r['run']]})" for r in runs[1:]]
        only = "; ".join(f"{run}: {_ids(ids)}" for run, ids in f["only_in"].items()) or "—"
        ft.add_row(site, *cells, str(len(f["in_all"])), only)
    console.print(ft)


def _ids(ids: list[int], limit: int = 12) -> str:
    head = ", ".join(str(i) for i in ids[:limit])
    return f"{len(ids)} ({head}{', …' if len(ids) > limit else ''})"
