"""Expressions: concept definitions (over dataset columns) and rule expressions (over params
and statistics), type-checked and lowered to IR dictionaries.

Each function returns (IR node or None, type); see `values.TYPE_WORDS` for the types. An
expression that already failed has type "?", which every check accepts silently, so one
mistake gives one diagnostic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from steerlang.diagnostics import Edit, SourceSpan
from steerlang.errors import did_you_mean
from steerlang.lang import ast, limits
from steerlang.lang.compiler import functions
from steerlang.lang.compiler.bounds import STAT_ARITY, check_contradiction, check_range, flatten
from steerlang.lang.compiler.state import CompileState
from steerlang.lang.compiler.values import TYPE_WORDS, literal_ir, param_type
from steerlang.lang.known import ATTACK_COLUMNS, STAT_FUNCTIONS
from steerlang.lang.lexer import KEYWORDS


def resolve_concepts(st: CompileState) -> None:
    """Pass: every concept definition, resolved lazily so concepts may refer to each other in
    any order."""
    for name in list(st.concepts):
        resolve_concept(st, name)


def resolve_concept(st: CompileState, name: str) -> dict | None:
    c = st.concepts[name]
    if c.state == "done":
        return c.ir
    if c.state == "busy":
        return None
    c.state = "busy"
    assert c.decl is not None
    if st.concept_depth >= limits.MAX_CONCEPT_DEPTH:
        # resolving is recursive: a chain of 10,000 concepts ran out of Python's stack (E499)
        c.state = "done"
        if st.concept_depth_reported:
            return None
        st.concept_depth_reported = True
        st.emit(
            "E118",
            f"concepts refer to concepts more than {limits.MAX_CONCEPT_DEPTH} levels deep",
            c.span,
            label=f"`{name}` is reached through {limits.MAX_CONCEPT_DEPTH} other concepts",
            help="define the concept from dataset columns directly",
        )
        return None
    st.concept_depth += 1
    try:
        ir, t = _concept_expr(st, c.decl.expr, name)
    finally:
        st.concept_depth -= 1
    if ir is not None and isinstance(ir, dict):
        # the IR writes used concepts out in full: `c2 = c1 and c1` doubles at every level,
        # `c2 = not c1` nests one deeper; every later pass and the runtime walk it whole
        size, depth = expanded_size(st, ir)
        st.concept_nodes += size
        problem = None
        if depth > ast.MAX_DEPTH:
            problem = f"more than {ast.MAX_DEPTH} levels deep"
        elif size > limits.MAX_CONCEPT_NODES:
            problem = f"more than {limits.MAX_CONCEPT_NODES:,} terms"
        elif st.concept_nodes > limits.MAX_CONCEPT_NODES * 10:
            problem = (
                f"all concepts together have more than {limits.MAX_CONCEPT_NODES * 10:,} terms"
            )
        if problem is not None:
            if not st.concept_size_reported:
                st.concept_size_reported = True
                st.emit(
                    "E118",
                    f"concept `{name}` is too large once the concepts it uses are written out",
                    c.decl.expr.span,
                    label=problem,
                    help="use fewer levels of concepts built from other concepts",
                )
            ir, t = None, "?"
    if t not in ("bool", "?"):
        e = c.decl.expr
        hint = ""
        if isinstance(e, ast.Name):
            hint = f"write a condition such as `{e.name} == 1`"
        st.emit(
            "E204",
            f"concept `{name}` must be a condition, found {TYPE_WORDS.get(t, t)}",
            e.span,
            label="expected a true/false condition",
            help=hint or "compare a column with a value, e.g. `place == 1`",
        )
        ir = None
    c.ir = ir
    c.state = "done"
    return ir


def expanded_size(st: CompileState, ir: Any) -> tuple[int, int]:
    """(nodes, depth) of an IR expression written out in full (a shared sub-tree counted once
    per use; nodes capped just past `limits.MAX_CONCEPT_NODES`). Memoised for the whole compile by
    node identity (the memo holds the nodes, so an identity is never reused), so sizing every
    concept costs time linear in the distinct nodes."""
    memo = st.ir_sizes
    stack: list[tuple[Any, bool]] = [(ir, False)]
    while stack:
        x, done = stack.pop()
        if id(x) in memo and not done:
            continue
        kids = []
        for v in x.values():
            if isinstance(v, dict):
                kids.append(v)
            elif isinstance(v, list):
                kids.extend(a for a in v if isinstance(a, dict))
        if done:
            size = min(limits.MAX_CONCEPT_NODES + 1, 1 + sum(memo[id(k)][1] for k in kids))
            depth = 1 + max((memo[id(k)][2] for k in kids), default=0)
            memo[id(x)] = (x, size, depth)
        else:
            stack.append((x, True))
            stack.extend((k, False) for k in kids if id(k) not in memo)
    return memo[id(ir)][1], memo[id(ir)][2]


def _concept_expr(st: CompileState, e: ast.Expr, owner: str) -> tuple[dict | None, str]:
    if isinstance(e, ast.Num | ast.Str | ast.Bool):
        return literal_ir(e)
    if isinstance(e, ast.Name):
        n = e.name
        if n in st.concepts:
            c = st.concepts[n]
            if c.state == "busy":
                st.emit(
                    "E204",
                    f"concept `{n}` refers to itself",
                    e.span,
                    label="used inside its own definition",
                    help="define the concept from dataset columns only",
                )
                return None, "?"
            c.used = True
            ir = resolve_concept(st, n)
            return ir, ("bool" if ir is not None else "?")
        if n in st.params:
            p = st.params[n]
            p.used = True
            return {"kind": "param", "name": n}, param_type(p.type)
        if check_column(st, n, e.span, "column"):
            return {"kind": "column", "name": n}, "col"
        return None, "?"
    if isinstance(e, ast.Call) and functions.is_function_call(e):
        return functions.check_call(st, e, lambda x: _concept_expr(st, x, owner), concept=True)
    if isinstance(e, ast.Call):
        st.emit(
            "E204",
            f"statistic `{e.func}()` cannot be used in a concept definition",
            e.span,
            label="concepts are defined from dataset columns",
            help="use statistics in rule predicates; define the concept from columns, "
            "e.g. `concept water = place == 1`",
        )
        return None, "?"
    if isinstance(e, ast.Unary):
        arg, t = _concept_expr(st, e.arg, owner)
        if e.op == "not":
            if t not in ("bool", "?"):
                _type_error(st, e.arg, t, "bool", "`not` needs a condition")
                return None, "?"
            return ({"kind": "not", "arg": arg} if arg else None), ("bool" if arg else "?")
        if t not in ("num", "col", "?"):
            _type_error(st, e.arg, t, "num", "`-` needs a number")
            return None, "?"
        if arg and arg.get("kind") == "num":
            return {"kind": "num", "value": -arg["value"]}, "num"
        return ({"kind": "neg", "arg": arg} if arg else None), (t if arg else "?")
    if isinstance(e, ast.Binary):
        return _binary(st, e, lambda x: _concept_expr(st, x, owner), concept=True)
    return None, "?"


def check_column(st: CompileState, name: str, span: SourceSpan | None, what: str) -> bool:
    if st.columns is None or name in st.columns:
        return True
    guess = did_you_mean(name, st.columns)
    hint = f"did you mean `{guess}`?" if guess else None
    if name in ATTACK_COLUMNS:
        hint = (
            f"`{name}` exists on attacked copies of the statistics images: add `set attack = "
            '"typographic"` and `set stats_images = "both"`'
        )
    st.emit(
        "E105",
        f"unknown column `{name}`",
        span,
        label=f"not a column of dataset `{st.dataset}`",
        help=hint,
        notes=[f"columns of `{st.dataset}`: " + ", ".join(st.columns)],
    )
    return False


# ------------------------------------------------------------------ expressions


def _type_error(st: CompileState, e: ast.Expr, found: str, want: str, label: str) -> None:
    if found == "?":
        return
    st.emit(
        "E204",
        f"expected {TYPE_WORDS[want]}, found {TYPE_WORDS.get(found, found)}",
        e.span,
        label=label,
    )


def _binary(st: CompileState, e: ast.Binary, sub: Callable, *, concept: bool = False) -> tuple:
    op = e.op
    if op in ("and", "or"):
        parts = flatten(e, op)
        irs = []
        ok = True
        for p in parts:
            ir, t = sub(p)
            if t not in ("bool", "?"):
                hint = (
                    f"compare it, e.g. `{st.text_of(p.span)} == 1`"
                    if t == "col"
                    else f"compare it with a threshold, e.g. `{st.text_of(p.span)} > 0.3`"
                    if t == "num"
                    else None
                )
                st.emit(
                    "E204",
                    f"`{op}` needs conditions, found {TYPE_WORDS.get(t, t)}",
                    p.span,
                    label="not a true/false condition",
                    help=hint,
                )
                ok = False
            if ir is None:
                ok = False
            irs.append(ir)
        if op == "and" and not concept:
            check_contradiction(st, parts)
        if not ok:
            return None, "?"
        return {"kind": op, "args": irs}, "bool"
    left, lt = sub(e.left)
    right, rt = sub(e.right)
    if op in ("+", "-", "*", "/"):
        bad = [(x, t) for x, t in ((e.left, lt), (e.right, rt)) if t not in ("num", "col", "?")]
        for x, t in bad:
            _type_error(st, x, t, "num", f"`{op}` needs numbers")
        if bad or left is None or right is None:
            return None, "?"
        return {"kind": "arith", "op": op, "left": left, "right": right}, "num"
    # comparison
    if left is None or right is None:
        return None, "bool" if (lt != "?" and rt != "?") else "?"
    ok = True
    if "col" in (lt, rt):
        pass
    elif lt != rt:
        st.emit(
            "E204",
            f"cannot compare {TYPE_WORDS.get(lt, lt)} with {TYPE_WORDS.get(rt, rt)}",
            e.op_span,
            label="cannot compare these",
            help='compare strings with strings (`top_concept() == "text"`) and numbers '
            "with numbers",
            secondary=[
                (e.left.span, TYPE_WORDS.get(lt, lt)),
                (e.right.span, TYPE_WORDS.get(rt, rt)),
            ]
            if e.left.span and e.right.span
            else None,
        )
        ok = False
    elif lt in ("str", "bool") and op not in ("==", "!="):
        st.emit(
            "E204",
            f"`{op}` compares numbers, found {TYPE_WORDS[lt]}s",
            e.op_span,
            label=f"{TYPE_WORDS[lt]}s can only be compared with `==` and `!=`",
            help="use `==` or `!=`",
        )
        ok = False
    if not ok:
        return None, "?"
    if not concept:
        check_range(st, e)
    return {"kind": "compare", "op": op, "left": left, "right": right}, "bool"


def pred(st: CompileState, e: ast.Expr) -> tuple[dict | None, str]:
    """Resolve a rule expression (predicate, `by` expression): names are params, calls
    are statistics."""
    if isinstance(e, ast.Num | ast.Str | ast.Bool):
        return literal_ir(e)
    if isinstance(e, ast.Name):
        return name_value(st, e)
    if isinstance(e, ast.Call):
        return _call(st, e)
    if isinstance(e, ast.Unary):
        arg, t = pred(st, e.arg)
        if e.op == "not":
            if t not in ("bool", "?"):
                _type_error(st, e.arg, t, "bool", "`not` needs a condition")
                return None, "?"
            return ({"kind": "not", "arg": arg} if arg else None), ("bool" if arg else "?")
        if t not in ("num", "?"):
            _type_error(st, e.arg, t, "num", "`-` needs a number")
            return None, "?"
        if arg is None:
            return None, "?"
        if arg.get("kind") == "num":
            return {"kind": "num", "value": -arg["value"]}, "num"
        return {"kind": "neg", "arg": arg}, "num"
    if isinstance(e, ast.Binary):
        return _binary(st, e, lambda x: pred(st, x))
    return None, "?"


def name_value(st: CompileState, e: ast.Name) -> tuple[dict | None, str]:
    n = e.name
    if n in st.params:
        p = st.params[n]
        p.used = True
        return {"kind": "param", "name": n}, param_type(p.type)
    if n in st.concepts:
        st.concepts[n].used = True
        st.emit(
            "E204",
            f"concept `{n}` is not a value",
            e.span,
            label="concepts are used through statistics",
            help=f"use a statistic of the concept, e.g. `corr({n}) > 0.3`",
        )
        return None, "?"
    if st.columns is not None and n in st.columns:
        st.emit(
            "E204",
            f"column `{n}` can only be used in a concept definition",
            e.span,
            label="dataset columns are not per-feature values",
            help=f"declare `concept NAME = {n} == 1` and use `corr(NAME)`",
        )
        return None, "?"
    guess = did_you_mean(n, list(st.params) + list(st.concepts))
    if guess in st.concepts:
        help_ = f"did you mean `corr({guess})`?"
    elif guess:
        help_ = f"did you mean `{guess}`?"
    else:
        help_ = f"declare it with `param {n} = …`"
    fix = None
    if guess in st.params and e.span is not None:
        fix = Edit(e.span, guess)
    if n in KEYWORDS:
        help_, fix = f"`{n}` is a reserved word; it cannot name a param", None
    st.emit(
        "E103",
        f"unknown name `{n}`",
        e.span,
        label="not a declared param",
        help=help_,
        fix=fix,
    )
    return None, "?"


def _call(st: CompileState, e: ast.Call) -> tuple[dict | None, str]:
    fn = e.func
    if functions.is_function_call(e):
        return functions.check_call(st, e, lambda x: pred(st, x))
    if fn not in STAT_FUNCTIONS:
        known = [*STAT_FUNCTIONS, *(f for f in functions.FUNCTION_ARITY if f not in STAT_FUNCTIONS)]
        guess = None if fn in KEYWORDS else did_you_mean(fn, known)
        st.emit(
            "E102",
            f"unknown function `{fn}`",
            e.func_span,
            label="not a statistic",
            help=f"did you mean `{guess}`?"
            if guess
            else f"`{fn}` is a reserved word, not a function"
            if fn in KEYWORDS
            else "statistics are "
            + ", ".join(f"`{f}`" for f in STAT_FUNCTIONS)
            + "; functions are "
            + ", ".join(f"`{f}`" for f in functions.FUNCTION_ARITY),
            fix=Edit(e.func_span, guess) if guess and e.func_span else None,
        )
        for a in e.args:  # still resolve arguments so their names count as used
            touch(st, a)
        return None, "?"
    lo, hi = STAT_ARITY[fn]
    n = len(e.args)
    if not lo <= n <= hi:
        want = {
            (1, 1): "one argument",
            (0, 1): "at most one argument",
            (0, 0): "no arguments",
        }[(lo, hi)]
        st.emit(
            "E205",
            f"`{fn}` takes {want}, found {n}",
            e.span,
            label=f"{n} argument{'s' if n != 1 else ''}",
            help=_call_help(fn, st.concepts),
        )
        for a in e.args:
            touch(st, a)
        return None, "?"
    t = "str" if fn == "top_concept" else "num"
    if fn in ("corr", "mean"):
        if n == 0:
            return {"kind": "stat", "fn": fn}, t
        a = e.args[0]
        negated = False
        if isinstance(a, ast.Unary) and a.op == "not":
            negated = True
            a = a.arg
        concept = _concept_arg(st, fn, a)
        if concept is None:
            return None, "?"
        return {"kind": "stat", "fn": fn, "concept": concept, "negated": negated}, t
    if fn == "promotes":
        a = e.args[0]
        word = None
        if isinstance(a, ast.Str):
            word = a.value
        elif isinstance(a, ast.Name) and a.name in st.params:
            p = st.params[a.name]
            p.used = True
            if p.type == "str":
                word = p.value
            elif p.type == "?":
                return None, "?"
        if word is None:
            shown = st.text_of(a.span) or "…"
            st.emit(
                "E206",
                "`promotes` takes a word as a string",
                a.span,
                label="not a string",
                help=f'write `promotes("{shown.strip(chr(34))}")`',
                fix=Edit(a.span, f'"{shown}"') if isinstance(a, ast.Name) and a.span else None,
            )
            return None, "?"
        return {"kind": "stat", "fn": fn, "word": word}, t
    return {"kind": "stat", "fn": fn}, t


def _concept_arg(st: CompileState, fn: str, a: ast.Expr) -> str | None:
    if not isinstance(a, ast.Name):
        what = "a concept or `not CONCEPT`"
        st.emit(
            "E206",
            f"`{fn}` takes a concept name",
            a.span,
            label="not a concept name",
            help=f"pass {what} declared with `concept NAME = …`",
        )
        touch(st, a)
        return None
    n = a.name
    if n in st.concepts:
        st.concepts[n].used = True
        return n
    if n in st.params:
        st.params[n].used = True
        st.emit(
            "E206",
            f"`{fn}` takes a concept, but `{n}` is a param",
            a.span,
            label="a param, not a concept",
            help="pass a concept declared with `concept NAME = …`",
        )
        return None
    guess = did_you_mean(n, list(st.concepts))
    notes = []
    if st.concepts:
        notes.append("declared concepts: " + ", ".join(f"`{c}`" for c in st.concepts))
    if st.columns is not None and n in st.columns:
        help_ = f"declare it first, e.g. `concept {n.lower()} = {n} == 1`"
    elif guess:
        help_ = f"did you mean `{guess}`?"
    else:
        help_ = f"declare it with `concept {n} = <condition over dataset columns>`"
    st.emit(
        "E101",
        f"unknown concept `{n}`",
        a.span,
        label="not a known concept",
        help=help_,
        notes=notes,
        fix=Edit(a.span, guess)
        if guess and a.span and not (st.columns and n in st.columns)
        else None,
    )
    return None


def touch(st: CompileState, e: ast.Expr) -> None:
    """Mark names in an expression as used without reporting anything (error paths)."""
    for sub in ast.walk(e):
        if isinstance(sub, ast.Name):
            if sub.name in st.params:
                st.params[sub.name].used = True
            if sub.name in st.concepts:
                st.concepts[sub.name].used = True


def mark_used_in_broken(st: CompileState, s: ast.Stmt) -> None:
    for e in ast.stmt_exprs(s):
        touch(st, e)


# ------------------------------------------------------------------ constants and ranges


def _call_help(fn: str, concepts: dict) -> str:
    example = next(iter(concepts), "water")
    return {
        "corr": f"write `corr({example})`",
        "mean": f"write `mean()`, `mean({example})` or `mean(not {example})`",
        "promotes": 'write `promotes("word")`',
    }.get(fn, f"write `{fn}()`")
