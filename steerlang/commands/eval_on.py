"""`steer run RECIPE --eval-on NAME [--eval-on …]`: the run's plan evaluated on more datasets
(steerlang/pipeline/eval_on.py explains why this is a run option). The results go into the
report under `evaluations` (the recipe's own dataset first), report.json is rewritten in the
run folder, and the terminal shows one column per dataset. Cheap to import."""

from __future__ import annotations

import argparse
from typing import Any


def add_eval_on_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--eval-on",
        action="append",
        default=[],
        metavar="NAME",
        help="also evaluate the plan on this dataset (a profile name; repeatable)",
    )


def add_evaluations(out: Any, names: list[str], *, progress: Any = None) -> dict[str, Any]:
    """Evaluate `out` (a pipeline RunOutcome) on `names`; returns the `evaluations` entry."""
    import json

    from steerlang.errors import SteerError
    from steerlang.files import atomic_write_text
    from steerlang.pipeline.eval_on import evaluate_on

    po = out.plan
    if po.ir.task is None or out.eval_result is None:
        raise SteerError(
            "--eval-on needs a recipe with a task", help="add `task classify COLUMN as [...]`"
        )
    report = out.report
    own = po.ir.dataset or "dataset"
    evaluations = {
        own: {
            "dataset": report.get("dataset"),
            "metrics": report.get("metrics"),
            "groups": report.get("groups"),
            "empty_groups": report.get("empty_groups"),
        }
    }
    others = [n for n in names if n != own]
    evaluations.update(
        evaluate_on(
            po.ir,
            po.binding,
            po.selection.plan,
            others,
            classifier=out.eval_result.classifier,
            progress=progress,
        )
    )
    report["evaluations"] = evaluations
    if out.run_dir is not None:
        atomic_write_text(out.run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    return evaluations
