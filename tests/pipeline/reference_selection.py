"""A test oracle for the rule engine: selection re-stated one feature at a time in plain Python.

It shares no code with `steerlang.pipeline.exprs` or `steerlang.pipeline.selection` (only the
IR types), so the property tests in test_selection.py compare two independent statements of
the semantics in docs/running.md ("Selection semantics"): IEEE comparisons and division, `top K`
ties by the lower feature id, NaN scores never ranked, and later rules winning in file order.
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


def reference_eval(e: Any, row: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Evaluate `e` for one feature whose statistics are `row` (stat key -> value)."""
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
        a, b = reference_eval(e.left, row, params), reference_eval(e.right, row, params)
        return bool(_CMP[e.op](a, b))
    if isinstance(e, Arith):
        a = float(reference_eval(e.left, row, params))
        b = float(reference_eval(e.right, row, params))
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        return ieee_div(a, b)
    if isinstance(e, Neg):
        return -float(reference_eval(e.arg, row, params))
    if isinstance(e, And):
        out = True
        for a in e.args:  # no short-circuit: every operand is evaluated, as in the engine
            out = bool(reference_eval(a, row, params)) and out
        return out
    if isinstance(e, Or):
        out = False
        for a in e.args:
            out = bool(reference_eval(a, row, params)) or out
        return out
    if isinstance(e, Not):
        return not bool(reference_eval(e.arg, row, params))
    raise AssertionError(f"the oracle cannot evaluate {e!r}")


def reference_select(rule: Rule, table: StatsTable, params: Mapping[str, Any]) -> list[int]:
    """The features a rule selects, computed one feature at a time (slow, obviously right)."""
    sel = rule.selector
    if isinstance(sel, IdsSelector):
        return list(dict.fromkeys(sel.ids))
    rows = _rows(table)
    if isinstance(sel, WhereSelector):
        return [f for f, row in enumerate(rows) if reference_eval(sel.where, row, params)]
    assert isinstance(sel, TopSelector)
    k = int(_param(params, sel.k.name) if isinstance(sel.k, ParamRef) else sel.k)
    scored: list[tuple[float, int]] = []
    for f, row in enumerate(rows):
        if sel.where is not None and not reference_eval(sel.where, row, params):
            continue
        s = float(reference_eval(sel.by, row, params))
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
