"""A test oracle for the rule engine: selection re-stated one feature at a time in plain Python.

It shares no code with `steerlang.pipeline.exprs` or `steerlang.pipeline.selection` (only the
IR types), so the property tests in test_selection.py compare two independent statements of
the semantics in docs/running.md ("Selection semantics"): IEEE comparisons and division, `top K`
ties by the lower feature id, NaN scores never ranked, and later rules winning in file order;
the functions of docs/language.md §5.5 (`rank` and `quantile` from their definitions over the
whole column, which the oracle gets through `rows`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from steerlang.pipeline.stats_table import StatsTable
from steerlang.plan import (
    And,
    Arith,
    Bool,
    Compare,
    Fn,
    IdsSelector,
    Neg,
    Not,
    Num,
    Or,
    ParamRef,
    RecipeIR,
    Rule,
    Stat,
    Str,
    TopSelector,
    WhereSelector,
    stat_key,
)

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _param(params: Mapping[str, Any], name: str) -> Any:
    v = params[name]
    return getattr(v, "value", v)


def ieee_div(a: float, b: float) -> float:
    """Python division with IEEE semantics (x/0 = +-inf, 0/0 = NaN, no ZeroDivisionError)."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _reference_fn(
    e: Fn, row: Mapping[str, Any], params: Mapping[str, Any], rows: list[dict[str, Any]] | None
) -> float:
    """A function of docs/language.md §5.5, for one feature, from its definition."""
    if e.fn in ("rank", "quantile"):
        assert rows is not None, "rank/quantile need the whole column"
        col = [float(reference_eval(e.args[0], r, params, rows)) for r in rows]
        if e.fn == "rank":
            f = int(row["id"])
            v = col[f]
            if math.isnan(v):
                return math.nan
            above = sum(
                1 for g, w in enumerate(col) if not math.isnan(w) and (w > v or (w == v and g < f))
            )
            return float(above + 1)
        q = float(reference_eval(e.args[1], row, params, rows))
        xs = sorted(w for w in col if not math.isnan(w))
        if not xs:
            return math.nan
        h = (len(xs) - 1) * q  # linear interpolation between order statistics
        lo = math.floor(h)
        hi = min(lo + 1, len(xs) - 1)
        t, a0, b0 = h - lo, xs[lo], xs[hi]
        if a0 == b0:
            return a0
        # the float formula of numpy's linear method: from the nearer end, so q = 1 is exact
        return b0 - (b0 - a0) * (1 - t) if t >= 0.5 else a0 + (b0 - a0) * t
    a = [float(reference_eval(x, row, params, rows)) for x in e.args]
    if e.fn == "abs":
        return abs(a[0])
    if e.fn in ("min", "max"):
        if math.isnan(a[0]) or math.isnan(a[1]):
            return math.nan
        return min(a) if e.fn == "min" else max(a)
    assert e.fn == "log"
    return math.log(a[0]) if a[0] > 0 else math.nan


def reference_eval(
    e: Any,
    row: Mapping[str, Any],
    params: Mapping[str, Any],
    rows: list[dict[str, Any]] | None = None,
) -> Any:
    """Evaluate `e` for one feature whose statistics are `row` (stat key -> value); `rows`
    (every feature's row) is needed by `rank` and `quantile`."""
    if isinstance(e, Fn):
        return _reference_fn(e, row, params, rows)
    if isinstance(e, Num):
        return float(e.value)
    if isinstance(e, Str | Bool):
        return e.value
    if isinstance(e, ParamRef):
        v = _param(params, e.name)
        return v if isinstance(v, str | bool) else float(v)
    if isinstance(e, Stat):
        v = row[stat_key(e)]
        return v if isinstance(v, str) else float(v)
    if isinstance(e, Compare):
        a, b = reference_eval(e.left, row, params, rows), reference_eval(e.right, row, params, rows)
        return bool(_CMP[e.op](a, b))
    if isinstance(e, Arith):
        a = float(reference_eval(e.left, row, params, rows))
        b = float(reference_eval(e.right, row, params, rows))
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        return ieee_div(a, b)
    if isinstance(e, Neg):
        return -float(reference_eval(e.arg, row, params, rows))
    if isinstance(e, And):
        out = True
        for a in e.args:  # no short-circuit: every operand is evaluated, as in the engine
            out = bool(reference_eval(a, row, params, rows)) and out
        return out
    if isinstance(e, Or):
        out = False
        for a in e.args:
            out = bool(reference_eval(a, row, params, rows)) or out
        return out
    if isinstance(e, Not):
        return not bool(reference_eval(e.arg, row, params, rows))
    raise AssertionError(f"the oracle cannot evaluate {e!r}")


def reference_select(rule: Rule, table: StatsTable, params: Mapping[str, Any]) -> list[int]:
    """The features a rule selects, computed one feature at a time (slow, obviously right)."""
    sel = rule.selector
    if isinstance(sel, IdsSelector):
        return list(dict.fromkeys(sel.ids))
    rows = list(_rows(table))
    if isinstance(sel, WhereSelector):
        return [f for f, row in enumerate(rows) if reference_eval(sel.where, row, params, rows)]
    assert isinstance(sel, TopSelector)
    k = int(_param(params, sel.k.name) if isinstance(sel.k, ParamRef) else sel.k)
    scored: list[tuple[float, int]] = []
    for f, row in enumerate(rows):
        if sel.where is not None and not reference_eval(sel.where, row, params, rows):
            continue
        s = float(reference_eval(sel.by, row, params, rows))
        if math.isnan(s):
            continue
        scored.append((-s if sel.order == "desc" else s, f))
    scored.sort()
    return [f for _, f in scored[:k]]


def _rows(table: StatsTable) -> Iterator[dict[str, Any]]:
    names = list(table.columns)
    cols = [table.columns[n] for n in names]
    for f in range(table.n_features):
        yield {n: c[f] for n, c in zip(names, cols, strict=True)}


def reference_plan_edits(
    ir: RecipeIR, table_for: Callable[[int, str, Any], StatsTable]
) -> dict[tuple[int, str, int], str]:
    """(layer, site, feature) -> winning rule name, by applying rules one by one in file
    order with the reference evaluator."""
    out: dict[tuple[int, str, int], str] = {}
    for rule in sorted(ir.rules, key=lambda r: r.index):
        for layer in rule.scope.layers:
            table = table_for(layer, rule.scope.site, rule.scope.tokens)
            for f in reference_select(rule, table, ir.params):
                out[(layer, rule.scope.site, f)] = rule.name
    return out
