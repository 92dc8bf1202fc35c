"""The evaluation stage of a run: the task's classifier (zero-shot or a linear probe), then the
baseline and the steered model on the same `eval_split` images (see
steerlang/pipeline/evaluate.py for the metrics)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from steerlang.data.batches import image_batches, subset_indices
from steerlang.errors import SteerError
from steerlang.pipeline.bind import Binding, attack_style_for, split_of
from steerlang.pipeline.evaluate import (
    TYPOGRAPHIC_DATASETS,
    EvalSpec,
    evaluate,
    group_spec,
    task_labels,
    train_linear_probe,
    zero_shot_classifier,
)
from steerlang.pipeline.group_names import readable_group_names
from steerlang.plan import InterventionPlan, RecipeIR

log = logging.getLogger("steerlang.run")


def evaluation_spec(ir: RecipeIR, table: Any, style: str = "dp") -> EvalSpec:
    """What to measure: the task's labels and classes, the groups, and the attack (ignored on
    a dataset whose images already carry the written words)."""
    assert ir.task is not None
    attack = str(ir.setting("attack"))
    attack_col = None
    if getattr(table, "format", "") in TYPOGRAPHIC_DATASETS:
        attack_col = table.meta.get("attack_column", "text")
        if attack == "typographic":
            log.warning(
                "dataset %s is already a typographic-attack set; `attack = typographic` is ignored",
                table.name,
            )
            attack = "none"
    return EvalSpec(
        label_column=ir.task.label,
        classes=list(ir.task.classes),
        groups=list(ir.groups),
        attack=attack,
        attack_column=attack_col,
        attack_seed=int(ir.setting("seed")),
        attack_style=style,
    )


def evaluate_task(
    ir: RecipeIR,
    b: Binding,
    plan: InterventionPlan,
    *,
    progress: Any = None,
    classifier: Any = None,
    baseline: dict[str, np.ndarray] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """(the evaluation result, what describes the classifier in the report). A grid passes
    the `classifier` and the `baseline` predictions of its first point, computed once
    (steerlang/pipeline/grid.py)."""
    assert ir.task is not None
    if b.table is None:
        raise SteerError(
            "the recipe has a task but names no dataset",
            help="add `dataset NAME` to the recipe",
        )
    spec = evaluation_spec(ir, b.table, attack_style_for(ir, b))
    eval_table = split_of(b.table, str(ir.setting("eval_split")), "evaluation")
    idx = subset_indices(len(eval_table), int(ir.setting("eval_limit")), int(ir.setting("seed")))
    clf = classifier if classifier is not None else _classifier(ir, b, spec)
    groups = group_spec(b.table, list(ir.groups))
    ev = evaluate(
        b.handle,
        plan,
        b.saes,
        eval_table,
        idx,
        spec,
        clf,
        groups=groups,
        batch_size=int(ir.setting("batch_size")),
        device=b.device,
        progress=progress,
        baseline=baseline,
    )
    ev.classifier = clf
    if groups is not None:
        ev.group_labels = readable_group_names(ir, groups, b.table)
    return ev, {"kind": clf.kind, "classes": clf.classes, **clf.info}


def _classifier(ir: RecipeIR, b: Binding, spec: EvalSpec) -> Any:
    assert ir.task is not None
    kind = str(ir.setting("classifier"))
    if kind == "zero_shot":
        return zero_shot_classifier(b.handle, spec.classes, ir.task.prompts)
    if kind == "linear_probe":
        return _linear_probe(ir, b, spec)
    raise SteerError(
        f"unknown classifier `{kind}`",
        help='use `set classifier = "zero_shot"` or "linear_probe"',
    )


def _linear_probe(ir: RecipeIR, b: Binding, spec: EvalSpec) -> Any:
    """A probe trained on image embeddings of the `probe_split` (at most `stats_limit` rows)."""
    import torch

    split = str(ir.setting("probe_split"))
    table = split_of(b.table, split, "probe")
    idx = subset_indices(len(table), int(ir.setting("stats_limit")), int(ir.setting("seed")))
    sub = table.subset(idx)
    labels = task_labels(sub, spec.label_column, spec.classes)
    feats = []
    with torch.inference_mode():
        for _, px in image_batches(
            sub,
            np.arange(len(sub)),
            b.handle.preprocess,
            int(ir.setting("batch_size")),
            device=b.device,
        ):
            feats.append(b.handle.encode_image(px).float().cpu())
    x = torch.cat(feats)
    if not bool(torch.isfinite(x).all()):
        raise SteerError(
            f"the unsteered model `{b.model_ref}` gives non-finite image embeddings (inf or "
            f"NaN) on the {split} split, so no linear probe can be trained on them",
            help="the model's weights hold inf or NaN, or its precision overflows (fp16); "
            "check the checkpoint, or run in float32",
        )
    log.info("trained a linear probe on %d %s images", len(sub), split)
    return train_linear_probe(
        x, labels, len(spec.classes), seed=int(ir.setting("seed")), classes=spec.classes
    )
