"""Pass: rules (scope, selector, action), each checked and lowered to its IR dictionary.

A rule with a syntax error is skipped, but the names it uses still count as used.
"""

from __future__ import annotations

import math
from typing import Any

from steerlang.diagnostics import Edit
from steerlang.facts import model_has_cls
from steerlang.lang import ast, limits
from steerlang.lang.compiler import functions
from steerlang.lang.compiler.expressions import mark_used_in_broken, name_value, pred
from steerlang.lang.compiler.int_params import layer_param_out_of_range, resolve_item
from steerlang.lang.compiler.state import CompileState, ir_span
from steerlang.lang.compiler.values import TYPE_WORDS, literal, type_phrase
from steerlang.lang.spans import join


def check_rules(st: CompileState) -> None:
    for index, s in st.rules:
        if s.broken:
            mark_used_in_broken(st, s)
            continue
        r = _rule(st, index, s)
        if r is not None:
            st.rule_irs.append((index, s, r))


def int_items(st: CompileState, items: list[ast.IntItem], what: str = "layer") -> list[int]:
    out: list[int] = []
    seen: set[int] = set()
    resolved = [(item, resolve_item(st, item, what)) for item in items]
    present = [(item, it) for item, it in resolved if it is not None]
    if too_many_values(st, [it for _item, it in present], what):
        return out
    for item, it in present:
        if it.hi is not None and it.hi < it.lo:
            st.emit(
                "E210",
                f"range `{it.lo}..{it.hi}` is reversed",
                it.span,
                label="the start is after the end",
                help=f"write `{it.hi}..{it.lo}`",
                fix=Edit(it.span, f"{it.hi}..{it.lo}") if it.span else None,
            )
            continue
        top = it.lo if it.hi is None else it.hi
        if what == "layer" and st.n_layers is not None and top >= st.n_layers:
            if item.names():
                layer_param_out_of_range(st, item, top)
                continue
            last = st.n_layers - 1
            source = (
                f"`--layers {st.n_layers}`"
                if st.options.n_layers is not None
                else f"model `{st.model_ref}`"
            )
            msg = (
                f"layer {it.lo} is out of range"
                if it.hi is None
                else f"layer range `{it.lo}..{it.hi}` goes past the last layer"
            )
            st.emit(
                "E201",
                msg,
                it.span,
                label=f"{source} has {st.n_layers} layers",
                help=f"layers for this model are 0..{last}",
            )
            continue
        vals = it.values()
        dup = [v for v in vals if v in seen]
        if dup:
            st.emit(
                "W310",
                f"{what} {dup[0]} is listed twice",
                it.span,
                label="already listed",
                help="remove the repetition",
            )
        for v in vals:
            if v not in seen:
                seen.add(v)
                out.append(v)
    return out


def count_values(items: list[ast.IntItem]) -> int:
    """How many values a list of numbers and ranges names (repeats counted), without listing them."""
    return sum(1 if it.hi is None else max(0, it.hi - it.lo + 1) for it in items)


def too_many_values(st: CompileState, items: list[ast.IntItem], what: str) -> bool:
    """E116: a list of layers, token indices or feature ids naming more than
    `limits.MAX_RANGE_VALUES` values, or taking the recipe's lists together past that many
    (each value is listed in memory and in the IR, so a 40-character line may ask for a
    million; the total keeps the work linear in the recipe's length)."""
    n = count_values(items)
    total = st.listed_values + n
    if n <= limits.MAX_RANGE_VALUES and total <= limits.MAX_LISTED_VALUES:
        st.listed_values = total
        return False
    span = join(items[0].span, items[-1].span) if items else None
    alone = n > limits.MAX_RANGE_VALUES
    st.emit(
        "E116",
        f"this {what} list names {n:,} values"
        if alone
        else f"this {what} list takes the recipe's lists to {total:,} values",
        span,
        label=f"more than {limits.MAX_RANGE_VALUES:,}"
        if alone
        else f"more than {limits.MAX_LISTED_VALUES:,} for all lists together",
        help="select features with `features where …` or `top K features by …`"
        if what == "feature"
        else f"list at most {limits.MAX_RANGE_VALUES:,} values",
    )
    return True


def _given_twice(st: CompileState, what: str, span: Any, first: Any) -> None:
    st.emit(
        "E211",
        f"`{what}` is given twice",
        span,
        label=f"second `{what}`",
        help=f"keep one `{what}`",
        secondary=[(first, f"first `{what}`")],
    )


def _rule(st: CompileState, index: int, s: ast.RuleDecl) -> dict | None:
    """One rule's IR, or None when checking it reported an error."""
    loc = ("rules", index)
    errors_before = st.error_count()
    scope = _scope(st, loc, s.scope)
    st.span_map[loc] = s.span
    st.span_map[(*loc, "scope")] = s.scope.span
    act = s.action
    value_ir = _action_value(st, act) if act.value is not None else None
    sel_ir = _selector(st, act.selector)
    st.span_map[(*loc, "selector")] = act.selector.span
    st.span_map[(*loc, "action")] = act.span
    if st.error_count() > errors_before:
        return None
    return {
        "name": s.name.name if s.name else f"rule_{index + 1}",
        "index": index,
        "scope": scope,
        "action": {"op": act.op, "value": value_ir},
        "selector": sel_ir,
        "span": ir_span(s.span),
    }


def _scope(st: CompileState, loc: tuple, scope: ast.Scope) -> dict[str, Any]:
    """`at layer(s) N [site S] [tokens T]`: each modifier at most once (E211)."""
    layers = int_items(st, scope.layers)
    site: str | None = None
    tokens: Any = "all"
    seen_site = seen_tokens = None
    for m in scope.mods:
        if isinstance(m, ast.SiteMod):
            if seen_site is not None:
                _given_twice(st, "site", m.span, seen_site)
                continue
            seen_site = m.span
            site = m.site.name
            st.span_map[(*loc, "scope", "site")] = m.site.span
        else:
            if seen_tokens is not None:
                _given_twice(st, "tokens", m.span, seen_tokens)
                continue
            seen_tokens = m.span
            if m.kind is not None:
                tokens = m.kind.name
                st.span_map[(*loc, "scope", "tokens")] = m.kind.span
                if tokens == "cls" and model_has_cls(st.model_ref) is False:
                    st.emit(
                        "E214",
                        f"model `{st.model_ref}` has no CLS token",
                        m.kind.span,
                        label="its vision tower pools the patch tokens",
                        help="use `tokens patches` (every token of this model is a patch) or "
                        "token indices",
                    )
            else:
                tokens = int_items(st, m.indices or [], "token index")
                st.span_map[(*loc, "scope", "tokens")] = m.span
    out: dict[str, Any] = {"layers": layers, "tokens": tokens}
    if site is not None:
        out["site"] = site
    return out


def _selector(st: CompileState, sel: ast.Selector) -> dict:
    """`features where …`, `top K features by … [where …]` or `feature(s) N`."""
    if isinstance(sel, ast.WhereSel):
        w, t = pred(st, sel.where)
        if t not in ("bool", "?"):
            _not_condition(st, sel.where, t)
        return {"kind": "where", "where": w}
    if isinstance(sel, ast.TopSel):
        k_ir = functions.feature_count(st, sel.k, "top", lambda n: name_value(st, n))
        by, t = pred(st, sel.by)
        if t not in ("num", "?"):
            st.emit(
                "E204",
                f"`by` needs a number to rank features, found {TYPE_WORDS.get(t, t)}",
                sel.by.span,
                label="not a number",
                help="rank by a statistic, e.g. `by corr(water)`",
            )
        where = None
        if sel.where is not None:
            where, wt = pred(st, sel.where)
            if wt not in ("bool", "?"):
                _not_condition(st, sel.where, wt)
        return {"kind": "top", "k": k_ir, "by": by, "where": where, "order": sel.order}
    if isinstance(sel, ast.RandomSel):
        return functions.check_random(
            st,
            sel,
            lambda k: name_value(st, k),
            lambda x: pred(st, x),
            lambda x, t: _not_condition(st, x, t),
        )
    return {"kind": "ids", "ids": int_items(st, sel.items, "feature")}


def _not_condition(st: CompileState, e: ast.Expr, t: str) -> None:
    shown = st.text_of(e.span)
    st.emit(
        "E204",
        f"a `where` predicate must be a condition, found {TYPE_WORDS.get(t, t)}",
        e.span,
        label="not a true/false condition",
        help=f"compare it with a threshold, e.g. `{shown} > 0.3`"
        if t == "num"
        else "write a comparison such as `corr(water) > 0.3`",
    )


def _action_value(st: CompileState, act: ast.Action) -> dict | None:
    v = act.value
    assert v is not None
    if isinstance(v, ast.Call):
        return functions.check_target(st, act, v, lambda x: pred(st, x))
    if isinstance(v, ast.Name):
        if v.name not in st.params:
            name_value(st, v)
            return None
        p = st.params[v.name]
        p.used = True
        if p.type not in ("int", "float", "?"):
            st.emit(
                "E204",
                f"`{act.word}` needs a number, but `{v.name}` is {type_phrase(p.type)}",
                v.span,
                label=f"{type_phrase(p.type)} param",
                help="use a numeric param or a number",
            )
            return None
        return {"kind": "param", "name": v.name}
    lit = literal(v)
    if lit is None or lit[0] not in ("int", "float"):
        return None
    if not math.isfinite(float(lit[1])):
        st.emit("E204", "number is too large", v.span, label="not a finite number")
        return None
    return {"kind": "num", "value": float(lit[1])}


# ------------------------------------------------------------------ task
