"""Passes: lints, the warnings about recipes that compile but probably do not mean what they
say (unused names, rules that override each other)."""

from __future__ import annotations

import json
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


class _First:
    """The earliest rules of a group (in recipe order): the first, and the first whose edit
    differs from the first's. The earliest rule of the group whose edit differs from any given
    edit is one of these two, so a group answers in O(1)."""

    __slots__ = ("diff", "edit", "pos")

    def __init__(self, pos: int, edit: str) -> None:
        self.pos, self.edit, self.diff = pos, edit, None

    def add(self, pos: int, edit: str) -> None:
        if self.diff is None and edit != self.edit:
            self.diff = pos

    def conflict(self, edit: str) -> int | None:
        """The earliest rule of the group with an edit other than `edit`."""
        return self.pos if self.edit != edit else self.diff


def _note(groups: dict, key: Any, pos: int, edit: str) -> None:
    g = groups.get(key)
    if g is None:
        groups[key] = _First(pos, edit)
    else:
        g.add(pos, edit)


class _Site:
    """The earlier rules acting on one (layer, site), grouped so that a new rule finds the
    earliest one it may override without a pass over all of them: rules that select ids by
    feature id, rules with `where` bounds by their bounds, the rest ("plain") in one group."""

    def __init__(self) -> None:
        self.by_id: dict[int, _First] = {}
        self.any_ids: dict[int, _First] = {}  # one key (0): every id rule
        self.plain: dict[int, _First] = {}
        self.any_where: dict[int, _First] = {}
        self.where: dict[tuple, _First] = {}
        self.where_facts: dict[tuple, tuple] = {}
        # bounds groups by the edit of their first rule, and those holding two edits: a new
        # rule only meets groups with an edit other than its own, so a recipe of many
        # thresholds and one action compares nothing
        self.where_by_edit: dict[str, list[tuple]] = {}
        self.where_mixed: list[tuple] = []

    def first_conflict(self, f: tuple, edit: str, memo: dict[tuple, bool]) -> int | None:
        found: list[int | None] = [g.conflict(edit) for g in self.plain.values()]
        if f[0] is not None:  # ids: other id rules sharing an id, every where rule
            found += [self.by_id[i].conflict(edit) for i in f[0] if i in self.by_id]
            found += [g.conflict(edit) for g in self.any_where.values()]
        else:
            found += [g.conflict(edit) for g in self.any_ids.values()]
            if f[1] is None:
                found += [g.conflict(edit) for g in self.any_where.values()]
            else:
                keys = [k for e, ks in self.where_by_edit.items() if e != edit for k in ks]
                keys += [k for k in self.where_mixed if self.where[k].edit == edit]
                for key in keys:
                    if not disjoint_facts(self.where_facts[key], f, memo):
                        found.append(self.where[key].conflict(edit))
        hits = [p for p in found if p is not None]
        return min(hits) if hits else None

    def add(self, f: tuple, pos: int, edit: str) -> None:
        if f[0] is not None:
            for i in f[0]:
                _note(self.by_id, i, pos, edit)
            _note(self.any_ids, 0, pos, edit)
        elif f[1] is None:
            _note(self.plain, 0, pos, edit)
        else:
            _note(self.any_where, 0, pos, edit)
            g = self.where.get(f[2])
            if g is None:
                self.where[f[2]] = _First(pos, edit)
                self.where_by_edit.setdefault(edit, []).append(f[2])
                self.where_facts[f[2]] = f
            elif g.diff is None:
                g.add(pos, edit)
                if g.diff is not None:
                    self.where_mixed.append(f[2])


def _edit_key(r: dict) -> str:
    """Equal for two rules exactly when `same_edit` holds."""
    return json.dumps([r["action"], r["scope"].get("tokens")], sort_keys=True, default=str)


def lint_overlaps(st: CompileState) -> None:
    """W303: a later rule that may override an earlier one on the same (layer, site) and
    features (skipped when the recipe has syntax errors).

    Each rule's selector facts are computed once. Earlier rules are indexed per (layer, site)
    by feature id and by `where` bounds (`_Site`), so a rule is compared with the groups it
    may meet, not with every earlier rule: 50,000 rules on one layer check in linear time
    (a pairwise loop took minutes). Reports the same rule a pairwise scan in recipe order
    would: per layer of the new rule, in order, the earliest overlapping earlier rule with a
    different edit."""
    if st.syntax_errors:
        return
    # A rule switched off by its params (`where arm == "random"` while arm is "targeted")
    # selects nothing, so it overrides nothing (steerlang/lang/compiler/functions.py).
    rules = [r for r in st.rule_irs if not switched_off(st, where_of(r[1].action.selector))]
    facts = [_selector_facts(st, s) for _i, s, _r in rules]
    memo: dict[tuple, bool] = {}
    sites: dict[tuple[int, str], _Site] = {}
    last: dict[tuple[int, str], int] = {}  # the last rule acting on each (layer, site)
    for pos, (_i, _s, r) in enumerate(rules):
        for layer in r["scope"]["layers"]:
            last[(layer, r["scope"].get("site", "resid_post"))] = pos
    for pos, (_i, _s, r) in enumerate(rules):
        site = r["scope"].get("site", "resid_post")
        edit = _edit_key(r)
        for layer in r["scope"]["layers"]:
            here = sites.get((layer, site))
            other = here.first_conflict(facts[pos], edit, memo) if here is not None else None
            if other is None:
                continue
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
            break
        for layer in r["scope"]["layers"]:
            if last[(layer, site)] > pos:  # only a later rule at this site looks it up
                sites.setdefault((layer, site), _Site()).add(facts[pos], pos, edit)


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
