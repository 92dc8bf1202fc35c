"""Functions of expressions, per-feature targets and `corr(not c)` at run time
(steerlang/pipeline/exprs.py, steerlang/pipeline/selection.py; docs/language.md §4.2, §5.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from steerlang.pipeline.exprs import Evaluator, ExpressionError
from steerlang.pipeline.selection import SiteInfo, select, select_rule_vectorised
from steerlang.pipeline.statistics import FeatureStatsAccumulator
from steerlang.pipeline.stats_table import StatsTable
from steerlang.plan import (
    Action,
    And,
    Compare,
    Fn,
    IdsSelector,
    Num,
    ParamRef,
    RecipeIR,
    Rule,
    Scope,
    Stat,
    TopSelector,
    WhereSelector,
    stat_key,
)

NAN = math.nan
MEAN = Stat(fn="mean")


def _ev(col: list[float], params: dict | None = None) -> Evaluator:
    arr = np.asarray(col, dtype=np.float64)
    return Evaluator(lambda e: arr, params or {}, len(arr), label="rule `t`")


def _same(got: np.ndarray, want: list[float]) -> None:
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float64))  # NaN == NaN here


def test_row_functions_exact_values() -> None:
    ev = _ev([-2.0, 0.0, 3.0, NAN])
    _same(ev(Fn(fn="abs", args=[MEAN])), [2.0, 0.0, 3.0, NAN])
    _same(ev(Fn(fn="min", args=[MEAN, Num(value=1.0)])), [-2.0, 0.0, 1.0, NAN])
    _same(ev(Fn(fn="max", args=[MEAN, Num(value=1.0)])), [1.0, 1.0, 3.0, NAN])
    _same(ev(Fn(fn="log", args=[MEAN])), [NAN, NAN, math.log(3.0), NAN])
    assert ev.domain_nan == 2  # -2 and 0; the NaN row was NaN already
    assert ev(Fn(fn="log", args=[Num(value=math.e)])) == 1.0


def test_log_of_non_positive_is_never_selected() -> None:
    ev = _ev([-2.0, 0.0, 3.0, NAN])
    below = ev.mask(Compare(op="<", left=Fn(fn="log", args=[MEAN]), right=Num(value=5.0)))
    assert below.tolist() == [False, False, True, False]


def test_rank_is_one_based_descending_ties_by_lower_id() -> None:
    ev = _ev([0.5, NAN, 0.9, 0.5, -1.0])
    _same(ev(Fn(fn="rank", args=[MEAN])), [2.0, NAN, 1.0, 3.0, 4.0])
    # rank(-E) counts from the smallest
    _same(ev(Fn(fn="rank", args=[Fn(fn="abs", args=[MEAN])])), [3.0, NAN, 2.0, 4.0, 1.0])


@pytest.mark.parametrize(
    ("q", "want"), [(0.0, 1.0), (0.5, 2.5), (1.0, 4.0), (0.25, 1.75), (0.9, 3.7)]
)
def test_quantile_linear_interpolation_without_nan(q: float, want: float) -> None:
    got = _ev([4.0, NAN, 1.0, 3.0, 2.0])(Fn(fn="quantile", args=[MEAN, Num(value=q)]))
    assert got == pytest.approx(want, abs=1e-12)


def test_quantile_of_all_nan_is_nan_and_level_is_checked() -> None:
    assert math.isnan(_ev([NAN, NAN])(Fn(fn="quantile", args=[MEAN, Num(value=0.5)])))
    ev = _ev([1.0, 2.0], {"q": 1.5})
    with pytest.raises(ExpressionError, match="must be one number in \\[0, 1\\], got 1.5"):
        ev(Fn(fn="quantile", args=[MEAN, ParamRef(name="q")]))
    with pytest.raises(ExpressionError, match="one number"):
        _ev([1.0, 2.0])(Fn(fn="quantile", args=[MEAN, MEAN]))


def _rule(sel: object, *, op: str = "suppress", value: object = None, index: int = 0) -> Rule:
    return Rule(
        name=f"r{index}",
        index=index,
        scope=Scope(layers=[7]),
        action=Action(op=op, value=value),  # type: ignore[arg-type]
        selector=sel,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("seed", range(5))
def test_rank_at_most_k_is_top_k(seed: int) -> None:
    rng = np.random.default_rng(seed)
    col = rng.choice([-1.0, 0.0, 0.2, 0.2, 0.7, NAN], size=60)  # ties and NaN
    table = StatsTable(60, {"corr:c": col})
    by = Stat(fn="corr", concept="c")
    for k in (1, 5, 17, 60):
        top, _ = select_rule_vectorised(_rule(TopSelector(k=k, by=by)), table, {})
        rk = Compare(op="<=", left=Fn(fn="rank", args=[by]), right=Num(value=float(k)))
        where, _ = select_rule_vectorised(_rule(WhereSelector(where=rk)), table, {})
        assert sorted(top.tolist()) == where.tolist()


def test_quantile_selects_the_top_share() -> None:
    table = StatsTable(100, {"corr:c": np.arange(100, dtype=np.float64) / 100})
    c = Stat(fn="corr", concept="c")
    pred = Compare(op=">", left=c, right=Fn(fn="quantile", args=[c, Num(value=0.9)]))
    ids, _ = select_rule_vectorised(_rule(WhereSelector(where=pred)), table, {})
    assert ids.tolist() == list(range(90, 100))  # 0.9-quantile = 0.891


def _plan(rule: Rule, table: StatsTable) -> dict[int, float | None]:
    res = select(
        RecipeIR(name="t", rules=[rule]),
        {(7, "resid_post", "all"): table},
        {(7, "resid_post"): SiteInfo("sae", table.n_features)},
    )
    return {e.feature: e.value for e in res.plan.sites[0].edits}


TABLE = StatsTable(
    5,
    {
        "mean": np.array([0.1, 0.2, 0.3, 0.4, 0.5]),
        "mean:c": np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        "mean_not:c": np.array([-1.0, -2.0, -3.0, -4.0, -5.0]),
        "max": np.array([9.0, 8.0, 7.0, 6.0, 5.0]),
        "corr:c": np.array([0.9, -0.5, 0.4, 0.0, -0.95]),
        "corr_not:c": -np.array([0.9, -0.5, 0.4, 0.0, -0.95]),
        "freq": np.array([0.1, 0.0, 0.3, 0.2, 0.5]),
    },
)


@pytest.mark.parametrize(
    "target",
    [
        Stat(fn="mean"),
        Stat(fn="mean", concept="c"),
        Stat(fn="mean", concept="c", negated=True),
        Stat(fn="max"),
    ],
)
def test_per_feature_target_uses_each_features_own_value(target: Stat) -> None:
    sel = IdsSelector(ids=[0, 3, 4])
    got = _plan(_rule(sel, op="clamp", value=target), TABLE)
    col = TABLE.columns[stat_key(target)]
    assert got == {0: col[0], 3: col[3], 4: col[4]}


def test_clamp_to_mean_equals_mean_ablate() -> None:
    where = WhereSelector(where=Compare(op=">", left=Stat(fn="freq"), right=Num(value=0.0)))
    clamp = _plan(_rule(where, op="clamp", value=Stat(fn="mean")), TABLE)
    ablate = _plan(_rule(where, op="mean_ablate"), TABLE)
    assert clamp == ablate == {0: 0.1, 2: 0.3, 3: 0.4, 4: 0.5}


def test_log_domain_warning_w325() -> None:
    pred = Compare(op=">", left=Fn(fn="log", args=[Stat(fn="freq")]), right=Num(value=-2.0))
    res = select(
        RecipeIR(name="t", rules=[_rule(WhereSelector(where=pred))]),
        {(7, "resid_post", "all"): TABLE},
        {(7, "resid_post"): SiteInfo("sae", 5)},
    )
    assert [e.feature for e in res.plan.sites[0].edits] == [2, 3, 4]  # log(0.1) = -2.3
    (w,) = res.warnings
    assert w.code == "W325" and "for 1 feature value(s) at layer 7 resid_post" in w.message


def test_corr_not_is_exactly_minus_corr() -> None:
    """From the statistics pass: corr(not c) is exactly -corr(c), and agrees (to rounding) with
    the correlation against the complemented indicator computed as its own concept."""
    rng = np.random.default_rng(1)
    acts = np.maximum(rng.normal(size=(40, 3, 8)), 0.0).astype(np.float32)
    c = rng.random(40) < 0.35
    acc = FeatureStatsAccumulator(8, ["c", "notc"])
    acc.update(torch.from_numpy(acts), torch.from_numpy(np.stack([c, ~c], axis=1)))
    cols = acc.finalize()
    assert np.array_equal(cols["corr_not:c"], -cols["corr:c"])
    np.testing.assert_allclose(cols["corr:notc"], -cols["corr:c"], rtol=1e-9, atol=1e-12)
    # and selecting on it: corr(not c) > t is corr(c) < -t
    table = StatsTable(8, cols)
    for t in (-0.2, 0.0, 0.1):
        a = Compare(op=">", left=Stat(fn="corr", concept="c", negated=True), right=Num(value=t))
        b = Compare(op="<", left=Stat(fn="corr", concept="c"), right=Num(value=-t))
        ia, _ = select_rule_vectorised(_rule(WhereSelector(where=a)), table, {})
        ib, _ = select_rule_vectorised(_rule(WhereSelector(where=b)), table, {})
        assert ia.tolist() == ib.tolist()


def test_steerability_sweep_is_not_narrowed_under_rank_or_quantile() -> None:
    """The sweep skips features that fail a cheap conjunct; with `rank`/`quantile` every
    feature's steerability changes the others' values, so nothing may be skipped."""
    from steerlang.pipeline.steer_pass import steer_units_needed

    cheap = Compare(op=">", left=Stat(fn="freq"), right=Num(value=0.15))
    steer = Stat(fn="steerability")
    tables = {(7, "resid_post", "all"): TABLE}

    def needed(cond: object) -> object:
        where = WhereSelector(where=And(args=[cheap, cond]))  # type: ignore[list-item]
        ir = RecipeIR(name="t", rules=[_rule(where)])
        return steer_units_needed(ir, (7, "resid_post"), tables)

    plain = needed(Compare(op=">", left=steer, right=Num(value=0.1)))
    assert plain is not None and plain.tolist() == [2, 3, 4]
    ranked = Compare(op="<=", left=Fn(fn="rank", args=[steer]), right=Num(value=2.0))
    assert needed(ranked) is None
    q = Fn(fn="quantile", args=[steer, Num(value=0.9)])
    assert needed(Compare(op=">", left=steer, right=q)) is None
    # row-by-row functions keep the narrowing
    assert (
        needed(Compare(op=">", left=Fn(fn="abs", args=[steer]), right=Num(value=0.1))) is not None
    )


@pytest.mark.parametrize("place", [["0", "1", "1", "0"], [0, 1, 1, 0]])
def test_math_functions_in_concepts_over_columns(place: list) -> None:
    from steerlang.pipeline.statistics import evaluate_concepts
    from steerlang.plan import Arith, Column

    far = Compare(
        op=">",
        left=Fn(fn="abs", args=[Arith(op="-", left=Column(name="place"), right=Num(value=1.0))]),
        right=Num(value=0.0),
    )
    got = evaluate_concepts({"far": far}, lambda n: place, 4)
    assert got["far"].tolist() == [True, False, False, True]
