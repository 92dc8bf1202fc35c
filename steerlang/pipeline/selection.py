"""The rule engine: from a RecipeIR and per-site statistics tables to an InterventionPlan.

Each rule is evaluated once per site over whole statistics columns (`pipeline/exprs.py`, whose
docstring states the expression semantics); this module adds what rules mean on top:
- `top K by E [where P]` ranks the candidates satisfying P by E (descending, or ascending for
  `bottom`), breaking ties by the lower feature id; features whose E is NaN are never ranked;
- `random K features [where P]` draws K of the candidates satisfying P with the seeded draw of
  `pipeline/random_draw.py`; a per-feature target (`clamp … to mean(c)`) gives each feature
  its own value of that statistic;
- rules apply in file order; a later rule replaces an earlier rule's edit on the same
  (layer, site, feature) and the replacement is recorded as an `Override`;
- `steer explain` gets, per rule and site, the statistic values of what was selected and the
  near misses (features within `eps` of a threshold, or ranked just below the cut).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from steerlang.errors import SteerError
from steerlang.facts import SITE_KINDS
from steerlang.pipeline.exprs import Evaluator, numeric_constant, param_value, stats_in
from steerlang.pipeline.random_draw import random_draw
from steerlang.pipeline.stats_table import StatisticsError, StatsTable, tokens_key
from steerlang.pipeline.strength import ranked
from steerlang.plan import (
    And,
    Column,
    Compare,
    FeatureEdit,
    IdsSelector,
    InterventionPlan,
    Not,
    Or,
    Override,
    ParamRef,
    RandomSelector,
    RecipeIR,
    Rule,
    SitePlan,
    Stat,
    TopSelector,
    WhereSelector,
    stat_key,
)

log = logging.getLogger("steerlang.selection")

NEAR_MISS_EPS = 0.05

EditKey = tuple[int, str, int]  # (layer, site, feature)


class SelectionError(SteerError):
    """A rule cannot be evaluated (bad feature id, missing statistic, ill-typed predicate)."""


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
    elif isinstance(sel, RandomSelector):
        found = stats_in(sel.where)
    if rule.action.op == "mean_ablate" and "mean" not in {stat_key(s) for s in found}:
        found.append(Stat(fn="mean"))
    target = rule.action.value
    if isinstance(target, Stat) and stat_key(target) not in {stat_key(s) for s in found}:
        found.append(target)
    return found


def rule_evaluator(
    table: StatsTable, params: Mapping[str, Any], rule: str, *, eps: float | None = None
) -> Evaluator:
    """The evaluator of rule `rule`'s expressions over `table` (one row per feature)."""

    def lookup(e: Stat | Column) -> np.ndarray:
        if isinstance(e, Column):
            raise SelectionError(
                f"rule `{rule}` reads dataset column `{e.name}` directly",
                help="define a concept (`concept NAME = column == value`) and use corr(NAME)",
            )
        try:
            return table.column(stat_key(e))
        except StatisticsError as err:
            raise SelectionError(f"rule `{rule}`: {err.message}", help=err.help) from None

    return Evaluator(lookup, params, table.n_features, label=f"rule `{rule}`", eps=eps)


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
    # `selected`, strongest first by the rule's own statistic (pipeline/strength.py)
    ranked: list[int] = field(default_factory=list)
    lost_to: dict[int, str] = field(default_factory=dict)  # feature -> later winning rule
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    domain_nan: int = 0  # features where a `log` met a value <= 0 (NaN there)
    drawn: int | None = None  # `random K`: the K asked for

    def strongest(self) -> list[int]:
        """The selected features, strongest first (`ranked`, else the selection order)."""
        return self.ranked or list(self.selected)

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
            "top": [{"feature": f, **self.values.get(f, {})} for f in self.strongest()[:20]],
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
    rule: Rule,
    table: StatsTable,
    params: Mapping[str, Any],
    *,
    layer: int = 0,
    seed: int = 0,
    notes: dict[str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Selected feature ids (in rank order for `top`, ascending otherwise) and the
    `where`-candidate mask, for a rule whose selector is `where`, `top` or `random` (drawn
    with `seed` for this rule at `layer`). `notes`, when given, receives `domain_nan` (rows
    where a `log` met a value <= 0)."""
    ev = rule_evaluator(table, params, rule.name)
    try:
        return _select_with(ev, rule, table, params, layer=layer, seed=seed)
    finally:
        if notes is not None:
            notes["domain_nan"] = ev.domain_nan


def _select_with(
    ev: Evaluator,
    rule: Rule,
    table: StatsTable,
    params: Mapping[str, Any],
    *,
    layer: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    sel = rule.selector
    if isinstance(sel, WhereSelector):
        m = ev.mask(sel.where)
        return np.flatnonzero(m), m
    if isinstance(sel, RandomSelector):
        k = _top_k(sel.k, params, rule.name)
        cand = ev.mask(sel.where) if sel.where is not None else np.ones(table.n_features, bool)
        ids = random_draw(
            np.flatnonzero(cand),
            k,
            seed=seed,
            rule_index=rule.index,
            layer=layer,
            site=rule.scope.site,
        )
        return ids, cand
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
    # An int is whole however large: `float(v) != int(v)` would reject 2**63 - 5 (its float
    # rounds) while accepting 2**64, so only a float is asked whether it is whole.
    whole = isinstance(v, int) or (isinstance(v, float) and v.is_integer())
    if isinstance(v, bool) or not whole or v < 0:
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
    if isinstance(val, Stat):
        return None  # a per-feature target: each feature's value comes from the table
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
    return (
        not isinstance(rule.selector, IdsSelector)
        or rule.action.op == "mean_ablate"
        or isinstance(rule.action.value, Stat)
    )


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
    edits = _Edits()
    per_rule: list[RuleSiteResult] = []
    warnings: list[SelectionWarning] = []
    seed = int(ir.setting("seed"))
    for rule in sorted(ir.rules, key=lambda r: r.index):
        value = action_value(rule, ir.params)
        for layer in rule.scope.layers:
            info = _site_info(rule, layer, sites)
            table = _rule_table(rule, layer, info, lookup)
            res = _select_at_site(rule, layer, info, table, ir.params, near_miss_eps, seed=seed)
            per_rule.append(res)
            warning = _coverage_warning(rule, res, ir.params)
            if warning is not None:
                warnings.append(warning)
            warnings.extend(control_warnings(rule, res))
            edits.apply(rule, res, value, table)
    edits.mark_winners(per_rule)
    plan = InterventionPlan(
        recipe=ir.name,
        recipe_hash=ir.source_hash,
        model=model or ir.model,
        stats_key=stats_key,
        params={n: p.value for n, p in ir.params.items()},
        sites=_site_plans(ir, edits.edits, sites),
        overrides=edits.overrides(),
    )
    for w in warnings:
        log.warning("%s", w.message)
    return SelectionResult(plan=plan, per_rule=per_rule, warnings=warnings)


def _site_info(rule: Rule, layer: int, sites: Mapping[tuple[int, str], SiteInfo]) -> SiteInfo:
    info = sites.get((layer, rule.scope.site))
    if info is None:
        raise SelectionError(
            f"rule `{rule.name}`: no SAE is bound at layer {layer} {rule.scope.site}",
            help=f"add `sae layer {layer} = REF` to the recipe, pass --sae {layer}=REF, "
            "or map it in steer.yaml",
        )
    return info


def _rule_table(rule: Rule, layer: int, info: SiteInfo, lookup: TableLookup) -> StatsTable | None:
    """The statistics table the rule reads at this site (None when it reads none), checked
    against the SAE bound there."""
    if not needs_stats(rule):
        return None
    site = rule.scope.site
    table = lookup(layer, site, rule.scope.tokens)
    if table is None:
        raise SelectionError(
            f"rule `{rule.name}`: no statistics for layer {layer} {site} "
            f"tokens {tokens_key(rule.scope.tokens)}"
        )
    if table.n_features != info.d_sae:
        raise SelectionError(
            f"statistics for layer {layer} {site} have {table.n_features} features but "
            f"the SAE has {info.d_sae}",
            help="delete the stale statistics cache entry or rerun with --no-cache",
        )
    return table


def _select_at_site(
    rule: Rule,
    layer: int,
    info: SiteInfo,
    table: StatsTable | None,
    params: Mapping[str, Any],
    near_miss_eps: float,
    *,
    seed: int = 0,
) -> RuleSiteResult:
    """What the rule selects at one site, with the values and near misses explain shows."""
    keys = [stat_key(s) for s in rule_stats(rule)]
    if isinstance(rule.selector, IdsSelector):
        bad = [i for i in rule.selector.ids if i < 0 or i >= info.d_sae]
        if bad:
            raise SelectionError(
                f"rule `{rule.name}`: feature {bad[0]} is out of range at layer {layer} "
                f"{rule.scope.site} (the SAE {info.sae} has features 0..{info.d_sae - 1})",
                help=f"use feature ids below {info.d_sae}",
            )
        chosen = list(dict.fromkeys(int(i) for i in rule.selector.ids))
        n_cand = info.d_sae
    else:
        assert table is not None
        notes: dict[str, int] = {}
        ids, cand = select_rule_vectorised(rule, table, params, layer=layer, seed=seed, notes=notes)
        chosen = [int(i) for i in ids]
        n_cand = int(cand.sum())
    res = RuleSiteResult(
        rule=rule.name,
        rule_index=rule.index,
        layer=layer,
        site=rule.scope.site,
        tokens=rule.scope.tokens,
        n_features=info.d_sae,
        selected=chosen,
        candidates=n_cand,
        stats=keys,
    )
    if not isinstance(rule.selector, IdsSelector):
        res.domain_nan = notes.get("domain_nan", 0)
    if isinstance(rule.selector, RandomSelector):
        res.drawn = _top_k(rule.selector.k, params, rule.name)
    if table is not None:
        ev = rule_evaluator(table, params, rule.name)
        res.ranked = ranked(rule, chosen, ev, table.n_features)
        res.values = {f: _row_values(table, keys, f) for f in chosen}
        if not isinstance(rule.selector, IdsSelector):
            res.near_misses, res.thresholds = _near_misses(
                rule, table, params, set(chosen), near_miss_eps
            )
    return res


def switched_off(rule: Rule, params: Mapping[str, Any]) -> bool:
    """The rule's `where` has a conjunct over params and literals only that is false, e.g.
    `arm == "random"` while `arm` is "targeted": it selects nothing on purpose."""
    sel = rule.selector
    where = sel.where if isinstance(sel, WhereSelector | TopSelector | RandomSelector) else None
    if where is None:
        return False

    def no_data(e: Stat | Column) -> Any:
        raise SelectionError("reads data")

    ev = Evaluator(no_data, params, 1, label=f"rule `{rule.name}`")
    for c in where.args if isinstance(where, And) else [where]:
        try:
            if stats_in(c) == [] and ev(c) is False:
                return True
        except SteerError:
            continue
    return False


def _coverage_warning(
    rule: Rule, res: RuleSiteResult, params: Mapping[str, Any] | None = None
) -> SelectionWarning | None:
    """W321 / W322 when a predicate selects no feature or every feature at a site."""
    if isinstance(rule.selector, IdsSelector):
        return None
    where = f"layer {res.layer} {res.site}"
    if not res.selected:
        if params is not None and switched_off(rule, params):
            return None  # an experiment arm that is not running (docs/language.md §4.3)
        msg = f"rule `{rule.name}` selects no features at {where}"
        return SelectionWarning(rule.name, res.layer, res.site, msg, code="W321")
    if len(res.selected) == res.n_features and res.n_features > 1:
        msg = f"rule `{rule.name}` selects every feature ({res.n_features}) at {where}"
        return SelectionWarning(rule.name, res.layer, res.site, msg, code="W322")
    return None


def control_warnings(rule: Rule, res: RuleSiteResult) -> list[SelectionWarning]:
    """W324 when `random K` has fewer than K candidates but some (it takes them all); W325 when a
    `log` met values <= 0 (NaN there: every comparison with them is false, `top` skips them)."""
    out: list[SelectionWarning] = []
    where = f"layer {res.layer} {res.site}"
    # No candidate at all is W321 (or an arm switched off by its params): not repeated here.
    if res.drawn is not None and 0 < res.candidates < res.drawn:
        msg = (
            f"rule `{rule.name}` draws {res.drawn} random features but only "
            f"{res.candidates} satisfy its `where` at {where}: it selects all {res.candidates}"
        )
        out.append(SelectionWarning(rule.name, res.layer, res.site, msg, code="W324"))
    if res.domain_nan:
        msg = (
            f"rule `{rule.name}` takes `log` of a value <= 0 for {res.domain_nan} feature "
            f"value(s) at {where}; those are NaN, so every comparison with them is false"
        )
        out.append(SelectionWarning(rule.name, res.layer, res.site, msg, code="W325"))
    return out


@dataclass
class _Edits:
    """The plan's edits so far: the latest rule's edit per (layer, site, feature) wins."""

    edits: dict[EditKey, FeatureEdit] = field(default_factory=dict)
    history: dict[EditKey, list[str]] = field(default_factory=dict)  # rules, in file order
    winner: dict[EditKey, RuleSiteResult] = field(default_factory=dict)

    def apply(
        self, rule: Rule, res: RuleSiteResult, value: float | None, table: StatsTable | None
    ) -> None:
        for f in res.selected:
            k = (res.layer, res.site, f)
            if rule.action.op == "mean_ablate":
                assert table is not None
                value_f = float(table.column("mean")[f])
            elif isinstance(rule.action.value, Stat):
                assert table is not None
                value_f = float(table.column(stat_key(rule.action.value))[f])
            else:
                value_f = value
            if k in self.edits:
                self.winner[k].lost_to[f] = rule.name
            self.history.setdefault(k, []).append(rule.name)
            self.edits[k] = FeatureEdit(
                feature=f,
                op=rule.action.op,
                value=value_f,
                tokens=rule.scope.tokens,
                rule=rule.name,
                rule_index=rule.index,
                stats=res.values.get(f, {}),
            )
            self.winner[k] = res

    def mark_winners(self, per_rule: Sequence[RuleSiteResult]) -> None:
        for k, res in self.winner.items():
            res.won.append(k[2])
        for res in per_rule:
            res.won.sort()

    def overrides(self) -> list[Override]:
        return [
            Override(layer=k[0], site=k[1], feature=k[2], winner=names[-1], overridden=names[:-1])  # type: ignore[arg-type]
            for k, names in sorted(self.history.items(), key=lambda kv: _site_order(kv[0]))
            if len(names) > 1
        ]


def _site_plans(
    ir: RecipeIR, edits: Mapping[EditKey, FeatureEdit], sites: Mapping[tuple[int, str], SiteInfo]
) -> list[SitePlan]:
    """One SitePlan per site a rule names (edits sorted by feature), in layer/site order."""
    error_mode = ir.setting("error_mode")
    out: list[SitePlan] = []
    for layer, site in sorted({(k[0], k[1]) for k in edits} | _rule_sites(ir), key=_site_order):
        info = sites[(layer, site)]
        site_edits = sorted(
            (e for k, e in edits.items() if k[0] == layer and k[1] == site),
            key=lambda e: e.feature,
        )
        out.append(
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
    return out


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

    def walk(e: Any) -> None:
        if isinstance(e, Compare):
            for a, b in ((e.left, e.right), (e.right, e.left)):
                if not isinstance(a, Stat) or a.fn == "top_concept":
                    continue
                c = numeric_constant(b, params)
                if c is not None:
                    out.append((e, stat_key(a), c))
                    return
        elif isinstance(e, And | Or):
            for a in e.args:
                walk(a)
        elif isinstance(e, Not):
            walk(e.arg)

    walk(expr)
    return out


def _near_misses(
    rule: Rule,
    table: StatsTable,
    params: Mapping[str, Any],
    chosen: set[int],
    eps: float,
    limit: int = 10,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Features that just missed the rule (within eps of a threshold, or ranked just below
    a `top K` cut), closest first, and the rule's `stat OP constant` thresholds."""
    sel = rule.selector
    where = sel.where if isinstance(sel, WhereSelector | TopSelector | RandomSelector) else None
    keys = [stat_key(s) for s in rule_stats(rule)]
    thresholds = [
        {"stat": k, "op": c.op, "threshold": t}
        for c, k, t in (_thresholds(where, params) if where is not None else [])
    ]
    misses: list[dict[str, Any]] = []
    if where is not None:
        near = _within_eps(rule, table, params, where, thresholds, eps)
        for f in near[:limit]:
            misses.append(
                {
                    "feature": int(f),
                    "reason": "within eps of a threshold",
                    **_row_values(table, keys, int(f)),
                }
            )
    if isinstance(sel, TopSelector):
        # The next-ranked candidates just below the cut: at most `limit`, and never more than
        # the site has (asking for K + limit could otherwise fail on a K the user never wrote).
        k = _top_k(sel.k, params, rule.name)
        want = min(k + limit, table.n_features)
        big = rule.model_copy(update={"selector": sel.model_copy(update={"k": want})})
        below = select_rule_vectorised(big, table, params)[0][k:] if want > k else []
        for rank, f in enumerate(below, start=k + 1):
            if int(f) not in chosen:
                misses.append(
                    {
                        "feature": int(f),
                        "reason": f"rank {rank} (K = {k})",
                        **_row_values(table, keys, int(f)),
                    }
                )
    return misses, thresholds


def _within_eps(
    rule: Rule,
    table: StatsTable,
    params: Mapping[str, Any],
    where: Any,
    thresholds: Sequence[Mapping[str, Any]],
    eps: float,
) -> np.ndarray:
    """Features the `where` part rejects but passes with every comparison loosened by eps,
    closest to a threshold first (ties by lower id)."""
    exact = rule_evaluator(table, params, rule.name).mask(where)
    relaxed = rule_evaluator(table, params, rule.name, eps=eps).mask(where)
    near = np.flatnonzero(relaxed & ~exact)
    if len(near) and thresholds:
        dist = np.full(len(near), np.inf)
        for th in thresholds:
            col = table.column(th["stat"])
            dist = np.minimum(dist, np.abs(col[near] - th["threshold"]))
        near = near[np.lexsort((near, dist))]
    return near
