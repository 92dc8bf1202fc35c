"""`report.json` and `manifest.json`: a run's numbers, and the hashes and versions needed to
reproduce them, as strict JSON (no NaN or numpy values)."""

from __future__ import annotations

import math
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.plan import SETTING_DEFAULTS
from steerlang.report import guards
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
        # Readable names ("waterbird, water=no": steerlang/pipeline/group_names.py); the raw
        # `column=value` names are `group_keys`.
        "groups": _group_labels(ev),
        "group_keys": list(ev.group_names) if ev is not None else [],
        # Groups with no evaluated images: worst-group accuracy is then incomplete
        # (metrics.*.worst_group_complete is false).
        "empty_groups": _empty_group_labels(ev),
        "steerability": {k: v.summary() for k, v in rec.steerability.items()},
        "warnings": [w.to_json() for w in rec.selection.warnings],
        "timings": {k: round(v, 3) for k, v in rec.timings.items()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_seconds": round(time.time() - started, 3),
        "argv": list(argv),
        "reproduce": reproduce_command(rec, argv),
    }
    if rec.predictions is not None:
        rep["predictions"] = {
            "file": "predictions.csv",
            "rows": len(next(iter(rec.predictions.values()), [])),
        }
    if rec.dataset is not None and rec.data_root is not None:
        rep["dataset"] = _dataset_summary(rec, ev)
    thresholds = guards.settings((rec.profile or {}).get("report"))
    rep["guard_thresholds"] = thresholds
    rep["warnings"] += guards.guard_warnings(rep, thresholds)
    return clean_json(rep)


def _group_labels(ev: Any | None) -> list[str]:
    if ev is None:
        return []
    return list(getattr(ev, "group_labels", None) or ev.group_names)


def _empty_group_labels(ev: Any | None) -> list[str]:
    """The empty groups, named as `groups` names them."""
    if ev is None:
        return []
    empty = list(getattr(ev, "empty_groups", []))
    labels = _group_labels(ev)
    index = {k: i for i, k in enumerate(ev.group_names)}
    return [labels[index[e]] if e in index and index[e] < len(labels) else e for e in empty]


def reproduce_command(rec: RunRecord, argv: Sequence[str]) -> str:
    """The full command that reruns this run: the command line as typed, with the recipe's
    absolute path, the profile that was read (also when it was found as ./steer.yaml) and
    every param's value (overridden or not) spelled out, so it reruns alike from any folder."""
    args = list(argv) or ["steer", "run", rec.ir.source or rec.ir.name]
    out: list[str] = []
    skip = False
    recipe_done = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a == "--param":
            skip = True
            continue
        if a.startswith("--param="):
            continue
        if i >= 2 and not recipe_done and not a.startswith("-") and rec.ir.source:
            if Path(a).resolve() == Path(rec.ir.source).resolve():
                a = str(Path(rec.ir.source).resolve())
                recipe_done = True
        out.append(a)
    profile_src = (rec.profile or {}).get("source")
    has_profile = any(a == "--profile" or a.startswith("--profile=") for a in out)
    if profile_src and not has_profile:
        out += ["--profile", str(Path(profile_src).resolve())]
    for name, p in rec.ir.params.items():
        value = p.value
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out += ["--param", f"{name}={text}"]
    return shlex.join(out)


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
            "stats_n_images": _stats_images(rec, r),
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


def _stats_images(rec: RunRecord, r: Any) -> int | None:
    """How many images the statistics this rule read were computed from."""
    table = rec.rule_tables.get((r.rule, r.layer, r.site))
    n = (getattr(table, "meta", None) or {}).get("n_images")
    return int(n) if n is not None else None


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
