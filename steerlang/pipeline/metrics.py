"""Task metrics (numpy only): accuracy, group metrics, typographic-attack metrics, recovery.

Conventions follow the datasets' reference code (group_DRO, WILDS) and the typographic-attack
papers:

- Groups combine several integer columns in mixed radix: for columns (c1, …, cn) with radices
  (r1, …, rn) the group id is ((c1·r2 + c2)·r3 + c3)…, so Waterbirds' (y, place) gives
  2·y + place and CelebA's (Blond_Hair, Male) gives 2·blond + male, as in group_DRO and WILDS.
  Radices must be the same for every split (pass them explicitly when a split may not contain
  a column's largest value).
- Two "average accuracy" conventions: *plain* (pooled over every evaluated image, what most
  CLIP zero-shot papers report) and *adjusted* (per-group accuracies weighted by the *train*
  group counts: group_DRO README, WILDS `adj_acc_avg`).
- A group with no evaluated images has no accuracy (NaN). Worst-group accuracy and the adjusted
  average are then taken over the groups that have images, and `GroupMetrics.empty` lists the
  missing ones so the report can mark those numbers incomplete: the worst group may be exactly
  the one that is missing (Waterbirds without waterbirds on land reads 0.74 where the full test
  split gives 0.50).

Every function takes predictions and labels as integer arrays and returns Python floats (NaN
where a value is undefined, e.g. an empty group or a zero denominator).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np


class _HasColumns(Protocol):
    def column(self, name: str) -> np.ndarray: ...


def _ints(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.bool_):
            return a.astype(np.int64)
        if np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)):
            return a.astype(np.int64)
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def _pair(pred: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _ints(pred, "pred"), _ints(y, "y")
    if p.shape != t.shape:
        raise ValueError(f"pred has {p.size} entries but y has {t.size}")
    return p, t


def accuracy(pred: Any, y: Any) -> float:
    """Fraction of predictions equal to the label (NaN for no samples)."""
    p, t = _pair(pred, y)
    return float(np.mean(p == t)) if p.size else math.nan


def group_ids(
    columns: Sequence[Any], radices: Sequence[int] | None = None
) -> tuple[np.ndarray, int]:
    """Mixed-radix group id per sample from integer columns, and the number of groups.

    `radices` default to max+1 of each column; pass them explicitly so every split numbers its
    groups the same way.
    """
    if not columns:
        raise ValueError("group_ids needs at least one column")
    cols = [_ints(c, f"group column {i}") for i, c in enumerate(columns)]
    n = cols[0].size
    if any(c.size != n for c in cols):
        raise ValueError("group columns must have the same length")
    if radices is None:
        radices = [int(c.max()) + 1 if c.size else 1 for c in cols]
    if len(radices) != len(cols):
        raise ValueError("one radix per group column")
    gid = np.zeros(n, dtype=np.int64)
    for i, (c, r) in enumerate(zip(cols, radices, strict=True)):
        if c.size and (c.min() < 0 or c.max() >= r):
            raise ValueError(f"group column {i} has values outside [0, {r})")
        gid = gid * int(r) + c
    return gid, int(np.prod([int(r) for r in radices]))


def table_group_ids(
    table: _HasColumns, names: Sequence[str], radices: Sequence[int] | None = None
) -> tuple[np.ndarray, int]:
    """`group_ids` over named columns of an `ImageTable` (e.g. ['y', 'place'])."""
    return group_ids([table.column(n) for n in names], radices)


def group_counts(groups: Any, n_groups: int) -> np.ndarray:
    g = _ints(groups, "groups")
    return np.bincount(g, minlength=n_groups)[:n_groups] if g.size else np.zeros(n_groups, np.int64)


def per_group_accuracy(pred: Any, y: Any, groups: Any, n_groups: int | None = None) -> np.ndarray:
    """Accuracy within each group id 0..n_groups-1 (NaN for a group without samples)."""
    p, t = _pair(pred, y)
    g = _ints(groups, "groups")
    if g.shape != p.shape:
        raise ValueError("groups must have one entry per prediction")
    if n_groups is None:
        n_groups = int(g.max()) + 1 if g.size else 0
    correct = np.bincount(g, weights=(p == t).astype(np.float64), minlength=n_groups)[:n_groups]
    counts = group_counts(g, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)


def adjusted_average_accuracy(
    pred: Any, y: Any, groups: Any, train_group_counts: Sequence[int] | np.ndarray
) -> float:
    """Per-group accuracies weighted by the train split's group counts (group_DRO, WILDS).

    Groups without evaluated samples are left out and the weights renormalised over the rest.
    """
    w = np.asarray(train_group_counts, dtype=np.float64)
    acc = per_group_accuracy(pred, y, groups, len(w))
    ok = ~np.isnan(acc) & (w > 0)
    if not ok.any():
        return math.nan
    return float(np.sum(acc[ok] * w[ok]) / np.sum(w[ok]))


@dataclass
class GroupMetrics:
    """Every group metric of one evaluation, in JSON-friendly form."""

    accuracy: float
    per_group: list[float]
    counts: list[int]
    worst_group: float
    worst_group_id: int | None
    average_plain: float
    average_adjusted: float | None = None
    train_counts: list[int] | None = None
    empty: list[int] = field(default_factory=list)  # group ids with no evaluated images

    @property
    def complete(self) -> bool:
        """Whether every group has evaluated images (else worst_group is over fewer groups)."""
        return not self.empty

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def group_metrics(
    pred: Any,
    y: Any,
    groups: Any,
    n_groups: int,
    train_group_counts: Sequence[int] | np.ndarray | None = None,
) -> GroupMetrics:
    acc = per_group_accuracy(pred, y, groups, n_groups)
    counts = group_counts(groups, n_groups)
    present = ~np.isnan(acc)
    worst_id = int(np.nanargmin(acc)) if present.any() else None
    adjusted = (
        adjusted_average_accuracy(pred, y, groups, train_group_counts)
        if train_group_counts is not None
        else None
    )
    return GroupMetrics(
        accuracy=accuracy(pred, y),
        per_group=[float(a) for a in acc],
        counts=[int(c) for c in counts],
        worst_group=float(acc[worst_id]) if worst_id is not None else math.nan,
        worst_group_id=worst_id,
        average_plain=accuracy(pred, y),
        average_adjusted=adjusted,
        train_counts=[int(c) for c in train_group_counts]
        if train_group_counts is not None
        else None,
        empty=[int(i) for i in np.flatnonzero(counts == 0)],
    )


# ------------------------------------------------------------------------------------------
# Typographic attacks
# ------------------------------------------------------------------------------------------


@dataclass
class AttackMetrics:
    """Accuracy on clean and attacked copies of the same images.

    `drop` = clean − attacked; `text_rate` = fraction of attacked predictions equal to the
    written word (how often the model reads instead of looking), when the words are known.
    """

    clean: float
    attacked: float
    drop: float
    text_rate: float | None = None
    n: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def attack_metrics(
    pred_clean: Any, pred_attacked: Any, y: Any, attack_labels: Any | None = None
) -> AttackMetrics:
    clean = accuracy(pred_clean, y)
    attacked = accuracy(pred_attacked, y)
    text_rate = None
    if attack_labels is not None:
        a = _ints(attack_labels, "attack_labels")
        p = _ints(pred_attacked, "pred_attacked")
        valid = a >= 0  # -1: the written word is not one of the classes
        text_rate = float(np.mean(p[valid] == a[valid])) if valid.any() else math.nan
    return AttackMetrics(
        clean=clean,
        attacked=attacked,
        drop=clean - attacked,
        text_rate=text_rate,
        n=int(np.asarray(y).size),
    )


def fraction_recovered(baseline_attacked: float, steered_attacked: float, clean: float) -> float:
    """Share of the accuracy an attack removed that steering gives back:
    (steered_attacked − baseline_attacked) / (clean − baseline_attacked), with `clean` the
    unsteered model's clean accuracy. NaN when the attack removed nothing."""
    denom = clean - baseline_attacked
    if denom == 0 or any(math.isnan(v) for v in (baseline_attacked, steered_attacked, clean)):
        return math.nan
    return (steered_attacked - baseline_attacked) / denom


def metrics_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe copy: NaN becomes None (JSON has no NaN)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v

    return clean(dict(values))
