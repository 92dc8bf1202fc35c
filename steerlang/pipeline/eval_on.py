"""One plan, several datasets: `steer run R --eval-on NAME [--eval-on …]`.

The recipe's own dataset gives the statistics the rules select from and its evaluation; each
`--eval-on` dataset is then evaluated with the same plan, the same classifier (zero-shot class
embeddings, or the probe trained on the recipe's dataset) and the same task and groups, so the
numbers differ only by the images. A dataset that lacks the task's label or group columns is an
error naming them (steerlang/pipeline/evaluate.py). Why a flag and not a second `dataset` line:
the plan depends on the statistics dataset only, so which datasets it is *evaluated* on is a
property of the run, not of the recipe, and one recipe serves every such comparison.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from steerlang.pipeline.bind import Binding
from steerlang.pipeline.eval_pass import evaluate_task
from steerlang.plan import InterventionPlan, RecipeIR


def evaluate_on(
    ir: RecipeIR,
    b: Binding,
    plan: InterventionPlan,
    names: Sequence[str],
    *,
    classifier: Any = None,
    progress: Any = None,
) -> dict[str, dict[str, Any]]:
    """dataset name -> {dataset, metrics, groups, empty_groups} for each named dataset."""
    from steerlang.report.build import clean_json

    out: dict[str, dict[str, Any]] = {}
    for name in names:
        spec = b.profile.dataset(name)
        table = spec.load()
        other = dataclasses.replace(b, dataset=spec, table=table)
        ev, info = evaluate_task(ir, other, plan, progress=progress, classifier=classifier)
        out[name] = clean_json(
            {
                "dataset": {
                    "name": name,
                    "format": spec.format,
                    "eval_split": ir.setting("eval_split"),
                    "n_eval": ev.n,
                },
                "classifier": info,
                "metrics": ev.metrics,
                "groups": ev.group_names,
                "empty_groups": ev.empty_groups,
            }
        )
    return out
