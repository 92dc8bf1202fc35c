"""Thresholds on statistics: constant folding, `stat OP constant` bounds, and the checks built
on them (a threshold outside a statistic's range, contradicting conditions, disjoint rules)."""

from __future__ import annotations

import math
from typing import Any

from steerlang.lang import ast
from steerlang.lang.compiler.state import CompileState
from steerlang.lang.compiler.values import fmt
from steerlang.lang.known import STAT_FUNCTIONS

# How many arguments each statistic takes: (fewest, most).
STAT_ARITY: dict[str, tuple[int, int]] = {
    "corr": (1, 1),
    "mean": (0, 1),
    "freq": (0, 0),
    "max": (0, 0),
    "steerability": (0, 0),
    "promotes": (1, 1),
    "top_concept": (0, 0),
    "id": (0, 0),
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

# (statistic, column key, operator with the statistic on the left, constant, comparison node)
Bound = tuple[str, str, str, Any, ast.Binary]


def flatten(e: ast.Expr, op: str) -> list[ast.Expr]:
    """The operands of a chain of `op` (`and` or `or`)."""
    if isinstance(e, ast.Binary) and e.op == op:
        return flatten(e.left, op) + flatten(e.right, op)
    return [e]


def const(st: CompileState, e: ast.Expr) -> tuple[Any, str | None] | None:
    """(value, param name) of a constant numeric/string expression, else None."""
    if isinstance(e, ast.Num):
        return float(e.value), None
    if isinstance(e, ast.Str):
        return e.value, None
    if isinstance(e, ast.Name) and e.name in st.params:
        p = st.params[e.name]
        if p.type in ("int", "float"):
            return float(p.value), e.name
        if p.type == "str":
            return p.value, e.name
        return None
    if isinstance(e, ast.Unary) and e.op == "-":
        c = const(st, e.arg)
        if c is not None and isinstance(c[0], float):
            return -c[0], c[1]
        return None
    if isinstance(e, ast.Binary) and e.op in ("+", "-", "*", "/"):
        a, b = const(st, e.left), const(st, e.right)
        if a is None or b is None or not isinstance(a[0], float) or not isinstance(b[0], float):
            return None
        try:
            v = {"+": a[0] + b[0], "-": a[0] - b[0], "*": a[0] * b[0]}.get(e.op)
            if e.op == "/":
                v = a[0] / b[0]
        except ZeroDivisionError:
            return None
        return v, a[1] or b[1]
    return None


def _stat_of(st: CompileState, e: ast.Expr) -> tuple[str, str] | None:
    """(fn, column key) when `e` is a valid statistic call."""
    if not isinstance(e, ast.Call) or e.func not in STAT_FUNCTIONS:
        return None
    fn = e.func
    lo, hi = STAT_ARITY[fn]
    if not lo <= len(e.args) <= hi:
        return None
    if not e.args:
        return fn, fn
    a = e.args[0]
    if fn == "promotes":
        if isinstance(a, ast.Str):
            return fn, f"promotes:{a.value}"
        c = const(st, a)
        return (fn, f"promotes:{c[0]}") if c else None
    neg = ""
    if isinstance(a, ast.Unary) and a.op == "not":
        neg, a = "_not", a.arg
    if isinstance(a, ast.Name):
        return fn, f"{fn}{neg}:{a.name}"
    return None


def bound(st: CompileState, e: ast.Expr) -> Bound | None:
    """`stat OP const` (either order) as (fn, key, op, value, node)."""
    if not isinstance(e, ast.Binary) or e.op not in ast.COMPARE_OPS:
        return None
    for stat_side, const_side, op in ((e.left, e.right, e.op), (e.right, e.left, _FLIP[e.op])):
        s = _stat_of(st, stat_side)
        if s is None:
            continue
        c = const(st, const_side)
        if c is None:
            return None
        return s[0], s[1], op, c[0], e
    return None


def check_range(st: CompileState, e: ast.Binary) -> None:
    """E202 for a threshold outside the statistic's range; W304/W305 for a comparison that
    is always or never true."""
    from steerlang.plan import STAT_RANGES

    b = bound(st, e)
    if b is None:
        return
    fn, _key, op, value, _node = b
    rng = STAT_RANGES.get(fn)
    if rng is None or not isinstance(value, float):
        return
    lo, hi = rng
    stat_side = e.left if _stat_of(st, e.left) else e.right
    const_side = e.right if stat_side is e.left else e.left
    c = const(st, const_side)
    pname = c[1] if c else None
    notes = [f"`{pname}` is {fmt(value)}"] if pname else []
    rng_text = f"[{fmt(lo)}, {fmt(hi)}]" if math.isfinite(hi) else f"[{fmt(lo)}, ∞)"
    if value < lo or value > hi:
        st.emit(
            "E202",
            f"threshold {fmt(value)} is outside the range of `{fn}`, {rng_text}",
            const_side.span,
            label=f"`{fn}` is never {'above' if value > hi else 'below'} "
            f"{fmt(hi if value > hi else lo)}",
            help=f"use a threshold between {fmt(lo)} and "
            f"{fmt(hi) if math.isfinite(hi) else 'any larger value'}",
            notes=notes,
        )
        return
    always = (op == ">=" and value <= lo) or (op == "<=" and value >= hi)
    always = always or (op == ">" and value <= lo and lo != 0) or (op == "<" and value >= hi)
    never = (op == ">" and value >= hi) or (op == "<" and value <= lo)
    if always:
        st.emit(
            "W304",
            f"`{st.text_of(e.span)}` is always true",
            e.span,
            label=f"`{fn}` is always in {rng_text}",
            help="remove the comparison or pick a threshold inside the range",
            notes=notes,
        )
    elif never:
        st.emit(
            "W305",
            f"`{st.text_of(e.span)}` is never true",
            e.span,
            label=f"`{fn}` is always in {rng_text}",
            help="pick a threshold inside the range",
            notes=notes,
        )


def contradicting(st: CompileState, conjuncts: list[ast.Expr]) -> tuple[int, int] | None:
    """Index (j, i) of a conjunct j that contradicts an earlier conjunct i, if any."""
    return contradiction([bound(st, c) for c in conjuncts])


def check_contradiction(st: CompileState, conjuncts: list[ast.Expr]) -> None:
    """W306: two conditions joined by `and` that no feature can satisfy together."""
    hit = contradicting(st, conjuncts)
    if hit is None:
        return
    j, i = hit
    a, b = conjuncts[i], conjuncts[j]
    st.emit(
        "W306",
        f"`{st.text_of(b.span)}` contradicts `{st.text_of(a.span)}`",
        b.span,
        label="no feature can satisfy both",
        help="did you mean `or`?",
        secondary=[(a.span, "contradicted condition")] if a.span and i != j else None,
    )


def contradiction(bounds: list[Bound | None]) -> tuple[int, int] | None:
    """Index (j, i) of a bound j that contradicts an earlier bound i, if any (`None` entries
    are conjuncts that constrain no statistic). Each statistic's allowed interval (or string
    value) only narrows, in order."""
    from steerlang.plan import STAT_RANGES

    state: dict[str, list] = {}
    for j, b in enumerate(bounds):
        if b is None:
            continue
        fn, key, op, value, _ = b
        if isinstance(value, str):
            if op != "==":
                continue
            prev = state.get(key)
            if prev and prev[0] == "str" and prev[1] != value:
                return j, prev[2]
            state.setdefault(key, ["str", value, j])
            continue
        s = state.get(key)
        if s is None:
            rng = STAT_RANGES.get(fn)
            lo, hi = rng if rng else (-math.inf, math.inf)
            s = state[key] = ["num", lo, True, hi, True, []]
        if s[0] != "num":
            continue
        _, lo, lo_in, hi, hi_in, who = s
        if op in (">", ">="):
            if value > lo or (value == lo and op == ">"):
                lo, lo_in = value, op == ">="
        elif op in ("<", "<="):
            if value < hi or (value == hi and op == "<"):
                hi, hi_in = value, op == "<="
        elif op == "==":
            if value > lo or (value == lo):
                lo, lo_in = value, lo_in if value == lo else True
            if value < hi or value == hi:
                hi, hi_in = value, hi_in if value == hi else True
        else:
            continue
        who = [*who, j]
        state[key] = ["num", lo, lo_in, hi, hi_in, who]
        if lo > hi or (lo == hi and not (lo_in and hi_in)):
            earlier = [i for i in who if i != j]
            return j, earlier[-1] if earlier else j
    return None
