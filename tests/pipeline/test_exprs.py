"""The one expression evaluator: IEEE semantics, the two data options and loosened comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steerlang.pipeline.exprs import Evaluator, ExpressionError, numeric_constant, stats_in
from steerlang.plan import (
    And,
    Arith,
    Column,
    Compare,
    Neg,
    Not,
    Num,
    ParamDef,
    ParamRef,
    Stat,
    Str,
    stat_key,
)

COLS = {
    "mean": np.array([1.0, 0.0, -2.0, math.nan]),
    "max": np.array([0.0, 0.0, 4.0, 1.0]),
    "top_concept": np.array(["a", "b", "a", "c"], dtype=object),
}
PARAMS = {"t": ParamDef(name="t", type="float", value=0.5), "raw": 2}


def _stats(**kw: object) -> Evaluator:
    return Evaluator(lambda e: COLS[stat_key(e)], PARAMS, 4, label="rule `r`", **kw)  # type: ignore[arg-type]


X, Y, WORD = Stat(fn="mean"), Stat(fn="max"), Stat(fn="top_concept")


def test_ieee_division_and_nan_comparisons() -> None:
    ev = _stats()
    q = ev(Arith(op="/", left=X, right=Y))
    assert q[0] == math.inf and math.isnan(q[1]) and q[2] == -0.5 and math.isnan(q[3])
    gt = Compare(op=">", left=X, right=Num(value=0.0))
    assert ev.mask(gt).tolist() == [True, False, False, False]
    assert ev.mask(Not(arg=gt)).tolist() == [False, True, True, True]  # NaN > 0 is false


def test_leaves_params_and_constants() -> None:
    ev = _stats()
    assert ev(Arith(op="*", left=ParamRef(name="t"), right=ParamRef(name="raw"))) == 1.0
    assert ev.values(Num(value=3.0)).tolist() == [3.0] * 4
    assert ev.mask(Compare(op="<", left=Num(value=1.0), right=Num(value=2.0))).all()
    assert numeric_constant(Neg(arg=ParamRef(name="t")), PARAMS) == -0.5
    assert numeric_constant(Str(value="a"), PARAMS) is None
    with pytest.raises(ExpressionError, match="param `nope` has no value"):
        ev(ParamRef(name="nope"))


def test_statistics_columns_are_strictly_typed() -> None:
    ev = _stats()
    assert ev.mask(Compare(op="==", left=WORD, right=Str(value="a"))).tolist() == [
        True,
        False,
        True,
        False,
    ]
    with pytest.raises(ExpressionError, match="comparison `<` needs a number"):
        ev(Compare(op="<", left=WORD, right=Str(value="a")))
    with pytest.raises(ExpressionError, match="`\\+` needs a number"):
        ev(Arith(op="+", left=WORD, right=Num(value=1.0)))
    with pytest.raises(ExpressionError, match="rule `r`: a predicate must be true/false"):
        ev.mask(And(args=[X, Compare(op=">", left=Y, right=Num(value=0.0))]))


def test_dataset_columns_compare_as_text_and_allow_bare_columns() -> None:
    ev = Evaluator(
        lambda e: COLS[e.name],  # type: ignore[union-attr]
        {},
        4,
        label="concept `c`",
        text_columns=True,
        strict_logic=False,
    )
    # A numeric column against a string literal compares as text ("1" == "1").
    assert ev(Compare(op="==", left=Column(name="mean"), right=Str(value="1"))).tolist() == [
        True,
        False,
        False,
        False,
    ]
    assert ev(Compare(op="<", left=Column(name="top_concept"), right=Str(value="b"))).tolist() == [
        True,
        False,
        True,
        False,
    ]
    # A bare column in `and` counts its nonzero values (NaN included, as numpy does).
    assert ev(And(args=[Column(name="mean"), Column(name="max")])).tolist() == [
        False,
        False,
        True,
        True,
    ]


def test_eps_loosens_comparisons_and_tightens_under_not() -> None:
    gt = Compare(op=">", left=X, right=Num(value=1.02))
    exact = _stats().mask(gt)
    relaxed = _stats(eps=0.05).mask(gt)
    assert (relaxed & ~exact).tolist() == [True, False, False, False]  # 1.0 missed by 0.02
    le = Not(arg=Compare(op=">", left=X, right=Num(value=0.98)))
    exact = _stats().mask(le)
    relaxed = _stats(eps=0.05).mask(le)
    assert (relaxed & ~exact).tolist() == [True, False, False, False]


def test_stats_in_is_ordered_and_unique() -> None:
    e = And(
        args=[
            Compare(op=">", left=X, right=Y),
            Not(arg=Compare(op="<", left=X, right=Num(value=0))),
        ]
    )
    assert [stat_key(s) for s in stats_in(e)] == ["mean", "max"]
