"""Strongest-first order of a rule's selected features (steerlang/pipeline/strength.py), as
`steer explain --top` and the feature cards use it."""

from __future__ import annotations

import numpy as np

from steerlang.pipeline.selection import SiteInfo, select
from steerlang.pipeline.stats_table import StatsTable
from steerlang.plan import (
    Action,
    And,
    Compare,
    IdsSelector,
    Num,
    Or,
    RecipeIR,
    Rule,
    Scope,
    Stat,
    TopSelector,
    WhereSelector,
)

WATER = Stat(fn="corr", concept="water")
LAND = Stat(fn="corr", concept="land")
FREQ = Stat(fn="freq")


def _table() -> StatsTable:
    water = np.array([0.1, 0.5, 0.9, -0.7, 0.45, 0.5, 0.0, -0.95])
    return StatsTable(
        8,
        {
            "corr:water": water,
            "corr:land": -water,
            "freq": np.array([0.2, 0.01, 0.5, 0.3, 0.9, 0.02, 0.0, 0.4]),
            "mean": np.zeros(8),
        },
    )


def _plan(selector: object) -> list[int]:
    rule = Rule(
        name="r",
        index=0,
        scope=Scope(layers=[7]),
        action=Action(op="suppress"),
        selector=selector,  # type: ignore[arg-type]
    )
    ir = RecipeIR(name="t", rules=[rule])
    table = _table()
    sel = select(ir, {(7, "resid_post", "all"): table}, {(7, "resid_post"): SiteInfo("s", 8)})
    res = sel.per_rule[0]
    assert sorted(res.strongest()) == sorted(res.selected)
    assert sel.explain_json()["rules"][0]["top"][0]["feature"] == res.strongest()[0]
    return res.strongest()


def test_where_rule_orders_by_distance_past_the_threshold() -> None:
    # corr(water) > 0.4: margins 0.1 (f1), 0.5 (f2), 0.05 (f4), 0.1 (f5); ties by lower id.
    assert _plan(WhereSelector(where=Compare(op=">", left=WATER, right=Num(value=0.4)))) == [
        2,
        1,
        5,
        4,
    ]
    # `<` passes by threshold - value.
    assert _plan(WhereSelector(where=Compare(op="<", left=FREQ, right=Num(value=0.1)))) == [
        6,
        1,
        5,
    ]


def test_or_takes_the_crossed_branch_and_and_the_tightest() -> None:
    either = Or(
        args=[
            Compare(op=">", left=WATER, right=Num(value=0.4)),
            Compare(op=">", left=LAND, right=Num(value=0.4)),
        ]
    )
    # f7 crosses corr(land) > 0.4 by 0.55, f3 by 0.3, f2 corr(water) by 0.5.
    assert _plan(WhereSelector(where=either)) == [7, 2, 3, 1, 5, 4]
    both = And(
        args=[
            Compare(op=">", left=WATER, right=Num(value=0.4)),
            Compare(op=">", left=FREQ, right=Num(value=0.0)),
        ]
    )
    # min(margins): f2 min(0.5, 0.5) = 0.5, f4 min(0.05, 0.9), f5 min(0.1, 0.02), f1 0.01.
    assert _plan(WhereSelector(where=both)) == [2, 4, 5, 1]


def test_top_and_ids_keep_their_own_order() -> None:
    assert _plan(TopSelector(k=3, by=FREQ)) == [4, 2, 7]
    assert _plan(IdsSelector(ids=[5, 0, 3])) == [5, 0, 3]
