"""The language's constructs for controls and rank-relative selections, checked and lowered:

- the functions of expressions `abs(E)`, `min(A, B)`, `max(A, B)`, `log(E)`, `quantile(E, q)`
  and `rank(E)` (IR `Fn`; `max()` with no argument stays the statistic);
- per-feature targets: `clamp SEL to mean(c)` / `mean(not c)` / `mean()` / `max()` (IR: the
  action's value is a `Stat`);
- the seeded random control `random K features [where P]` (IR `RandomSelector`).

The expression checker (`expressions.py`) and the rule checker (`rules.py`) call in here; the
callers hand over their own sub-expression checker (`sub`), so this module imports neither
(no import circle). The runtime meaning is in `steerlang/pipeline/exprs.py` and
`steerlang/pipeline/selection.py`; docs/language.md §4.2, §4.3 and §5.3 document both.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from steerlang.lang import ast
from steerlang.lang.compiler.bounds import const, flatten
from steerlang.lang.compiler.state import CompileState
from steerlang.lang.compiler.values import TYPE_WORDS, fmt, type_phrase

Sub = Callable[[ast.Expr], tuple[dict | None, str]]

# Function name -> (fewest, most) arguments. `max` with no argument is the statistic `max()`.
FUNCTION_ARITY: dict[str, tuple[int, int]] = {
    "abs": (1, 1),
    "min": (2, 2),
    "max": (2, 2),
    "log": (1, 1),
    "quantile": (2, 2),
    "rank": (1, 1),
}
# Functions over the whole column of the site's features: meaningless over images.
COLUMN_FUNCTIONS = ("quantile", "rank")
# Statistics an action may take as a per-feature target.
TARGET_STATS = ("mean", "max")
# Actions that accept a per-feature target (`set` is spelled clamp in the IR).
TARGET_ACTIONS = ("clamp",)

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_USAGE = {
    "abs": "`abs(E)`",
    "min": "`min(A, B)`",
    "max": "`max()` (the statistic) or `max(A, B)`",
    "log": "`log(E)`",
    "quantile": "`quantile(E, q)` with q in [0, 1]",
    "rank": "`rank(E)`",
}


def is_function_call(e: ast.Call) -> bool:
    """`e` names a function of expressions (not a statistic)."""
    if e.func not in FUNCTION_ARITY:
        return False
    return not (e.func == "max" and not e.args)


def check_call(st: CompileState, e: ast.Call, sub: Sub, *, concept: bool = False) -> tuple:
    """A function call's IR and type; `concept` when it stands in a concept definition
    (over dataset columns, one row per image)."""
    fn = e.func
    lo, hi = FUNCTION_ARITY[fn]
    n = len(e.args)
    if not lo <= n <= hi:
        words = {1: "one argument", 2: "two arguments"}
        want = words[lo] if fn != "max" else "no arguments or two"
        st.emit(
            "E205",
            f"`{fn}` takes {want}, found {n}",
            e.span,
            label=f"{n} argument{'s' if n != 1 else ''}",
            help=f"write {_USAGE[fn]}",
        )
        for a in e.args:
            sub(a)
        return None, "?"
    if concept and fn in COLUMN_FUNCTIONS:
        st.emit(
            "E204",
            f"`{fn}` ranks features and cannot be used in a concept definition",
            e.func_span or e.span,
            label="concepts are defined image by image from dataset columns",
            help=f"use `{fn}(…)` in a rule predicate, e.g. `where rank(corr(water)) <= 10`",
        )
        for a in e.args:
            sub(a)
        return None, "?"
    irs: list[dict | None] = []
    types: list[str] = []
    ok = True
    for i, a in enumerate(e.args):
        ir, t = sub(a)
        irs.append(ir)
        types.append(t)
        allowed = ("num", "col", "?") if concept else ("num", "?")
        if t not in allowed:
            what = "the quantile level" if fn == "quantile" and i == 1 else "a number"
            st.emit(
                "E204",
                f"`{fn}` needs {what}, found {TYPE_WORDS.get(t, t)}",
                a.span,
                label="not a number",
                help=f"write {_USAGE[fn]}",
            )
            ok = False
        if ir is None:
            ok = False
    if fn == "log" and not _check_log(st, e.args[0]):
        ok = False
    if fn == "quantile" and not _check_level(st, e.args[1], types[1]):
        ok = False
    if not ok:
        return None, "?"
    t = "col" if "col" in types else "num"
    return {"kind": "fn", "fn": fn, "args": irs}, t


def _check_log(st: CompileState, a: ast.Expr) -> bool:
    """E220: `log` of a constant that is not positive."""
    c = const(st, a)
    if c is None or not isinstance(c[0], float) or c[0] > 0:
        return True
    value, pname = c
    st.emit(
        "E220",
        f"`log` of {fmt(value)}: the logarithm is defined for positive numbers only",
        a.span,
        label="not positive" if pname is None else f"`{pname}` is {fmt(value)}",
        help="take the log of a positive number; over features, values <= 0 give NaN "
        "(every comparison with NaN is false)",
    )
    return False


def _check_level(st: CompileState, a: ast.Expr, t: str) -> bool:
    """E221: the level q of `quantile(E, q)` must be a constant in [0, 1]."""
    if t == "?":
        return True
    c = const(st, a)
    if c is not None and isinstance(c[0], float) and 0.0 <= c[0] <= 1.0:
        return True
    if c is None or not isinstance(c[0], float):
        msg = "the level of `quantile` must be a constant number"
        label = "varies from feature to feature" if t == "num" else "not a number"
        notes: list[str] = []
    else:
        msg = f"quantile level {fmt(c[0])} is outside [0, 1]"
        label = "not in [0, 1]" if c[1] is None else f"`{c[1]}` is {fmt(c[0])}"
        notes = []
    st.emit(
        "E221",
        msg,
        a.span,
        label=label,
        help="write a level between 0 and 1, e.g. `quantile(corr(water), 0.99)` "
        "(a number or a numeric param)",
        notes=notes,
    )
    return False


# ------------------------------------------------------------------ per-feature targets


def check_target(st: CompileState, act: ast.Action, call: ast.Call, sub: Sub) -> dict | None:
    """`clamp SEL to mean(c)`: the action's value is a statistic, one value per feature."""
    op_word = act.word or act.op
    if act.op not in TARGET_ACTIONS:
        st.emit(
            "E222",
            f"`{op_word}` takes a number, not a per-feature statistic",
            call.span,
            label="a per-feature target",
            help="per-feature targets work with `clamp`/`set` only, e.g. "
            "`clamp SEL to mean(water)`",
        )
        return None
    if call.func not in TARGET_STATS:
        st.emit(
            "E222",
            f"`{call.func}(…)` cannot be a target value",
            call.func_span or call.span,
            label="not a per-feature target",
            help="clamp to `mean()`, `mean(c)`, `mean(not c)` or `max()`, or to a number",
        )
        return None
    ir, t = sub(call)
    if ir is None or t == "?":
        return None
    return ir


# ------------------------------------------------------------------ random control


def check_random(
    st: CompileState,
    sel: ast.RandomSel,
    unknown: Callable[[ast.Name], Any],
    sub: Sub,
    not_condition: Callable[[ast.Expr, str], None],
) -> dict:
    """`random K features [where P]`: K a whole number >= 1 or an int param (E204, E203);
    `unknown` reports a name that is not a param."""
    k_ir = feature_count(st, sel.k, "random", unknown)
    where = None
    if sel.where is not None:
        where, wt = sub(sel.where)
        if wt not in ("bool", "?"):
            not_condition(sel.where, wt)
    else:
        st.emit(
            "W323",
            "`random` draws from every feature, including features that never fire",
            sel.span,
            label="no `where` filter",
            help="draw from live features, e.g. `random K features where freq() > 0`, so the "
            "control edits features that can change the output",
        )
    return {"kind": "random", "k": k_ir, "where": where}


def feature_count(
    st: CompileState, k: ast.Expr, word: str, unknown: Callable[[ast.Name], Any]
) -> Any:
    """The K of `top K` / `bottom K` / `random K` (`word`): a whole number of at least 1, or an
    int param (its IR reference); None after an error. `unknown` reports a name that is not a
    param (E103 with a did-you-mean, or E204 for a concept or column)."""
    if isinstance(k, ast.Name):
        if k.name not in st.params:
            unknown(k)
            return None
        p = st.params[k.name]
        p.used = True
        if p.type == "?":
            return {"kind": "param", "name": k.name}
        if p.type != "int":
            st.emit(
                "E204",
                f"`{word}` needs a whole number, but `{k.name}` is {type_phrase(p.type)}",
                k.span,
                label=f"{type_phrase(p.type)} param",
                help=f"declare it as a whole number, e.g. `param {k.name} = 10`",
            )
            return None
        if p.value < 1:
            st.emit(
                "E203",
                f"`{word} {k.name}` selects no features",
                k.span,
                label=f"`{k.name}` is {p.value}",
                help=f"set `{k.name}` to at least 1",
            )
            return None
        return {"kind": "param", "name": k.name}
    if isinstance(k, ast.Num):
        if k.value < 1:
            example = "draw at least one feature, e.g. `random 10 features`"
            st.emit(
                "E203",
                f"`{word} {k.value}` selects no features",
                k.span,
                label="must be at least 1",
                help=example if word == "random" else "select at least one feature, e.g. `top 10`",
            )
            return None
        return int(k.value)
    return None


# ------------------------------------------------------------------ switched-off rules


def switched_off(st: CompileState, where: ast.Expr | None) -> bool:
    """A `where` with a conjunct that compares only constants (params and literals) and is
    false for the current params, e.g. `arm == "random"` while `arm` is "targeted": the rule
    selects nothing (the arm of an experiment that is not running)."""
    if where is None:
        return False
    for c in flatten(where, "and"):
        if isinstance(c, ast.Bool) and c.value is False:
            return True
        if isinstance(c, ast.Binary) and c.op in ast.COMPARE_OPS:
            a, b = const(st, c.left), const(st, c.right)
            if a is None or b is None or isinstance(a[0], str) != isinstance(b[0], str):
                continue
            if not _COMPARE[c.op](a[0], b[0]):
                return True
    return False
