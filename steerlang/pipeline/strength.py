"""How strongly a rule selected each of its features: the order `steer explain --top` lists
them in and the order the report's feature cards come in.

- `top K by E`: the rule's own rank (E, then the lower id), as selected.
- `where P`: the margin by which a feature passes P. A comparison `L > R` (or `>=`) passes by
  L - R, `L < R` by R - L, `==` by -|L - R|, `!=` by |L - R|; `and` passes by its smallest
  margin, `or` by its largest, `not` by the negated margin. For the usual `stat > threshold`
  this is |statistic - threshold| for every selected feature; for the waterbirds rule
  `corr(water) > thr or corr(land) > thr` it is the distance past whichever threshold the
  feature crosses. Ties (and predicates with no numeric comparison) go to the lower id.
- `features [ids]`: the order the recipe lists them in.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from steerlang.pipeline.exprs import Evaluator, ExpressionError
from steerlang.plan import And, Compare, Not, Or, Rule, TopSelector, WhereSelector


def ranked(rule: Rule, selected: Sequence[int], ev: Evaluator | None, n: int) -> list[int]:
    """`selected`, strongest first by the rule's own statistic; `ev` evaluates the rule's
    expressions over its statistics table of `n` features (None: the rule reads none)."""
    if not isinstance(rule.selector, WhereSelector) or ev is None or not len(selected):
        return [int(f) for f in selected]
    ids = np.asarray(selected, dtype=np.int64)
    m = margin(rule, ev, n)[ids]
    m = np.where(np.isnan(m), -np.inf, m)
    return [int(f) for f in ids[np.lexsort((ids, -m))]]


def margin(rule: Rule, ev: Evaluator, n: int) -> np.ndarray:
    """Per feature, by how much it passes the rule's `where` predicate (NaN: not measurable)."""
    sel = rule.selector
    where = sel.where if isinstance(sel, WhereSelector | TopSelector) else None
    if where is None:
        return np.full(n, np.nan)

    def values(e: Any) -> np.ndarray | None:
        try:
            v = np.asarray(ev.values(e))
        except (ExpressionError, TypeError, ValueError):
            return None
        if v.dtype.kind not in "fiub":
            return None
        return np.broadcast_to(v.astype(np.float64), (n,))

    def walk(e: Any) -> np.ndarray:
        if isinstance(e, Compare):
            left, right = values(e.left), values(e.right)
            if left is None or right is None:
                return np.full(n, np.nan)
            d = left - right
            return {
                ">": d,
                ">=": d,
                "<": -d,
                "<=": -d,
                "==": -np.abs(d),
                "!=": np.abs(d),
            }[e.op]
        if isinstance(e, And | Or):
            parts = np.stack([walk(a) for a in e.args])
            with np.errstate(all="ignore"):
                return np.nanmin(parts, axis=0) if isinstance(e, And) else np.nanmax(parts, axis=0)
        if isinstance(e, Not):
            return -walk(e.arg)
        return np.full(n, np.nan)

    # nanmin/nanmax warn on features no comparison measures (all NaN): expected here.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return walk(where)
