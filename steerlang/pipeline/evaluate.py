"""Baseline and steered task metrics from one pass over the evaluation images.

Why one pass: the two numbers a user compares must come from the same images, the same
preprocessing and the same batches, so every batch is embedded twice (hooks off, hooks on) and
both predictions are kept side by side; a typographic attack adds the attacked copy of the same
images. The classifier (zero-shot text embeddings or a linear probe trained on the unsteered
model's embeddings) is fixed before the pass, so steering changes only the image side.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from steerlang.errors import SteerError

log = logging.getLogger("steerlang.evaluate")

TYPOGRAPHIC_DATASETS = ("rta100", "paint", "typographic", "disentangling")


class EvaluationError(SteerError):
    """The task cannot be evaluated on this dataset (labels, classes, groups)."""


# ------------------------------------------------------------------------------------------
# Classifiers
# ------------------------------------------------------------------------------------------


@dataclass
class Classifier:
    """Logits = embeddings @ weight.T + bias; prediction = argmax."""

    kind: str
    classes: list[str]
    weight: Any  # torch [C, E] float32
    bias: Any | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def logits(self, emb: Any) -> Any:
        w = self.weight.to(emb.device)
        out = emb.float() @ w.T
        if self.bias is not None:
            out = out + self.bias.to(emb.device)
        return out

    def predict(self, emb: Any) -> np.ndarray:
        return self.logits(emb).argmax(-1).cpu().numpy().astype(np.int64)


def zero_shot_classifier(handle: Any, classes: Sequence[str], prompts: Sequence[str]) -> Classifier:
    """The task's classes embedded by the same model's text tower with the task's prompts
    (`steerlang.model.zero_shot.class_embeddings`: CLIP's prompt ensembling)."""
    from steerlang.model.zero_shot import DEFAULT_TEMPLATE, class_embeddings

    if not classes:
        raise EvaluationError(
            "the task names no classes", help='write `task classify y as ["a", "b"]`'
        )
    templates = list(prompts) or [DEFAULT_TEMPLATE]
    return Classifier(
        kind="zero_shot",
        classes=list(classes),
        weight=class_embeddings(handle.encode_text, classes, templates).cpu(),
        info={"prompts": templates},
    )


def train_linear_probe(
    features: Any,
    labels: np.ndarray,
    n_classes: int,
    *,
    seed: int = 0,
    l2: float = 1e-3,
    max_iter: int = 200,
    classes: Sequence[str] = (),
) -> Classifier:
    """Multinomial logistic regression with an L2 penalty, fitted by full-batch L-BFGS in
    float64 from a zero start (the loss is convex, so the result is deterministic; `seed`
    only fixes torch's global state for any library randomness)."""
    import torch

    torch.manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float64).cpu()
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if x.shape[0] == 0:
        raise EvaluationError("the probe split has no images", help="check `set probe_split`")
    mu = x.mean(0, keepdim=True)
    sd = x.std(0, keepdim=True).clamp_min(1e-8)
    xs = (x - mu) / sd
    w = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )

    def closure() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xs @ w.T + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        # Fold the standardisation into the weights so the probe applies to raw embeddings.
        wf = w / sd
        bf = b - (mu / sd) @ w.T
        acc = float(((x @ wf.T + bf.squeeze(0)).argmax(-1) == y).double().mean())
    return Classifier(
        kind="linear_probe",
        classes=list(classes) or [str(i) for i in range(n_classes)],
        weight=wf.float(),
        bias=bf.squeeze(0).float(),
        info={"l2": l2, "train_accuracy": acc, "n_train": int(x.shape[0]), "seed": seed},
    )


# ------------------------------------------------------------------------------------------
# Labels and groups
# ------------------------------------------------------------------------------------------


def task_labels(table: Any, label_column: str, classes: Sequence[str]) -> np.ndarray:
    """Class indices (into the task's `classes`) for every row.

    `task classify COLUMN as [...]` lists the classes in label-index order (docs/language.md):

    - an integer column whose values the dataset names row by row (a `COLUMN_name` column:
      the typographic sets, Disentangling, ImageFolder) is matched by those names, in any
      order, because the dataset's class list (file or folder names) is the truth there;
    - any other integer column (Waterbirds `y` and `place`, CelebA attributes) maps value i to
      class i, whatever the classes are called (`["a land bird", "a water bird"]` works);
    - a string column is matched by name.

    A mismatch is an EvaluationError naming the column and the values it holds.
    """
    col = table.column(label_column)
    cls = list(classes)
    if col.dtype.kind in "iub":
        name_col = f"{label_column}_name"
        if name_col in (getattr(table, "columns", None) or []):
            names = [str(v) for v in table.column(name_col).tolist()]
            return _names_to_idx(names, cls, name_col, table)
        return _values_to_idx(col.astype(np.int64), cls, label_column, table)
    return _names_to_idx([str(v) for v in col.tolist()], cls, label_column, table)


def declared_values(table: Any, column: str) -> list[str] | None:
    """Names of the values 0..n-1 an integer column can hold, when the dataset's format
    declares them (Waterbirds: y 0 landbird / 1 waterbird, place 0 land / 1 water)."""
    names = (getattr(table, "meta", None) or {}).get("value_names", {}).get(column)
    return list(names) if names else None


def _values_to_idx(vals: np.ndarray, classes: list[str], col: str, table: Any) -> np.ndarray:
    """Value i is class i; every value must have a class, and a column whose values the
    format declares needs exactly one class per value."""
    declared = declared_values(table, col)
    found = sorted({int(v) for v in np.unique(vals)}) if vals.size else []
    dataset = getattr(table, "name", "dataset")
    if declared is not None:
        values = ", ".join(f"{i} {n}" for i, n in enumerate(declared))
        if len(classes) != len(declared):
            raise EvaluationError(
                f"the task lists {len(classes)} classes for column `{col}` of `{dataset}`, "
                f"which holds {len(declared)} values ({values})",
                help=f"list one class per value, in label-index order: class i is `{col}` == i "
                f"(e.g. {_example(col, declared)})",
            )
    bad = [v for v in found if not 0 <= v < len(classes)]
    if bad:
        shown = ", ".join(str(v) for v in found[:12]) + (" ..." if len(found) > 12 else "")
        raise EvaluationError(
            f"column `{col}` of `{dataset}` holds the values {shown}, but the task lists "
            f"{len(classes)} classes, so value {bad[0]} has no class",
            help=f"class i is `{col}` == i: list one class per value 0..{max(found)}, in that "
            "order",
        )
    return vals


def _example(col: str, names: list[str]) -> str:
    inner = ", ".join(f'"{n}"' for n in names)
    return f"`task classify {col} as [{inner}]`"


def _names_to_idx(
    names: Sequence[str | None], classes: list[str], col: str, table: Any
) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(names), dtype=np.int64)
    for i, n in enumerate(names):
        if n not in index:
            found = sorted({str(x) for x in names})
            shown = ", ".join(found[:12]) + (" ..." if len(found) > 12 else "")
            raise EvaluationError(
                f"row {i} of `{getattr(table, 'name', 'dataset')}` has label `{n}` (column "
                f"`{col}`), which is not one of the task's classes {classes[:8]}; the column "
                f"holds {len(found)} names: {shown}",
                help="this dataset names its classes, so the task's classes must use those "
                "names (in any order); phrase them for the text tower with `prompt`",
            )
        out[i] = index[n]
    return out


def attack_word_index(table: Any, column: str, classes: Sequence[str]) -> np.ndarray:
    """Index of the written word in the task's classes (-1 when it is not a class)."""
    col = table.column(column)
    tcls = getattr(table, "classes", None)
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for v in col.tolist():
        name = tcls[int(v)] if tcls and isinstance(v, int | np.integer) and int(v) >= 0 else v
        out.append(index.get(str(name), -1))
    return np.asarray(out, dtype=np.int64)


@dataclass
class GroupSpec:
    columns: list[str]
    radices: list[int]
    train_counts: list[int] | None

    @property
    def n_groups(self) -> int:
        return int(np.prod(self.radices)) if self.radices else 0

    def names(self) -> list[str]:
        out = []
        for g in range(self.n_groups):
            parts = []
            rem = g
            for col, r in zip(reversed(self.columns), reversed(self.radices), strict=True):
                parts.append(f"{col}={rem % r}")
                rem //= r
            out.append(",".join(reversed(parts)))
        return out


def group_spec(full_table: Any, columns: Sequence[str]) -> GroupSpec | None:
    """The groups: every combination of the group columns' values, each column's values being
    0..r-1 with r from the whole dataset (the values its format declares, else the largest
    value in any split + 1), so every split numbers groups alike and a group missing from the
    evaluated split is known to be missing. Also the train split's group counts for the
    adjusted average (group_DRO / WILDS convention)."""
    from steerlang.pipeline.metrics import group_counts, table_group_ids

    if not columns:
        return None
    radices = []
    for c in columns:
        col = full_table.column(c)
        if col.dtype.kind not in "iub":
            raise EvaluationError(
                f"group column `{c}` must hold integers, found {col.dtype}",
                help="group by integer columns such as Waterbirds' y and place",
            )
        # Every value the format declares, else every value seen in any split: a group of
        # this product with no evaluated images is then reported as empty, not dropped.
        seen = int(col.max()) + 1 if col.size else 1
        radices.append(max(seen, len(declared_values(full_table, c) or [])))
    train_counts = None
    if getattr(full_table, "has_splits", False):
        train = full_table.split("train")
        if len(train):
            gid, n = table_group_ids(train, list(columns), radices)
            train_counts = [int(v) for v in group_counts(gid, n)]
    return GroupSpec(list(columns), radices, train_counts)


# ------------------------------------------------------------------------------------------
# The evaluation pass
# ------------------------------------------------------------------------------------------


@dataclass
class EvalSpec:
    label_column: str
    classes: list[str]
    groups: list[str] = field(default_factory=list)
    attack: str = "none"  # none | typographic (write a wrong class word on each image)
    attack_column: str | None = None  # dataset column with the written word (typographic sets)
    attack_seed: int = 0
    attack_style: str = "dp"  # how the word is drawn (steerlang.data.attack.ATTACK_STYLES)


@dataclass
class EvalResult:
    n: int
    labels: np.ndarray
    groups: np.ndarray | None
    preds: dict[str, np.ndarray]  # baseline, steered, [baseline_attacked, steered_attacked]
    attack_words: np.ndarray | None
    metrics: dict[str, Any]
    group_names: list[str] = field(default_factory=list)
    # Groups (of every combination of the group columns' values) without evaluated images.
    empty_groups: list[str] = field(default_factory=list)
    # The classifier the predictions came from (a grid reuses it for every point).
    classifier: Any = field(default=None, repr=False)
    # Per image, same keys as `preds`: the classifier's margin for the true class (its logit
    # minus the largest other logit; > 0 when the prediction is right), for predictions.csv.
    margins: dict[str, np.ndarray] = field(default_factory=dict)
    # The evaluated rows: the table they came from (the eval split) and their row indices in
    # it; `attacked_view` is the attacked copy of those rows (None without an attack).
    table: Any = None
    attacked_view: Any = None
    classes: list[str] = field(default_factory=list)  # the task's classes, label-index order
    # Readable group names (steerlang/pipeline/group_names.py), set by the evaluation stage.
    group_labels: list[str] = field(default_factory=list)


def evaluate(
    handle: Any,
    plan: Any,
    saes: Mapping[tuple[int, str], Any],
    table: Any,
    indices: np.ndarray,
    spec: EvalSpec,
    classifier: Classifier,
    *,
    groups: GroupSpec | None = None,
    batch_size: int = 64,
    device: Any = "cpu",
    progress: Any = None,
    baseline: Mapping[str, np.ndarray] | None = None,
) -> EvalResult:
    """Embed every batch with hooks off and on (and attacked copies when asked) and score.
    With `baseline` (the unsteered predictions of an earlier evaluation of the same images,
    `baseline` and `baseline_attacked`), only the steered model runs."""
    sub = table.subset(indices) if len(indices) != len(table) else table
    labels = task_labels(sub, spec.label_column, spec.classes)
    attacked_view, attack_words = _attack(sub, labels, spec)
    margins: dict[str, list[np.ndarray]] = {}
    out = _predictions(
        handle,
        plan,
        saes,
        sub,
        attacked_view,
        classifier,
        batch_size=batch_size,
        device=device,
        progress=progress,
        baseline=baseline,
        labels=labels,
        margins=margins,
    )
    gids = None
    gnames: list[str] = []
    if groups is not None:
        from steerlang.pipeline.metrics import table_group_ids

        gids, _ = table_group_ids(sub, groups.columns, groups.radices)
        gnames = groups.names()
    metrics = score(out, labels, gids, groups, attack_words, attacked=attacked_view is not None)
    metrics["intervals"] = metric_intervals(
        out, labels, gids, groups.n_groups if groups is not None else 0, seed=spec.attack_seed
    )
    empty: list[str] = []
    if groups is not None and gids is not None:
        from steerlang.pipeline.metrics import group_counts

        counts = group_counts(gids, groups.n_groups)
        empty = [gnames[i] for i in np.flatnonzero(counts == 0)]
        if empty:
            log.warning(
                "%d of %d groups have no images in the evaluated split (%s): worst-group "
                "accuracy covers only the other groups",
                len(empty),
                groups.n_groups,
                ", ".join(empty),
            )
    return EvalResult(
        n=len(sub),
        labels=labels,
        groups=gids,
        preds=out,
        attack_words=attack_words,
        metrics=metrics,
        group_names=gnames,
        empty_groups=empty,
        margins={k: np.concatenate(v) if v else np.zeros(0) for k, v in margins.items()},
        table=sub,
        attacked_view=attacked_view,
        classes=list(spec.classes),
    )


def _attack(sub: Any, labels: np.ndarray, spec: EvalSpec) -> tuple[Any | None, np.ndarray | None]:
    """(a view of `sub` with a wrong class word written on each image, or None; the index of
    the written word per image, or None without an attack)."""
    if spec.attack == "typographic":
        from steerlang.data.attack import attack_table

        attacked_view = attack_table(
            with_label_indices(sub, spec.label_column, labels),
            classes=spec.classes,
            label_column="__label__",
            seed=spec.attack_seed,
            style=spec.attack_style,
        )
        return attacked_view, np.asarray(attacked_view.column("attack"), dtype=np.int64)
    if spec.attack_column:
        return None, attack_word_index(sub, spec.attack_column, spec.classes)
    if spec.attack != "none":
        raise EvaluationError(
            f"unknown attack `{spec.attack}`", help='use `set attack = "typographic"` or "none"'
        )
    return None, None


def _predictions(
    handle: Any,
    plan: Any,
    saes: Mapping[tuple[int, str], Any],
    sub: Any,
    attacked_view: Any | None,
    classifier: Classifier,
    *,
    batch_size: int,
    device: Any,
    progress: Any,
    baseline: Mapping[str, np.ndarray] | None = None,
    labels: np.ndarray | None = None,
    margins: dict[str, list[np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Class predictions of the baseline and the steered model, on the clean images and (with
    an attack) on their attacked copies, batch by batch on the same images. With `labels`,
    `margins` collects each image's true-class margin under the same keys."""
    import torch

    from steerlang.data.batches import image_batches
    from steerlang.model.hooks import blame_non_finite, steer
    from steerlang.model.prefix import SharedPrefix, first_hooked_layer

    steered_needed = plan is not None and plan.n_edits > 0
    preds: dict[str, list[np.ndarray]] = {"baseline": [], "steered": []}
    if attacked_view is not None:
        preds.update({"baseline_attacked": [], "steered_attacked": []})
    task = progress.add_task("evaluation", total=len(sub)) if progress is not None else None
    from steerlang.pipeline.distributed import gather_rows, shard

    order = shard(np.arange(len(sub)))  # this rank's rows under torchrun, gathered below

    # The blocks before the first steered one run once per batch (steerlang/model/prefix.py).
    shared = SharedPrefix(handle, first_hooked_layer(plan) if steered_needed else None)

    def run(rows: np.ndarray, pixels: Any, prefix: str) -> None:
        l0: Any = None
        with torch.inference_mode():
            if baseline is not None:  # a grid point: the baseline is the first point's
                p0 = np.asarray(baseline[f"baseline{prefix}"])[rows]
                replay: Any = nullcontext()  # no unsteered forward ran to share a prefix with
            else:
                with shared.capture():
                    e0 = handle.encode_image(pixels)
                l0 = classifier.logits(e0)
                check_baseline_finite(handle, classifier, e0, l0)
                p0 = l0.argmax(-1).cpu().numpy().astype(np.int64)
                replay = shared.replay()
            if steered_needed:
                with steer(handle, plan, saes), replay:
                    e1 = handle.encode_image(pixels)
                l1 = classifier.logits(e1)
                # One reduction over [B, E] and [B, C] per batch: an argmax over NaN would
                # otherwise be reported as an accuracy (class 0 everywhere).
                if not (_finite(e1) and _finite(l1)):
                    what = "logits" if _finite(e1) else "image embeddings"
                    raise blame_non_finite(
                        handle,
                        plan,
                        saes,
                        lambda: classifier.logits(handle.encode_image(pixels)),
                        what=what,
                    )
                p1 = l1.argmax(-1).cpu().numpy().astype(np.int64)
            else:
                p1, l1 = p0, l0
        preds[f"baseline{prefix}"].append(p0)
        preds[f"steered{prefix}"].append(p1)
        if labels is not None and margins is not None:
            y = labels[rows]
            # A grid point reuses the first point's baseline predictions, not its logits.
            for key, lg in ((f"baseline{prefix}", l0), (f"steered{prefix}", l1)):
                m = np.full(len(y), np.nan) if lg is None else true_class_margin(lg, y)
                margins.setdefault(key, []).append(m)

    clean_iter = image_batches(sub, order, handle.preprocess, batch_size, device=device)
    att_iter = (
        image_batches(attacked_view, order, handle.preprocess, batch_size, device=device)
        if attacked_view is not None
        else None
    )
    for rows, pixels in clean_iter:
        run(rows, pixels, "")
        if att_iter is not None:
            _, apx = next(att_iter)
            run(rows, apx, "_attacked")
        if progress is not None and task is not None:
            progress.advance(task, len(rows))
    if margins is not None and margins:  # gathered like the predictions (torchrun)
        gathered = gather_rows({k: np.concatenate(v) for k, v in margins.items()})
        margins.clear()
        margins.update({k: [v] for k, v in gathered.items()})
    return gather_rows(
        {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in preds.items()}
    )


def true_class_margin(logits: Any, labels: np.ndarray) -> np.ndarray:
    """Per row: the true class's logit minus the largest other logit (float64 numpy)."""
    lg = logits.detach().double().cpu().numpy()
    if lg.shape[1] < 2:
        return np.full(len(lg), np.nan)
    y = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(lg))
    true = lg[rows, y]
    other = lg.copy()
    other[rows, y] = -np.inf
    return true - other.max(1)


def metric_intervals(
    preds: Mapping[str, np.ndarray],
    labels: np.ndarray,
    gids: np.ndarray | None,
    n_groups: int,
    *,
    seed: int,
) -> dict[str, Any]:
    """95% intervals of the metrics (steerlang/pipeline/uncertainty.py), and of the attacked
    copies' accuracy when there are attacked copies."""
    from steerlang.pipeline import metrics as M
    from steerlang.pipeline.uncertainty import intervals

    out = intervals(preds["baseline"], preds["steered"], labels, gids, n_groups, seed=seed)
    if "baseline_attacked" in preds:
        att = intervals(
            preds["baseline_attacked"], preds["steered_attacked"], labels, None, 0, seed=seed
        )
        out["attacked"] = {k: att[k] for k in ("baseline", "steered", "delta")}
    return M.metrics_dict(out)


def _finite(t: Any) -> bool:
    import torch

    return bool(torch.isfinite(t).all())


def check_baseline_finite(handle: Any, classifier: Classifier, emb: Any, logits: Any) -> None:
    """The unsteered model's embeddings and the classifier's logits must be finite: otherwise
    no steering is involved and the model (or the classifier) is what to fix."""
    model = getattr(handle, "ref", None) or "the model"
    if not _finite(emb):
        raise EvaluationError(
            f"the unsteered model `{model}` gives non-finite image embeddings (inf or NaN)",
            help="the model's weights hold inf or NaN, or its precision overflows (fp16); "
            "check the checkpoint, or run in float32",
        )
    if logits is not None and not _finite(logits):
        raise EvaluationError(
            f"the {classifier.kind} classifier gives non-finite logits (inf or NaN) on the "
            f"unsteered model `{model}`'s embeddings",
            help="the class embeddings hold inf or NaN: check the text tower's weights"
            if classifier.kind == "zero_shot"
            else "the probe's training diverged; check the probe split's embeddings",
        )


def with_label_indices(table: Any, label_column: str, labels: np.ndarray) -> Any:
    """A copy of `table` with the task's class indices in a `__label__` column (the attack
    draws a wrong word among the task's classes, whatever the label column holds)."""
    from steerlang.data.table import ImageTable

    data = {c: table.column(c).tolist() for c in table.columns}
    data["__label__"] = [int(v) for v in labels]
    return ImageTable(
        name=table.name,
        format=table.format,
        root=table.root,
        paths=table.paths,
        data=data,
        classes=None,
        meta={**table.meta, "label_column": "__label__"},
    )


def score(
    preds: Mapping[str, np.ndarray],
    labels: np.ndarray,
    gids: np.ndarray | None,
    groups: GroupSpec | None,
    attack_words: np.ndarray | None,
    *,
    attacked: bool,
) -> dict[str, Any]:
    """All task metrics for baseline and steered (numpy; the numbers in report.json)."""
    from steerlang.pipeline import metrics as M

    out: dict[str, Any] = {}
    for which in ("baseline", "steered"):
        p = preds[which]
        m: dict[str, Any] = {"accuracy": M.accuracy(p, labels), "n": int(len(labels))}
        if gids is not None and groups is not None:
            g = M.group_metrics(p, labels, gids, groups.n_groups, groups.train_counts)
            m.update(
                {
                    "per_group": g.per_group,
                    "group_counts": g.counts,
                    "worst_group": g.worst_group,
                    "worst_group_id": g.worst_group_id,
                    "average_plain": g.average_plain,
                    "average_adjusted": g.average_adjusted,
                    # False when a group has no images: worst_group (and the adjusted
                    # average) then cover only the groups present (report.empty_groups).
                    "worst_group_complete": g.complete,
                }
            )
        if attack_words is not None and not attacked:
            # The images themselves carry a written word (typographic datasets).
            valid = attack_words >= 0
            m["text_rate"] = (
                float(np.mean(p[valid] == attack_words[valid])) if valid.any() else math.nan
            )
        out[which] = m
    if attacked:
        att: dict[str, Any] = {}
        for which in ("baseline", "steered"):
            a = M.attack_metrics(preds[which], preds[f"{which}_attacked"], labels, attack_words)
            att[which] = a.to_dict()
        att["recovered"] = M.fraction_recovered(
            att["baseline"]["attacked"], att["steered"]["attacked"], att["baseline"]["clean"]
        )
        out["attack"] = att
    return M.metrics_dict(out)
