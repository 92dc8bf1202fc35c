"""The seeded random control: `random K features [where P]` (steerlang/pipeline/random_draw.py,
docs/language.md §4.3)."""

from __future__ import annotations

import numpy as np
import pytest

from steerlang.pipeline.random_draw import draw_generator, random_draw
from steerlang.pipeline.selection import SiteInfo, select
from steerlang.pipeline.stats_table import StatsTable
from steerlang.plan import (
    Action,
    And,
    Compare,
    Num,
    ParamDef,
    ParamRef,
    RandomSelector,
    RecipeIR,
    Rule,
    Scope,
    Stat,
    Str,
)

ELIGIBLE = np.arange(3, 103, 2)  # 50 ids


def _draw(seed: int = 0, rule_index: int = 0, layer: int = 7, site: str = "resid_post", k: int = 5):
    return random_draw(ELIGIBLE, k, seed=seed, rule_index=rule_index, layer=layer, site=site)


def test_same_inputs_same_draw() -> None:
    a, b = _draw(), _draw()
    assert a.tolist() == b.tolist()
    assert len(a) == 5 and len(set(a.tolist())) == 5
    assert set(a.tolist()) <= set(ELIGIBLE.tolist())
    assert a.tolist() == sorted(a.tolist())


def test_the_documented_scheme_pins_the_draw() -> None:
    """The draw is numpy's PCG64 seeded with SeedSequence([seed, rule index, layer, site
    number]) choosing without replacement; pinned so a change of the scheme is noticed."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([0, 0, 7, 0])))
    want = np.sort(rng.choice(ELIGIBLE, size=5, replace=False))
    assert _draw().tolist() == want.tolist()
    assert draw_generator(0, 0, 7, "resid_post").integers(1 << 30) == np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([0, 0, 7, 0]))
    ).integers(1 << 30)


@pytest.mark.parametrize(
    "change", [{"seed": 1}, {"rule_index": 1}, {"layer": 6}, {"site": "mlp_out"}]
)
def test_every_part_of_the_seed_changes_the_draw(change: dict) -> None:
    assert _draw(**change).tolist() != _draw().tolist()


def test_negative_and_huge_seeds_are_taken_modulo_2_64() -> None:
    assert _draw(seed=-1).tolist() == _draw(seed=2**64 - 1).tolist()


def test_k_at_least_the_eligible_count_takes_them_all() -> None:
    assert _draw(k=50).tolist() == ELIGIBLE.tolist()
    assert _draw(k=80).tolist() == ELIGIBLE.tolist()
    assert (
        random_draw(
            np.array([], dtype=np.int64), 3, seed=0, rule_index=0, layer=0, site="resid_post"
        ).tolist()
        == []
    )


def test_draw_is_uniform() -> None:
    """Over 4,000 seeds, each of the 50 eligible ids is drawn about 4000*5/50 = 400 times:
    Pearson's chi-square (49 degrees of freedom) stays below its 99.9 % point, 85.35; and every
    id appears (no id is excluded by construction)."""
    counts = np.zeros(200, dtype=np.int64)
    for seed in range(4000):
        counts[_draw(seed=seed)] += 1
    obs = counts[ELIGIBLE]
    assert obs.sum() == 20_000 and counts.sum() == 20_000
    chi2 = float(((obs - 400.0) ** 2 / 400.0).sum())
    assert chi2 < 85.35, chi2
    assert obs.min() > 300 and obs.max() < 500


def _ir(k: int | str, seed: int = 0, *, layers: tuple[int, ...] = (7,)) -> RecipeIR:
    where = Compare(op=">", left=Stat(fn="freq"), right=Num(value=0.0))
    kk = ParamRef(name="k") if isinstance(k, str) else k
    rule = Rule(
        name="control",
        index=0,
        scope=Scope(layers=list(layers)),
        action=Action(op="suppress"),
        selector=RandomSelector(k=kk, where=where),
    )
    return RecipeIR(
        name="t",
        rules=[rule],
        settings={"seed": seed},
        params={"k": ParamDef(name="k", type="int", value=4)},
    )


def _table() -> StatsTable:
    freq = np.zeros(40)
    freq[::3] = 0.2  # 14 live features: 0, 3, ..., 39
    return StatsTable(40, {"freq": freq})


def _select(ir: RecipeIR, layers: tuple[int, ...] = (7,)):  # noqa: ANN202
    table = _table()
    sites = {(layer, "resid_post"): SiteInfo("sae", 40) for layer in layers}
    tables = {(layer, "resid_post", "all"): table for layer in layers}
    return select(ir, tables, sites)


def test_select_draws_from_the_where_candidates() -> None:
    res = _select(_ir(5, seed=3))
    ids = [e.feature for e in res.plan.sites[0].edits]
    live = np.flatnonzero(_table().columns["freq"] > 0)
    want = random_draw(live, 5, seed=3, rule_index=0, layer=7, site="resid_post")
    assert ids == want.tolist()
    assert res.per_rule[0].candidates == 14
    assert res.warnings == []
    # the same recipe, a second time: the same draw
    assert [e.feature for e in _select(_ir(5, seed=3)).plan.sites[0].edits] == ids
    assert [e.feature for e in _select(_ir(5, seed=4)).plan.sites[0].edits] != ids


def test_param_count_and_per_layer_draws() -> None:
    res = _select(_ir("k", layers=(5, 7)), layers=(5, 7))
    a, b = ([e.feature for e in s.edits] for s in res.plan.sites)
    assert len(a) == len(b) == 4 and a != b


def test_more_than_the_candidates_warns_w324() -> None:
    res = _select(_ir(20))
    assert len(res.plan.sites[0].edits) == 14
    (w,) = res.warnings
    assert w.code == "W324"
    assert w.message == (
        "rule `control` draws 20 random features but only 14 satisfy its `where` at "
        "layer 7 resid_post: it selects all 14"
    )


def test_a_switched_off_arm_is_silent() -> None:
    """`where ... and arm == "random"` while arm is "targeted": nothing selected, no W321 or
    W324 (the arm is not running); the same rule switched on draws as usual."""
    where = Compare(op="==", left=ParamRef(name="arm"), right=Str(value="random"))
    rule = Rule(
        name="control",
        index=0,
        scope=Scope(layers=[7]),
        action=Action(op="suppress"),
        selector=RandomSelector(k=4, where=And(args=[_ir(4).rules[0].selector.where, where])),
    )
    params = {"arm": ParamDef(name="arm", type="str", value="targeted")}
    off = _select(RecipeIR(name="t", rules=[rule], params=params))
    assert off.plan.sites[0].edits == [] and off.warnings == []
    params["arm"] = ParamDef(name="arm", type="str", value="random")
    on = _select(RecipeIR(name="t", rules=[rule], params=params))
    assert len(on.plan.sites[0].edits) == 4 and on.warnings == []
    # a rule that selects nothing for a data reason still warns
    empty = Compare(op=">", left=Stat(fn="freq"), right=Num(value=5.0))
    rule.selector = RandomSelector(k=4, where=empty)
    (w,) = _select(RecipeIR(name="t", rules=[rule])).warnings
    assert w.code == "W321"
