"""The rule engine: from a RecipeIR and per-site statistics tables to an InterventionPlan.

Why vectorised: a real SAE has ~50k features per site and a recipe may name many sites, so
each predicate is evaluated once per site as numpy array operations over whole statistics
columns rather than feature by feature. `reference_select` is a deliberately naive per-feature
evaluator of the same semantics; tests check the two agree on random tables and predicates.

Semantics shared by both evaluators (documented in docs/running.md):
- comparisons follow IEEE: anything compared with NaN is false (so `not (x > t)` is true);
- division follows IEEE (x/0 = +-inf, 0/0 = NaN), never an exception;
- `top K by E [where P]` ranks the candidates satisfying P by E (descending, or ascending for
  `bottom`), breaking ties by the lower feature id; features whose E is NaN are never ranked;
- rules apply in file order; a later rule replaces an earlier rule's edit on the same
  (layer, site, feature) and the replacement is recorded as an `Override`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from steerlang.errors import SteerError
from steerlang.facts import SITE_KINDS
from steerlang.pipeline.statistics import StatisticsError, StatsTable, tokens_key
from steerlang.plan import (
    And,
    Arith,
    Bool,
    Column,
    Compare,
    FeatureEdit,
    IdsSelector,
    InterventionPlan,
    Neg,
    Not,
    Num,
    Or,
    Override,
    ParamRef,
    RecipeIR,
    Rule,
    SitePlan,
    Stat,
    Str,
    TopSelector,
    WhereSelector,
    stat_key,
)

log = logging.getLogger("steerlang.selection")

NEAR_MISS_EPS = 0.05


class SelectionError(SteerError):
    """A rule cannot be evaluated (bad feature id, missing statistic, ill-typed predicate)."""


# ------------------------------------------------------------------------------------------
# Expression helpers
# ------------------------------------------------------------------------------------------


def param_value(params: Mapping[str, Any], name: str) -> Any:
    """The value of a recipe param; `params` maps names to ParamDef or to raw values."""
    if name not in params:
        raise SelectionError(
            f"param `{name}` has no value",
            help=f"declare `param {name} = ...` in the recipe or pass --param {name}=VALUE",
        )
    v = params[name]
    return v.value if hasattr(v, "value") and hasattr(v, "type") else v


_NOT_LEAF = object()


def leaf_value(e: Any, params: Mapping[str, Any]) -> Any:
    """A literal's or param's value, or `_NOT_LEAF` for anything else.

    Literals and params mean the same in every evaluator (vectorised, concept, reference);
    one definition keeps them from drifting apart.
    """
    if isinstance(e, Num):
        return float(e.value)
    if isinstance(e, Str):
        return e.value
    if isinstance(e, Bool):
        return bool(e.value)
    if isinstance(e, ParamRef):
        v = param_value(params, e.name)
        return v if isinstance(v, str | bool) else float(v)
    return _NOT_LEAF


def ieee_div(a: float, b: float) -> float:
    """Python division with numpy's IEEE semantics (no ZeroDivisionError)."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def stats_in(expr: Any) -> list[Stat]:
    """Every Stat node under `expr`, in first-appearance order, without duplicates."""
    out: list[Stat] = []
    seen: set[str] = set()

    def walk(e: Any) -> None:
        if e is None:
            return
        if isinstance(e, Stat):
            k = stat_key(e)
            if k not in seen:
                seen.add(k)
                out.append(e)
        elif isinstance(e, Compare | Arith):
            walk(e.left)
            walk(e.right)
        elif isinstance(e, Neg | Not):
            walk(e.arg)
        elif isinstance(e, And | Or):
            for a in e.args:
                walk(a)

    walk(expr)
    return out


def rule_stats(rule: Rule) -> list[Stat]:
    """The statistics a rule reads: its predicate, its `by` expression, and `mean` for
    mean_ablate (the ablation target)."""
    sel = rule.selector
    found: list[Stat] = []
    if isinstance(sel, WhereSelector):
        found = stats_in(sel.where)
    elif isinstance(sel, TopSelector):
        found = stats_in(sel.by)
        keys = {stat_key(s) for s in found}
        found += [s for s in stats_in(sel.where) if stat_key(s) not in keys]
    if rule.action.op == "mean_ablate" and "mean" not in {stat_key(s) for s in found}:
        found.append(Stat(fn="mean"))
    return found


_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _is_str(x: Any) -> bool:
    if isinstance(x, str):
        return True
    return isinstance(x, np.ndarray) and x.dtype.kind in "OU"


def _num(x: Any, what: str) -> Any:
    if _is_str(x):
        raise SelectionError(
            f"{what} needs a number but got a string",
            help='only `==` and `!=` compare strings (e.g. top_concept() == "text")',
        )
    return x


class _VecEval:
    """Evaluates predicate expressions over whole statistics columns."""

    def __init__(self, table: StatsTable, params: Mapping[str, Any], rule: str) -> None:
        self.table = table
        self.params = params
        self.rule = rule

    def __call__(self, e: Any) -> Any:
        v = leaf_value(e, self.params)
        if v is not _NOT_LEAF:
            return v
        if isinstance(e, Stat):
            try:
                return self.table.column(stat_key(e))
            except StatisticsError as err:
                raise SelectionError(f"rule `{self.rule}`: {err.message}", help=err.help) from None
        if isinstance(e, Column):
            raise SelectionError(
                f"rule `{self.rule}` reads dataset column `{e.name}` directly",
                help="define a concept (`concept NAME = column == value`) and use corr(NAME)",
            )
        if isinstance(e, Compare):
            left, right = self(e.left), self(e.right)
            if e.op not in ("==", "!=") and (_is_str(left) or _is_str(right)):
                _num(left if _is_str(left) else right, f"comparison `{e.op}`")
            with np.errstate(invalid="ignore"):
                out = _CMP[e.op](left, right)
            return np.asarray(out, dtype=bool) if isinstance(out, np.ndarray) else bool(out)
        if isinstance(e, Arith):
            left = _num(self(e.left), f"`{e.op}`")
            right = _num(self(e.right), f"`{e.op}`")
            la = np.asarray(left, dtype=np.float64)
            ra = np.asarray(right, dtype=np.float64)
            with np.errstate(all="ignore"):
                if e.op == "+":
                    out = la + ra
                elif e.op == "-":
                    out = la - ra
                elif e.op == "*":
                    out = la * ra
                else:
                    out = la / ra
            return out if out.ndim else float(out)
        if isinstance(e, Neg):
            v = np.asarray(_num(self(e.arg), "`-`"), dtype=np.float64)
            return -v if v.ndim else -float(v)
        if isinstance(e, And | Or):
            vals = [self._bool(a) for a in e.args]
            acc = vals[0]
            for v in vals[1:]:
                acc = (acc & v) if isinstance(e, And) else (acc | v)
            return acc
        if isinstance(e, Not):
            v = self._bool(e.arg)
            return ~v if isinstance(v, np.ndarray) else (not v)
        raise SelectionError(f"rule `{self.rule}`: cannot evaluate expression {e!r}")

    def _bool(self, e: Any) -> Any:
        v = self(e)
        if isinstance(v, np.ndarray):
            if v.dtype != bool:
                raise SelectionError(
                    f"rule `{self.rule}`: a predicate must be true/false, got numbers",
                    help="compare the statistic with a threshold, e.g. corr(c) > 0.3",
                )
            return v
        if not isinstance(v, bool):
            raise SelectionError(
                f"rule `{self.rule}`: a predicate must be true/false, got `{v}`",
                help="compare the statistic with a threshold, e.g. corr(c) > 0.3",
            )
        return v

    def mask(self, e: Any) -> np.ndarray:
        v = self._bool(e)
        if isinstance(v, np.ndarray):
            return v
        return np.full(self.table.n_features, v, dtype=bool)

    def values(self, e: Any) -> np.ndarray:
        v = _num(self(e), "`by`")
        arr = np.asarray(v, dtype=np.float64)
        if arr.ndim == 0:
            return np.full(self.table.n_features, float(arr), dtype=np.float64)
        return arr


def eval_column_expr(
    expr: Any,
    column: Callable[[str], np.ndarray],
    n_rows: int,
    params: Mapping[str, Any],
    *,
    concept: str,
) -> np.ndarray:
    """Evaluate a concept definition over dataset columns to a boolean array of `n_rows`."""

    def ev(e: Any) -> Any:
        v = leaf_value(e, params)
        if v is not _NOT_LEAF:
            return v
        if isinstance(e, Column):
            return column(e.name)
        if isinstance(e, Compare):
            left, right = ev(e.left), ev(e.right)
            # A numeric column compared with a string literal (or vice versa): compare as text.
            if _is_str(left) != _is_str(right):
                left = _to_str(left)
                right = _to_str(right)
            with np.errstate(invalid="ignore"):
                out = _CMP[e.op](left, right)
            return np.asarray(out, dtype=bool) if isinstance(out, np.ndarray) else bool(out)
        if isinstance(e, Arith):
            la = np.asarray(ev(e.left), dtype=np.float64)
            ra = np.asarray(ev(e.right), dtype=np.float64)
            with np.errstate(all="ignore"):
                return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[e.op](
                    la, ra
                )
        if isinstance(e, Neg):
            return -np.asarray(ev(e.arg), dtype=np.float64)
        if isinstance(e, And | Or):
            vals = [ev(a) for a in e.args]
            acc = vals[0]
            for v in vals[1:]:
                acc = np.logical_and(acc, v) if isinstance(e, And) else np.logical_or(acc, v)
            return acc
        if isinstance(e, Not):
            return np.logical_not(ev(e.arg))
        if isinstance(e, Stat):
            raise SelectionError(
                f"concept `{concept}` uses the feature statistic `{stat_key(e)}`",
                help="concepts are defined over dataset columns, e.g. `concept water = place == 1`",
            )
        raise SelectionError(f"concept `{concept}`: cannot evaluate expression {e!r}")

    val = ev(expr)
    arr = np.asarray(val)
    if arr.ndim == 0:
        arr = np.full(n_rows, bool(arr))
    if arr.dtype != bool:
        # A bare column used as a concept: nonzero / "true"-like values count as true.
        arr = np.asarray([_truthy(v) for v in arr.tolist()], dtype=bool)
    return arr


def _to_str(x: Any) -> Any:
    def s(v: Any) -> str:
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    if isinstance(x, np.ndarray):
        return np.asarray([s(v) for v in x.tolist()], dtype=object)
    return s(x)


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "0", "false", "no", "-1", "nan")
    try:
        f = float(v)
    except (TypeError, ValueError):
        return bool(v)
    return f > 0


# ------------------------------------------------------------------------------------------
# Per-rule selection
# ------------------------------------------------------------------------------------------


@dataclass
class RuleSiteResult:
    """What one rule selected at one site, with the data `steer explain` shows."""

    rule: str
    rule_index: int
    layer: int
    site: str
    tokens: Any
    n_features: int
    selected: list[int]
    candidates: int  # features satisfying the `where` part (all features for ids)
    stats: list[str]  # stat_keys the rule looked at
    values: dict[int, dict[str, float | str]] = field(default_factory=dict)
    near_misses: list[dict[str, Any]] = field(default_factory=list)
    won: list[int] = field(default_factory=list)  # selected and not overridden later
    lost_to: dict[int, str] = field(default_factory=dict)  # feature -> later winning rule
    thresholds: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "rule_index": self.rule_index,
            "layer": self.layer,
            "site": self.site,
            "tokens": self.tokens,
            "n_features": self.n_features,
            "candidates": self.candidates,
            "selected": len(self.selected),
            "rejected": self.n_features - len(self.selected),
            "selected_ids": list(self.selected),
            "won_ids": list(self.won),
            "lost_to": {str(k): v for k, v in self.lost_to.items()},
            "stats": self.stats,
            "thresholds": self.thresholds,
            "top": [
                {"feature": f, **self.values.get(f, {})}
                for f in self.selected[: min(len(self.selected), 20)]
            ],
            "near_misses": self.near_misses,
        }


@dataclass
class SelectionWarning:
    rule: str
    layer: int
    site: str
    message: str
    code: str = "W320"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule,
            "layer": self.layer,
            "site": self.site,
            "message": self.message,
        }


@dataclass
class SelectionResult:
    plan: InterventionPlan
    per_rule: list[RuleSiteResult]
    warnings: list[SelectionWarning]

    def explain_json(self, rule: str | None = None) -> dict[str, Any]:
        rows = [r.to_json() for r in self.per_rule if rule is None or r.rule == rule]
        return {
            "recipe": self.plan.recipe,
            "stats_key": self.plan.stats_key,
            "rules": rows,
            "overrides": [o.model_dump(mode="json") for o in self.plan.overrides],
            "warnings": [w.to_json() for w in self.warnings],
        }


def select_rule_vectorised(
    rule: Rule, table: StatsTable, params: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Selected feature ids (in rank order for `top`, ascending otherwise) and the
    `where`-candidate mask, for a rule whose selector is `where` or `top`."""
    ev = _VecEval(table, params, rule.name)
    sel = rule.selector
    if isinstance(sel, WhereSelector):
        m = ev.mask(sel.where)
        return np.flatnonzero(m), m
    if isinstance(sel, TopSelector):
        k = _top_k(sel.k, params, rule.name)
        cand = ev.mask(sel.where) if sel.where is not None else np.ones(table.n_features, bool)
        score = ev.values(sel.by)
        ok = cand & ~np.isnan(score)
        idx = np.flatnonzero(ok)
        s = score[idx]
        order = np.lexsort((idx, -s if sel.order == "desc" else s))
        return idx[order][:k], cand
    raise SelectionError(f"rule `{rule.name}`: unsupported selector {sel.kind}")


def _top_k(k: Any, params: Mapping[str, Any], rule: str) -> int:
    v = param_value(params, k.name) if isinstance(k, ParamRef) else k
    if isinstance(v, bool) or not isinstance(v, int | float) or float(v) != int(v) or v < 0:
        raise SelectionError(
            f"rule `{rule}`: `top K` needs a non-negative whole number, got `{v}`",
            help="set K (or the param it names) to an integer such as 10",
        )
    return int(v)


def action_value(rule: Rule, params: Mapping[str, Any]) -> float | None:
    val = rule.action.value
    if val is None:
        if rule.action.op in ("clamp", "scale", "add"):
            raise SelectionError(
                f"rule `{rule.name}`: `{rule.action.op}` needs a value",
                help=f"write e.g. `{rule.action.op} ... to 1.0`",
            )
        return None
    if isinstance(val, ParamRef):
        v = param_value(params, val.name)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise SelectionError(
                f"rule `{rule.name}`: param `{val.name}` = {v!r} is not a number",
                help=f"pass a number, e.g. --param {val.name}=0.5",
            )
        return float(v)
    return float(val.value)


# ------------------------------------------------------------------------------------------
# The plan
# ------------------------------------------------------------------------------------------


@dataclass
class SiteInfo:
    """What the runtime knows about the SAE bound at a site."""

    sae: str
    d_sae: int
    sae_hash: str | None = None


TableLookup = Callable[[int, str, Any], StatsTable | None]


def needs_stats(rule: Rule) -> bool:
    return not isinstance(rule.selector, IdsSelector) or rule.action.op == "mean_ablate"


def select(
    ir: RecipeIR,
    tables: TableLookup | Mapping[tuple[int, str, str], StatsTable],
    sites: Mapping[tuple[int, str], SiteInfo],
    *,
    model: str | None = None,
    stats_key: str | None = None,
    near_miss_eps: float = NEAR_MISS_EPS,
) -> SelectionResult:
    """Evaluate every rule in file order and build the InterventionPlan."""
    lookup = _as_lookup(tables)
    params = ir.params
    edits: dict[tuple[int, str, int], FeatureEdit] = {}
    history: dict[tuple[int, str, int], list[str]] = {}
    per_rule: list[RuleSiteResult] = []
    warnings: list[SelectionWarning] = []
    error_mode = ir.setting("error_mode")
    results_by_key: dict[tuple[int, str, int], RuleSiteResult] = {}

    for rule in sorted(ir.rules, key=lambda r: r.index):
        value = action_value(rule, params)
        site = rule.scope.site
        for layer in rule.scope.layers:
            info = sites.get((layer, site))
            if info is None:
                raise SelectionError(
                    f"rule `{rule.name}`: no SAE is bound at layer {layer} {site}",
                    help=f"add `sae layer {layer} = REF` to the recipe, pass --sae {layer}=REF, "
                    "or map it in steer.yaml",
                )
            table = lookup(layer, site, rule.scope.tokens) if needs_stats(rule) else None
            if needs_stats(rule) and table is None:
                raise SelectionError(
                    f"rule `{rule.name}`: no statistics for layer {layer} {site} "
                    f"tokens {tokens_key(rule.scope.tokens)}"
                )
            if table is not None and table.n_features != info.d_sae:
                raise SelectionError(
                    f"statistics for layer {layer} {site} have {table.n_features} features but "
                    f"the SAE has {info.d_sae}",
                    help="delete the stale statistics cache entry or rerun with --no-cache",
                )
            stats = rule_stats(rule)
            keys = [stat_key(s) for s in stats]
            if isinstance(rule.selector, IdsSelector):
                bad = [i for i in rule.selector.ids if i < 0 or i >= info.d_sae]
                if bad:
                    raise SelectionError(
                        f"rule `{rule.name}`: feature {bad[0]} is out of range at layer {layer} "
                        f"{site} (the SAE {info.sae} has features 0..{info.d_sae - 1})",
                        help=f"use feature ids below {info.d_sae}",
                    )
                chosen = list(dict.fromkeys(int(i) for i in rule.selector.ids))
                n_cand = info.d_sae
            else:
                assert table is not None
                ids, cand = select_rule_vectorised(rule, table, params)
                chosen = [int(i) for i in ids]
                n_cand = int(cand.sum())
            res = RuleSiteResult(
                rule=rule.name,
                rule_index=rule.index,
                layer=layer,
                site=site,
                tokens=rule.scope.tokens,
                n_features=info.d_sae,
                selected=chosen,
                candidates=n_cand,
                stats=keys,
            )
            if table is not None:
                res.values = {f: _row_values(table, keys, f) for f in chosen}
                if not isinstance(rule.selector, IdsSelector):
                    res.near_misses, res.thresholds = _near_misses(
                        rule, table, params, set(chosen), near_miss_eps
                    )
            per_rule.append(res)
            if not isinstance(rule.selector, IdsSelector):
                if not chosen:
                    warnings.append(
                        SelectionWarning(
                            rule.name,
                            layer,
                            site,
                            f"rule `{rule.name}` selects no features at layer {layer} {site}",
                            code="W321",
                        )
                    )
                elif len(chosen) == info.d_sae and info.d_sae > 1:
                    warnings.append(
                        SelectionWarning(
                            rule.name,
                            layer,
                            site,
                            f"rule `{rule.name}` selects every feature ({info.d_sae}) at layer "
                            f"{layer} {site}",
                            code="W322",
                        )
                    )
            for f in chosen:
                k = (layer, site, f)
                ev_value = value
                if rule.action.op == "mean_ablate":
                    assert table is not None
                    ev_value = float(table.column("mean")[f])
                edit = FeatureEdit(
                    feature=f,
                    op=rule.action.op,
                    value=ev_value,
                    tokens=rule.scope.tokens,
                    rule=rule.name,
                    rule_index=rule.index,
                    stats=res.values.get(f, {}),
                )
                if k in edits:
                    prev = results_by_key[k]
                    prev.lost_to[f] = rule.name
                history.setdefault(k, []).append(rule.name)
                edits[k] = edit
                results_by_key[k] = res

    for k, res in results_by_key.items():
        res.won.append(k[2])
    for res in per_rule:
        res.won.sort()

    overrides = [
        Override(layer=k[0], site=k[1], feature=k[2], winner=names[-1], overridden=names[:-1])  # type: ignore[arg-type]
        for k, names in sorted(history.items(), key=lambda kv: _site_order(kv[0]))
        if len(names) > 1
    ]
    site_plans: list[SitePlan] = []
    for layer, site in sorted({(k[0], k[1]) for k in edits} | _rule_sites(ir), key=_site_order):
        info = sites[(layer, site)]
        site_edits = sorted(
            (e for k, e in edits.items() if k[0] == layer and k[1] == site),
            key=lambda e: e.feature,
        )
        site_plans.append(
            SitePlan(
                layer=layer,
                site=site,  # type: ignore[arg-type]
                sae=info.sae,
                sae_hash=info.sae_hash,
                d_sae=info.d_sae,
                error_mode=error_mode,
                edits=site_edits,
            )
        )
    plan = InterventionPlan(
        recipe=ir.name,
        recipe_hash=ir.source_hash,
        model=model or ir.model,
        stats_key=stats_key,
        params={n: p.value for n, p in ir.params.items()},
        sites=site_plans,
        overrides=overrides,
    )
    for w in warnings:
        log.warning("%s", w.message)
    return SelectionResult(plan=plan, per_rule=per_rule, warnings=warnings)


def _rule_sites(ir: RecipeIR) -> set[tuple[int, str]]:
    return {(layer, r.scope.site) for r in ir.rules for layer in r.scope.layers}


def _site_order(k: tuple[Any, ...]) -> tuple[Any, ...]:
    return (k[0], SITE_KINDS.index(k[1]) if k[1] in SITE_KINDS else 99, *k[2:])


def _as_lookup(tables: TableLookup | Mapping[tuple[int, str, str], StatsTable]) -> TableLookup:
    if callable(tables):
        return tables
    mapping = tables

    def lookup(layer: int, site: str, tokens: Any) -> StatsTable | None:
        return mapping.get((layer, site, tokens_key(tokens))) or mapping.get((layer, site, "*"))

    return lookup


def _row_values(table: StatsTable, keys: Sequence[str], f: int) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for k in keys:
        if not table.has(k):
            continue
        v = table.columns[k][f]
        if isinstance(v, str):
            out[k] = v
        else:
            fv = float(v)
            if math.isfinite(fv):
                out[k] = fv
    return out


# ------------------------------------------------------------------------------------------
# Near misses (for explain)
# ------------------------------------------------------------------------------------------


def _thresholds(expr: Any, params: Mapping[str, Any]) -> list[tuple[Compare, str, float]]:
    """Comparisons of a statistic against a constant: (node, stat key, threshold)."""
    out: list[tuple[Compare, str, float]] = []

    def const(e: Any) -> float | None:
        if isinstance(e, Num):
            return float(e.value)
        if isinstance(e, ParamRef):
            v = param_value(params, e.name)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        if isinstance(e, Neg):
            c = const(e.arg)
            return None if c is None else -c
        return None

    def walk(e: Any) -> None:
        if isinstance(e, Compare):
            for a, b in ((e.left, e.right), (e.right, e.left)):
                if isinstance(a, Stat) and const(b) is not None and a.fn != "top_concept":
                    out.append((e, stat_key(a), const(b)))  # type: ignore[arg-type]
                    return
        elif isinstance(e, And | Or):
            for a in e.args:
                walk(a)
        elif isinstance(e, Not):
            walk(e.arg)

    walk(expr)
    return out


class _RelaxedEval(_VecEval):
    """Evaluates a predicate with every numeric comparison loosened by `eps` in the direction
    that lets more features through (tightened under `not`), so that relaxed & ~exact are
    the features that missed a threshold by at most eps."""

    def __init__(self, table: StatsTable, params: Mapping[str, Any], rule: str, eps: float) -> None:
        super().__init__(table, params, rule)
        self.eps = eps
        self.positive = True

    def __call__(self, e: Any) -> Any:
        if isinstance(e, Not):
            self.positive = not self.positive
            try:
                v = self._bool(e.arg)
            finally:
                self.positive = not self.positive
            return ~v if isinstance(v, np.ndarray) else (not v)
        if isinstance(e, Compare) and e.op in ("<", "<=", ">", ">=", "==", "!="):
            left, right = super().__call__(e.left), super().__call__(e.right)
            if _is_str(left) or _is_str(right):
                return super().__call__(e)
            la = np.asarray(left, dtype=np.float64)
            ra = np.asarray(right, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                exact = np.asarray(_CMP[e.op](la, ra), dtype=bool)
                close = np.abs(la - ra) <= self.eps
            out = (exact | close) if self.positive else (exact & ~close)
            return out if out.ndim else bool(out)
        return super().__call__(e)


def _near_misses(
    rule: Rule,
    table: StatsTable,
    params: Mapping[str, Any],
    chosen: set[int],
    eps: float,
    limit: int = 10,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sel = rule.selector
    where = sel.where if isinstance(sel, WhereSelector | TopSelector) else None
    keys = [stat_key(s) for s in rule_stats(rule)]
    thresholds = [
        {"stat": k, "op": c.op, "threshold": t}
        for c, k, t in (_thresholds(where, params) if where is not None else [])
    ]
    misses: list[dict[str, Any]] = []
    if where is not None:
        exact = _VecEval(table, params, rule.name).mask(where)
        relaxed = _RelaxedEval(table, params, rule.name, eps).mask(where)
        near = np.flatnonzero(relaxed & ~exact)
        # Closest to a threshold first.
        if len(near) and thresholds:
            dist = np.full(len(near), np.inf)
            for th in thresholds:
                col = table.column(th["stat"])
                dist = np.minimum(dist, np.abs(col[near] - th["threshold"]))
            near = near[np.lexsort((near, dist))]
        for f in near[:limit]:
            misses.append(
                {
                    "feature": int(f),
                    "reason": "within eps of a threshold",
                    **_row_values(table, keys, int(f)),
                }
            )
    if isinstance(sel, TopSelector):
        # The next-ranked candidates just below the cut.
        k = _top_k(sel.k, params, rule.name)
        big = rule.model_copy(update={"selector": sel.model_copy(update={"k": k + limit})})
        ids, _ = select_rule_vectorised(big, table, params)
        for rank, f in enumerate(ids[k:], start=k + 1):
            if int(f) not in chosen:
                misses.append(
                    {
                        "feature": int(f),
                        "reason": f"rank {rank} (K = {k})",
                        **_row_values(table, keys, int(f)),
                    }
                )
    return misses, thresholds


# ------------------------------------------------------------------------------------------
# Reference evaluator (plain per-feature Python; tests compare it with the vectorised one)
# ------------------------------------------------------------------------------------------


def reference_eval(e: Any, row: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """Evaluate `e` for one feature whose statistics are `row` (stat key -> value)."""
    v = leaf_value(e, params)
    if v is not _NOT_LEAF:
        return v
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
        for a in e.args:  # no short-circuit: same errors as the vectorised path
            out = bool(reference_eval(a, row, params)) and out
        return out
    if isinstance(e, Or):
        out = False
        for a in e.args:
            out = bool(reference_eval(a, row, params)) or out
        return out
    if isinstance(e, Not):
        return not bool(reference_eval(e.arg, row, params))
    raise SelectionError(f"cannot evaluate expression {e!r}")


def reference_select(rule: Rule, table: StatsTable, params: Mapping[str, Any]) -> list[int]:
    """The features a rule selects, computed one feature at a time (slow, obviously right)."""
    sel = rule.selector
    if isinstance(sel, IdsSelector):
        return list(dict.fromkeys(sel.ids))
    rows = _rows(table)
    if isinstance(sel, WhereSelector):
        return [f for f, row in enumerate(rows) if reference_eval(sel.where, row, params)]
    assert isinstance(sel, TopSelector)
    k = _top_k(sel.k, params, rule.name)
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


def _rows(table: StatsTable) -> Iterable[dict[str, Any]]:
    names = list(table.columns)
    cols = [table.columns[n] for n in names]
    for f in range(table.n_features):
        yield {n: c[f] for n, c in zip(names, cols, strict=True)}


def reference_plan_edits(
    ir: RecipeIR, table_for: Callable[[int, str, Any], StatsTable]
) -> dict[tuple[int, str, int], str]:
    """(layer, site, feature) -> winning rule name, by applying rules one by one in file
    order with the reference evaluator (tests compare it with the plan's edits)."""
    out: dict[tuple[int, str, int], str] = {}
    for rule in sorted(ir.rules, key=lambda r: r.index):
        for layer in rule.scope.layers:
            table = table_for(layer, rule.scope.site, rule.scope.tokens)
            for f in reference_select(rule, table, ir.params):
                out[(layer, rule.scope.site, f)] = rule.name
    return out
