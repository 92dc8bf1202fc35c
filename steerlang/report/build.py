"""`report.json` and `manifest.json`: a run's numbers, and the hashes and versions needed to
reproduce them, as strict JSON (no NaN or numpy values)."""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.plan import SETTING_DEFAULTS
from steerlang.report.record import RunRecord

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


def build_report(
    rec: RunRecord,
    ev: Any | None,
    *,
    classifier_info: dict[str, Any] | None,
    started: float,
    argv: Sequence[str] = (),
) -> dict[str, Any]:
    """The `report.json` document (`ev`: the evaluation result, None without a task)."""
    ir = rec.ir
    rep: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "version": REPORT_VERSION,
        "recipe": {
            "name": ir.name,
            "description": ir.description,
            "source": ir.source,
            "hash": ir.source_hash,
            "params": {n: p.value for n, p in ir.params.items()},
            "settings": {k: ir.setting(k) for k in sorted(SETTING_DEFAULTS)},
        },
        "model": {"ref": rec.model_ref, "hash": rec.model_hash},
        "device": rec.device,
        "dataset": None,
        "saes": dict(rec.sae_refs),
        "classifier": classifier_info,
        "plan": _plan_summary(rec),
        "statistics": {
            "keys": rec.stats_keys,
            "cached": rec.stats_cached,
            "computed": rec.stats_computed,
        },
        "metrics": ev.metrics if ev is not None else None,
        "groups": ev.group_names if ev is not None else [],
        # Groups with no evaluated images: worst-group accuracy is then incomplete
        # (metrics.*.worst_group_complete is false).
        "empty_groups": list(getattr(ev, "empty_groups", [])) if ev is not None else [],
        "steerability": {k: v.summary() for k, v in rec.steerability.items()},
        "warnings": [w.to_json() for w in rec.selection.warnings],
        "timings": {k: round(v, 3) for k, v in rec.timings.items()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_seconds": round(time.time() - started, 3),
        "argv": list(argv),
    }
    if rec.dataset is not None and rec.data_root is not None:
        rep["dataset"] = _dataset_summary(rec, ev)
    return clean_json(rep)


def _plan_summary(rec: RunRecord) -> dict[str, Any]:
    """The plan's size per site and what each rule selected and kept."""
    plan = rec.selection.plan
    ops: dict[str, str] = {}
    for x in rec.ir.rules:
        ops.setdefault(x.name, x.action.op)
    rules = [
        {
            "rule": r.rule,
            "layer": r.layer,
            "site": r.site,
            "tokens": r.tokens,
            "op": ops.get(r.rule),
            "selected": len(r.selected),
            "won": len(r.won),
            "n_features": r.n_features,
            "candidates": r.candidates,
            "thresholds": r.thresholds,
            "stats": r.stats,
        }
        for r in rec.selection.per_rule
    ]
    return {
        "n_edits": plan.n_edits,
        "sites": [
            {"layer": s.layer, "site": s.site, "sae": s.sae, "n_edits": len(s.edits)}
            for s in plan.sites
        ],
        "rules": rules,
        "overrides": len(plan.overrides),
        "stats_key": plan.stats_key,
        # Every edited feature: its id, the rule that won it and the statistics that rule read.
        "edited_features": [
            {
                "layer": s.layer,
                "site": s.site,
                "feature": e.feature,
                "rule": e.rule,
                "op": e.op,
                "value": e.value,
                "stats": dict(e.stats),
            }
            for s in plan.sites
            for e in s.edits
        ],
        # The feature cards shown in report.html (without their pixels).
        "feature_cards": [c.to_json() for c in rec.feature_cards],
    }


def _dataset_summary(rec: RunRecord, ev: Any | None) -> dict[str, Any]:
    ir = rec.ir
    assert rec.dataset is not None
    out: dict[str, Any] = {
        "name": rec.dataset["name"],
        "format": rec.dataset["format"],
        "root": rec.data_root,
        "stats_split": ir.setting("stats_split"),
        "stats_images": ir.setting("stats_images"),
        "eval_split": ir.setting("eval_split"),
        "n_eval": ev.n if ev is not None else None,
    }
    if ir.setting("attack") != "none" or ir.setting("stats_images") != "clean":
        out["attack"] = ir.setting("attack")
        out["attack_style"] = rec.attack_style
    return out


def manifest(rec: RunRecord, report: dict[str, Any]) -> dict[str, Any]:
    """`manifest.json`: library versions and the hash of everything the run used."""
    return clean_json(
        {
            "schema": "steerlang-manifest",
            "version": 1,
            "versions": _versions(),
            "hashes": {
                "recipe": rec.ir.source_hash,
                "model": rec.model_hash,
                "saes": dict(rec.sae_hashes),
                "statistics": rec.stats_keys,
                "steerability": {k: v.key for k, v in rec.steerability.items()},
                "plan": rec.selection.plan.stats_key,
            },
            "data": {
                "dataset": report.get("dataset"),
                "profile_dataset": rec.dataset,
            },
            "seeds": {"seed": rec.ir.setting("seed")},
            "model_ref": rec.model_ref,
            "sae_refs": report.get("saes"),
            "device": rec.device,
            "profile": rec.profile,
            "argv": report.get("argv"),
            "started": report.get("started"),
        }
    )


def _versions() -> dict[str, Any]:
    import torch

    from steerlang.version import __version__

    try:
        import open_clip

        oc = open_clip.__version__
    except Exception:  # noqa: BLE001 - version lookup only
        oc = None
    return {
        "steerlang": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "open_clip": oc,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
