"""Passes: lints, the warnings about recipes that compile but probably do not mean what they
say (unused names, rules that override each other)."""

from __future__ import annotations

from typing import Any

from steerlang.lang import ast
from steerlang.lang.compiler.bounds import bound, contradiction, flatten
from steerlang.lang.compiler.functions import switched_off
from steerlang.lang.compiler.int_params import item_values
from steerlang.lang.compiler.state import CompileState


def lint_unused(st: CompileState) -> None:
    """W301/W302 for params and concepts nothing uses. Usage is only complete when every
    statement resolved; otherwise a typo'd reference would cascade into an "unused" warning
    for the name it meant, so this runs only on a recipe without errors."""
    if any(d.is_error for d in st.diags):
        return
    for n, p in st.params.items():
        if not p.used and p.decl is not None:
            st.emit(
                "W301",
                f"param `{n}` is never used",
                p.span,
                label="declared here",
                help=f"use `{n}` in a rule or delete it",
            )
    for n, c in st.concepts.items():
        if not c.used and c.decl is not None:
            st.emit(
                "W302",
                f"concept `{n}` is never used",
                c.span,
                label="declared here",
                help=f"use it in a statistic such as `corr({n})` or delete it",
            )


def lint_overlaps(st: CompileState) -> None:
    """W303: a later rule that may override an earlier one on the same (layer, site) and
    features (skipped when the recipe has syntax errors).

    Each rule's selector facts are computed once, not once per pair: the pairwise
    disjointness test is the hot loop of a large recipe's check."""
    if st.syntax_errors:
        return
    # A rule switched off by its params (`where arm == "random"` while arm is "targeted")
    # selects nothing, so it overrides nothing (steerlang/lang/compiler/functions.py).
    rules = [r for r in st.rule_irs if not switched_off(st, where_of(r[1].action.selector))]
    facts = [_selector_facts(st, s) for _i, s, _r in rules]
    memo: dict[tuple, bool] = {}
    by_site: dict[tuple[int, str], list[int]] = {}
    for pos, (_i, _s, r) in enumerate(rules):
        site = r["scope"].get("site", "resid_post")
        overlaps: dict[int, int] = {}
        for layer in r["scope"]["layers"]:
            for other in by_site.get((layer, site), []):
                overlaps.setdefault(other, layer)
        reported = False
        for other, layer in overlaps.items():
            if reported:
                break
            if disjoint_facts(facts[other], facts[pos], memo):
                continue
            if same_edit(rules[other][2], r):
                continue  # overriding with the identical edit changes nothing
            _oi, os_, orr = rules[other]
            _ji, js, jr = rules[pos]
            span = next(
                (it.span for it in js.scope.layers if layer in item_values(st, it)),
                js.scope.span,
            )
            st.emit(
                "W303",
                f"rule `{jr['name']}` may override rule `{orr['name']}` on layer {layer} ({site})",
                span,
                label=f"`{orr['name']}` also acts on layer {layer}",
                help="make the selections disjoint or merge the rules",
                notes=[
                    "a later rule overrides an earlier one on the same (layer, site, "
                    "feature); `steer explain` shows the winner"
                ],
                secondary=[(os_.span, f"`{orr['name']}` defined here")] if os_.span else None,
            )
            reported = True
        for layer in r["scope"]["layers"]:
            by_site.setdefault((layer, site), []).append(pos)


def _selector_facts(
    st: CompileState, s: ast.RuleDecl
) -> tuple[set[int] | None, list | None, tuple]:
    """(feature ids of an id selector, bounds of the `where` conjuncts, the bounds as a
    hashable key) for one rule."""
    sel = s.action.selector
    if isinstance(sel, ast.IdsSel):
        return {v for it in sel.items for v in item_values(st, it)}, None, ()
    w = where_of(sel)
    if w is None:
        return None, None, ()
    bounds = [bound(st, c) for c in flatten(w, "and")]
    return None, bounds, tuple(b[:4] if b is not None else None for b in bounds)


def disjoint_facts(a: tuple, b: tuple, memo: dict[tuple, bool]) -> bool:
    """No feature can satisfy both selectors (facts from `_selector_facts`).

    Rules of a large recipe repeat a few condition shapes, so the verdict is memoised on the
    pair of bound lists (a bound's syntax node never changes the verdict)."""
    if a[0] is not None and b[0] is not None:
        return not (a[0] & b[0])
    if a[1] is None or b[1] is None:
        return False
    key = (a[2], b[2])
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = contradiction(a[1] + b[1]) is not None
    return hit


def same_edit(a: dict, b: dict) -> bool:
    """Two rules write the same edit (op, value, token scope) to any feature they share."""
    return a["action"] == b["action"] and a["scope"].get("tokens") == b["scope"].get("tokens")


def where_of(sel: Any) -> ast.Expr | None:
    if isinstance(sel, ast.WhereSel):
        return sel.where
    if isinstance(sel, ast.TopSel | ast.RandomSel):
        return sel.where
    return None
