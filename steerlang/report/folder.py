"""The run folder: `<out>/<recipe>-<timestamp>/` with plan.json, report.json, explain.json,
manifest.json and report.html.

Why a folder per run, written atomically: a report is evidence for a claim ("this recipe
raises worst-group accuracy by 12 points"), so each run keeps its own plan, numbers and the
hashes of everything it used, and a run killed mid-write leaves no half folder behind (files
are assembled in a hidden temporary folder renamed into place at the end).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from steerlang.report.build import clean_json, manifest
from steerlang.report.html import render_html
from steerlang.report.record import RunRecord


def _safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return keep.strip("-.") or "recipe"


def write_run_folder(
    rec: RunRecord, report: dict[str, Any], *, out_root: str | None = None
) -> Path:
    """`<out_root or ./runs>/<recipe>-<timestamp>/` with plan, report, explain, manifest and
    HTML, assembled in a temporary folder and renamed into place."""
    root = Path(out_root) if out_root else Path.cwd() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{_safe_name(rec.ir.name)}-{stamp}"
    final = root / base
    n = 1
    while final.exists():
        n += 1
        final = root / f"{base}-{n}"
    report = dict(report)
    report["run_dir"] = str(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=root))
    try:
        plan = rec.selection.plan
        (tmp / "plan.json").write_text(plan.model_dump_json(indent=2) + "\n", "utf-8")
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
        (tmp / "explain.json").write_text(
            json.dumps(clean_json(rec.selection.explain_json()), indent=2) + "\n", "utf-8"
        )
        (tmp / "manifest.json").write_text(
            json.dumps(manifest(rec, report), indent=2) + "\n", "utf-8"
        )
        (tmp / "report.html").write_text(render_html(rec, report), "utf-8")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
