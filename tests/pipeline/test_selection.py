"""The vectorised rule engine against the plain per-feature reference evaluator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_selection import reference_plan_edits, reference_select

from steerlang.pipeline.selection import (
    SelectionError,
    SiteInfo,
    select,
    select_rule_vectorised,
)
from steerlang.pipeline.stats_table import StatsTable
from steerlang.plan import (
    Action,
    And,
    Arith,
    Compare,
    Fn,
    IdsSelector,
    Neg,
    Not,
    Num,
    Or,
    ParamDef,
    ParamRef,
    RecipeIR,
    Rule,
    Scope,
    Stat,
    Str,
    TopSelector,
    WhereSelector,
)

WORDS = ["text", "water", "bird", "sky"]
NUM_STATS = [
    Stat(fn="corr", concept="a"),
    Stat(fn="corr", concept="b"),
    Stat(fn="corr", concept="a", negated=True),
    Stat(fn="mean"),
    Stat(fn="mean", concept="a"),
    Stat(fn="mean", concept="a", negated=True),
    Stat(fn="freq"),
    Stat(fn="max"),
    Stat(fn="steerability"),
    Stat(fn="promotes", word="text"),
    Stat(fn="id"),
]
# A small grid makes ties and exact threshold hits common; NaN exercises IEEE comparisons.
VALUES = st.sampled_from([-1.0, -0.5, -0.3, 0.0, 0.1, 0.3, 0.3, 0.5, 1.0, 2.0, math.nan])


@st.composite
def tables(draw: st.DrawFn) -> StatsTable:
    n = draw(st.integers(1, 25))
    cols: dict[str, np.ndarray] = {}
    for key in [
        "corr:a",
        "corr:b",
        "mean",
        "mean:a",
        "mean_not:a",
        "freq",
        "max",
        "steerability",
        "promotes:text",
    ]:
        cols[key] = np.asarray(draw(st.lists(VALUES, min_size=n, max_size=n)), dtype=np.float64)
    cols["corr_not:a"] = -cols["corr:a"]
    cols["top_concept"] = np.asarray(
        draw(st.lists(st.sampled_from(WORDS), min_size=n, max_size=n)), dtype=object
    )
    return StatsTable(n, cols)


PARAMS = {
    "thr": ParamDef(name="thr", type="float", value=0.3),
    "k": ParamDef(name="k", type="int", value=3),
    "w": ParamDef(name="w", type="str", value="water"),
}

num_leaf = st.one_of(
    st.sampled_from(NUM_STATS),
    st.builds(Num, value=VALUES.filter(lambda v: not math.isnan(v))),
    st.just(ParamRef(name="thr")),
)
num_expr = st.recursive(
    num_leaf,
    lambda c: st.one_of(
        st.builds(Arith, op=st.sampled_from(["+", "-", "*", "/"]), left=c, right=c),
        st.builds(Neg, arg=c),
        st.builds(
            Fn, fn=st.sampled_from(["abs", "log", "rank"]), args=st.lists(c, min_size=1, max_size=1)
        ),
        st.builds(Fn, fn=st.sampled_from(["min", "max"]), args=st.lists(c, min_size=2, max_size=2)),
        st.builds(
            lambda a, q: Fn(fn="quantile", args=[a, Num(value=q)]),
            c,
            st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]),
        ),
    ),
    max_leaves=3,
)
comparison = st.one_of(
    st.builds(
        Compare,
        op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
        left=num_expr,
        right=num_expr,
    ),
    st.builds(
        Compare,
        op=st.sampled_from(["==", "!="]),
        left=st.just(Stat(fn="top_concept")),
        right=st.one_of(st.builds(Str, value=st.sampled_from(WORDS)), st.just(ParamRef(name="w"))),
    ),
)
predicate = st.recursive(
    comparison,
    lambda c: st.one_of(
        st.builds(And, args=st.lists(c, min_size=2, max_size=3)),
        st.builds(Or, args=st.lists(c, min_size=2, max_size=3)),
        st.builds(Not, arg=c),
    ),
    max_leaves=5,
)
selector = st.one_of(
    st.builds(WhereSelector, where=predicate),
    st.builds(
        TopSelector,
        k=st.one_of(st.integers(0, 30), st.just(ParamRef(name="k"))),
        by=num_expr,
        where=st.one_of(st.none(), predicate),
        order=st.sampled_from(["desc", "asc"]),
    ),
)


def _rule(i: int, sel: object, layers: list[int], op: str = "suppress") -> Rule:
    value = None if op in ("suppress", "mean_ablate") else Num(value=0.5)
    return Rule(
        name=f"r{i}",
        index=i,
        scope=Scope(layers=layers),
        action=Action(op=op, value=value),  # type: ignore[arg-type]
        selector=sel,  # type: ignore[arg-type]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), sel=selector)
def test_vectorised_equals_reference(table: StatsTable, sel: object) -> None:
    rule = _rule(0, sel, [7])
    got, _ = select_rule_vectorised(rule, table, PARAMS)
    want = reference_select(rule, table, PARAMS)
    if isinstance(sel, WhereSelector):
        assert sorted(got.tolist()) == want
    else:
        assert got.tolist() == want  # rank order, ties by lower id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=tables(),
    sels=st.lists(selector, min_size=1, max_size=4),
    layer_sets=st.lists(st.sampled_from([[3], [5], [3, 5]]), min_size=4, max_size=4),
    ops=st.lists(
        st.sampled_from(["suppress", "clamp", "scale", "add", "mean_ablate"]),
        min_size=4,
        max_size=4,
    ),
)
def test_conflicts_follow_file_order(
    table: StatsTable, sels: list[object], layer_sets: list[list[int]], ops: list[str]
) -> None:
    rules = [_rule(i, s, layer_sets[i], ops[i]) for i, s in enumerate(sels)]
    # Also one explicit-id rule in the middle of file order.
    rules.insert(1, _rule(99, IdsSelector(ids=[0]), [3]))
    for i, r in enumerate(rules):
        r.index = i
    ir = RecipeIR(name="t", params=PARAMS, rules=rules)
    sites = {
        (3, "resid_post"): SiteInfo("sae3", table.n_features),
        (5, "resid_post"): SiteInfo("sae5", table.n_features),
    }
    res = select(ir, {(3, "resid_post", "all"): table, (5, "resid_post", "all"): table}, sites)
    got = {(s.layer, s.site, e.feature): e.rule for s in res.plan.sites for e in s.edits}
    want = reference_plan_edits(ir, lambda layer, site, tokens: table)
    assert got == want
    # Every override names the winner last in file order, and the losers before it.
    order = {r.name: r.index for r in rules}
    for o in res.plan.overrides:
        assert got[(o.layer, o.site, o.feature)] == o.winner
        assert all(order[x] < order[o.winner] for x in o.overridden)
    # mean_ablate edits carry the feature's mean from the statistics table.
    for s in res.plan.sites:
        for e in s.edits:
            if e.op == "mean_ablate":
                assert e.value == table.columns["mean"][e.feature] or (
                    math.isnan(table.columns["mean"][e.feature]) and math.isnan(e.value or 0.0)
                )


def _table() -> StatsTable:
    return StatsTable(
        5,
        {
            "corr:water": np.array([0.9, 0.35, 0.29, -0.5, 0.35]),
            "mean": np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
            "top_concept": np.array(["water", "text", "text", "sky", "bird"], dtype=object),
        },
    )


def _ir(*rules: Rule) -> RecipeIR:
    return RecipeIR(
        name="demo",
        params={"thr": ParamDef(name="thr", type="float", value=0.3)},
        rules=list(rules),
    )


def test_where_threshold_param_and_values_recorded() -> None:
    pred = Compare(op=">", left=Stat(fn="corr", concept="water"), right=ParamRef(name="thr"))
    ir = _ir(_rule(0, WhereSelector(where=pred), [7]))
    res = select(ir, {(7, "resid_post", "all"): _table()}, {(7, "resid_post"): SiteInfo("s", 5)})
    (site,) = res.plan.sites
    assert [e.feature for e in site.edits] == [0, 1, 4]
    assert site.edits[1].stats == {"corr:water": 0.35}
    assert site.edits[1].rule == "r0" and site.edits[1].op == "suppress"
    # feature 2 (0.29) is a near miss of the 0.3 threshold, reported by explain.
    (per,) = res.per_rule
    assert [m["feature"] for m in per.near_misses] == [2]
    assert per.thresholds == [{"stat": "corr:water", "op": ">", "threshold": 0.3}]
    # A --param override changes the selection without recompiling.
    ir.params["thr"].value = 0.5
    res = select(ir, {(7, "resid_post", "all"): _table()}, {(7, "resid_post"): SiteInfo("s", 5)})
    assert [e.feature for e in res.plan.sites[0].edits] == [0]


def test_top_k_ties_broken_by_lower_id_and_string_equality() -> None:
    top = TopSelector(k=2, by=Stat(fn="corr", concept="water"))
    only_text = Compare(op="==", left=Stat(fn="top_concept"), right=Str(value="text"))
    ir = _ir(_rule(0, top, [7]), _rule(1, WhereSelector(where=only_text), [7], "clamp"))
    res = select(ir, {(7, "resid_post", "all"): _table()}, {(7, "resid_post"): SiteInfo("s", 5)})
    assert res.per_rule[0].selected == [0, 1]  # 0.9, then 0.35 tie between 1 and 4 -> 1
    edits = {e.feature: (e.rule, e.op, e.value) for e in res.plan.sites[0].edits}
    assert edits == {0: ("r0", "suppress", None), 1: ("r1", "clamp", 0.5), 2: ("r1", "clamp", 0.5)}
    (ov,) = res.plan.overrides
    assert (ov.feature, ov.winner, ov.overridden) == (1, "r1", ["r0"])
    assert res.per_rule[0].won == [0] and res.per_rule[0].lost_to == {1: "r1"}


def test_mean_ablate_and_explicit_ids() -> None:
    ir = _ir(_rule(0, IdsSelector(ids=[3, 1]), [7], "mean_ablate"))
    res = select(ir, {(7, "resid_post", "all"): _table()}, {(7, "resid_post"): SiteInfo("s", 5)})
    assert [(e.feature, e.value) for e in res.plan.sites[0].edits] == [(1, 2.0), (3, 4.0)]


def test_out_of_range_id_is_a_clear_error() -> None:
    ir = _ir(_rule(0, IdsSelector(ids=[5]), [7]))
    with pytest.raises(SelectionError, match=r"feature 5 is out of range .*0\.\.4"):
        select(ir, {}, {(7, "resid_post"): SiteInfo("s", 5)})


def test_missing_statistic_names_the_column() -> None:
    pred = Compare(op=">", left=Stat(fn="corr", concept="blond"), right=Num(value=0.3))
    ir = _ir(_rule(0, WhereSelector(where=pred), [7]))
    with pytest.raises(SelectionError, match="corr:blond") as e:
        select(ir, {(7, "resid_post", "all"): _table()}, {(7, "resid_post"): SiteInfo("s", 5)})
    assert "concept blond" in (e.value.help or "")


def test_warns_when_a_rule_selects_nothing_or_everything() -> None:
    none_ = Compare(op=">", left=Stat(fn="corr", concept="water"), right=Num(value=0.95))
    all_ = Compare(op=">", left=Stat(fn="mean"), right=Num(value=0.0))
    ir = _ir(_rule(0, WhereSelector(where=none_), [7]), _rule(1, WhereSelector(where=all_), [7]))
    res = select(ir, {(7, "resid_post", "all"): _table()}, {(7, "resid_post"): SiteInfo("s", 5)})
    assert [(w.rule, w.code) for w in res.warnings] == [("r0", "W321"), ("r1", "W322")]
    assert "selects no features" in res.warnings[0].message


@pytest.mark.parametrize("k", [17, 20, 2**63 - 5, 2**64])
def test_top_k_near_the_site_width_selects_k_and_never_quotes_k_plus_10(k: int) -> None:
    # The near-miss list reruns the rule for the next-ranked candidates: it must ask for at most
    # the site's features, and a large K (2**64 passed a float-based whole-number check that
    # K + 10 failed) must select them all, not fail naming a K the user never wrote.
    n = 20
    score = np.arange(n, 0, -1, dtype=np.float64)  # feature i ranks i + 1; no value above n
    table = StatsTable(n, {"corr:water": score})
    params = {"k": ParamDef(name="k", type="int", value=k)}
    top = TopSelector(k=ParamRef(name="k"), by=Stat(fn="corr", concept="water"))
    ir = RecipeIR(name="demo", params=params, rules=[_rule(0, top, [7])])
    res = select(ir, {(7, "resid_post", "all"): table}, {(7, "resid_post"): SiteInfo("s", n)})
    (per,) = res.per_rule
    assert per.selected == list(range(min(k, n)))
    # The features ranked just below the cut, as many as the site has left.
    assert [m["feature"] for m in per.near_misses] == list(range(min(k, n), n))
    assert all(m["reason"] == f"rank {m['feature'] + 1} (K = {k})" for m in per.near_misses)
    assert str(k + 10) not in json.dumps(per.to_json())


def test_top_k_whole_number_check_is_exact_for_ints() -> None:
    table = StatsTable(3, {"corr:water": np.array([0.1, 0.3, 0.2])})
    sites = {(7, "resid_post"): SiteInfo("s", 3)}
    for value, want in [(2, [1, 2]), (2.0, [1, 2])]:
        params = {"k": ParamDef(name="k", type="int", value=value)}
        top = TopSelector(k=ParamRef(name="k"), by=Stat(fn="corr", concept="water"))
        ir = RecipeIR(name="demo", params=params, rules=[_rule(0, top, [7])])
        res = select(ir, {(7, "resid_post", "all"): table}, sites)
        assert res.per_rule[0].selected == want
    for bad in [2.5, -1, math.inf, math.nan]:
        ir.params["k"].value = bad
        with pytest.raises(SelectionError, match=r"`top K` needs a non-negative whole number"):
            select(ir, {(7, "resid_post", "all"): table}, sites)
