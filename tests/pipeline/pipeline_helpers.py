"""Recipe IRs built by hand for the pipeline tests (the runtime consumes RecipeIR only), and a
collector of the cache's warnings."""

from __future__ import annotations

import logging
from pathlib import Path

from steerlang.plan import (
    Action,
    Column,
    Compare,
    ConceptDef,
    IdsSelector,
    Num,
    ParamDef,
    ParamRef,
    RecipeIR,
    Rule,
    Scope,
    Stat,
    Task,
    TopSelector,
    WhereSelector,
)


def waterbirds_ir(sae_dirs: dict[int, Path], *, thr: float = 0.05) -> RecipeIR:
    water = Compare(op="==", left=Column(name="place"), right=Num(value=1))
    rules = [
        Rule(
            name="bg",
            index=0,
            scope=Scope(layers=[3]),
            action=Action(op="suppress"),
            selector=WhereSelector(
                where=Compare(
                    op=">", left=Stat(fn="corr", concept="water"), right=ParamRef(name="thr")
                )
            ),
        ),
        Rule(
            name="top",
            index=1,
            scope=Scope(layers=[7], tokens="patches"),
            action=Action(op="scale", value=Num(value=0.5)),
            selector=TopSelector(k=3, by=Stat(fn="corr", concept="water")),
        ),
        Rule(
            name="pin",
            index=2,
            scope=Scope(layers=[7]),
            action=Action(op="mean_ablate"),
            selector=IdsSelector(ids=[1, 2]),
        ),
    ]
    return RecipeIR(
        name="wb-test",
        description="remove the background shortcut",
        model="default",
        dataset="wb",
        task=Task(label="y", classes=["landbird", "waterbird"], prompts=["a photo of a {}."]),
        groups=["y", "place"],
        concepts={"water": ConceptDef(name="water", expr=water)},
        params={"thr": ParamDef(name="thr", type="float", value=thr)},
        saes={f"{k}:resid_post": str(v) for k, v in sae_dirs.items()},
        settings={"batch_size": 16},
        rules=rules,
    )


class CacheWarnings(logging.Handler):
    """The warnings of `steerlang.cache`, collected directly: the CLI tests switch off the
    package logger's propagation (steerlang/commands/options.py), which `caplog` relies on."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
