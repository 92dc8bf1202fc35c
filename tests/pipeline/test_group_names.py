"""Readable group names (steerlang/pipeline/group_names.py)."""

from __future__ import annotations

from types import SimpleNamespace

from steerlang.lang.api import compile_text
from steerlang.pipeline.evaluate import GroupSpec
from steerlang.pipeline.group_names import readable_group_names

RECIPE = """steer 1
recipe w "names"
model default
dataset waterbirds
task classify y as ["landbird", "waterbird"]
groups y, place
{concepts}
"""


def _names(concepts: str, radices: list[int], value_names: dict | None = None) -> list[str]:
    ir = compile_text(RECIPE.format(concepts=concepts)).ir
    assert ir is not None
    table = SimpleNamespace(meta={"value_names": value_names or {}})
    return readable_group_names(ir, GroupSpec(["y", "place"], radices, None), table)


def test_class_names_and_the_recipe_concept_name_the_groups() -> None:
    got = _names("concept water = place == 1\nconcept land = place == 0", [2, 2])
    assert got == [
        "landbird, water=no",
        "landbird, water=yes",
        "waterbird, water=no",
        "waterbird, water=yes",
    ]


def test_the_first_equality_concept_wins_and_either_side_may_hold_the_column() -> None:
    got = _names("concept land = 0 == place\nconcept water = place == 1", [2, 2])
    assert got[0] == "landbird, land=yes" and got[1] == "landbird, land=no"


def test_without_a_concept_the_declared_value_names_then_raw_values_are_used() -> None:
    declared = _names("", [2, 2], {"place": ["land", "water"]})
    assert declared == [
        "landbird, place=land",
        "landbird, place=water",
        "waterbird, place=land",
        "waterbird, place=water",
    ]
    assert _names("", [2, 3])[2] == "landbird, place=2"


def test_a_concept_on_a_many_valued_column_names_only_its_value() -> None:
    got = _names("concept water = place == 1", [2, 3])
    assert got[:3] == ["landbird, place=0", "landbird, water=yes", "landbird, place=2"]
