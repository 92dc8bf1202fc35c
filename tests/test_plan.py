"""The IR and plan models: JSON round-trips and torch-free import."""

import subprocess
import sys

from steerlang.plan import (
    Action,
    And,
    Compare,
    FeatureEdit,
    InterventionPlan,
    Num,
    ParamDef,
    ParamRef,
    RecipeIR,
    Rule,
    Scope,
    SitePlan,
    Stat,
    TopSelector,
    WhereSelector,
    stat_key,
)


def _ir() -> RecipeIR:
    pred = And(
        args=[
            Compare(op=">", left=Stat(fn="corr", concept="water"), right=ParamRef(name="thr")),
            Compare(op="<", left=Stat(fn="freq"), right=Num(value=0.5)),
        ]
    )
    return RecipeIR(
        name="wb",
        params={"thr": ParamDef(name="thr", type="float", value=0.3)},
        rules=[
            Rule(
                name="r1",
                index=0,
                scope=Scope(layers=[7]),
                action=Action(op="suppress"),
                selector=WhereSelector(where=pred),
            ),
            Rule(
                name="r2",
                index=1,
                scope=Scope(layers=[5, 6], tokens="patches"),
                action=Action(op="scale", value=Num(value=0.5)),
                selector=TopSelector(k=10, by=Stat(fn="corr", concept="water")),
            ),
        ],
    )


def test_ir_json_round_trip() -> None:
    ir = _ir()
    assert RecipeIR.model_validate_json(ir.model_dump_json()) == ir


def test_plan_json_round_trip() -> None:
    plan = InterventionPlan(
        recipe="wb",
        model="default",
        sites=[
            SitePlan(
                layer=7,
                sae="zoo:layer7",
                edits=[FeatureEdit(feature=3, op="suppress", rule="r1", rule_index=0)],
            )
        ],
    )
    assert InterventionPlan.model_validate_json(plan.model_dump_json()) == plan
    assert plan.n_edits == 1


def test_stat_keys() -> None:
    assert stat_key(Stat(fn="corr", concept="water")) == "corr:water"
    assert stat_key(Stat(fn="mean", concept="water", negated=True)) == "mean_not:water"
    assert stat_key(Stat(fn="mean")) == "mean"
    assert stat_key(Stat(fn="promotes", word="text")) == "promotes:text"


def test_plan_module_imports_without_torch() -> None:
    code = "import sys, steerlang.plan, steerlang.diagnostics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
