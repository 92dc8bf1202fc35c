"""benchmarks/select_settings.py without running a grid: the selection rule (best metric, then
the tie-break, then grid order), the table, and that every shipped recipe carries the values
docs/selection.md says the validation grid chose."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import select_settings as ss  # noqa: E402

SEL = ss.Selection(
    "x",
    "recipes/x.steer",
    ("L=0..2", "thr=0.1,0.2"),
    "steered_worst_group",
    "steered_average_plain",
    "worst group",
)


def _entry(i: int, L: int, thr: float, wg: float, avg: float) -> dict[str, Any]:
    return {
        "index": i,
        "params": {"L": L, "thr": thr},
        "metrics": {"steered": {"worst_group": wg, "average_plain": avg}},
    }


def _report(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"grid_params": ["L", "thr"], "grid": entries}


def test_best_metric_wins_then_the_tie_break_then_grid_order() -> None:
    es = [
        _entry(0, 0, 0.1, 0.5, 0.9),
        _entry(1, 0, 0.2, 0.7, 0.6),
        _entry(2, 1, 0.1, 0.7, 0.8),  # same worst group as 1, better average: wins
        _entry(3, 1, 0.2, 0.7, 0.8),  # an exact tie with 2: the earlier point keeps it
        _entry(4, 2, 0.1, 0.6, 0.99),
    ]
    assert ss.choose(SEL, _report(es)) is es[2]


def test_table_marks_the_winner() -> None:
    es = [_entry(0, 0, 0.1, 0.5, 0.9), _entry(1, 0, 0.2, 0.75, 0.6)]
    rows = ss.table(SEL, _report(es), es[1])
    assert rows == ["| L | thr = 0.1 | thr = 0.2 |", "|---|---|---|", "| 0 | 50.0 | **75.0** |"]


def test_recipe_params_are_the_compilers() -> None:
    assert ss.recipe_params("recipes/controls.steer") == {"arm": "targeted", "k": 64, "L": 7}


def test_shipped_recipes_carry_the_values_the_validation_grid_chose() -> None:
    doc = (REPO / "docs" / "selection.md").read_text(encoding="utf-8")
    for sel in ss.SELECTIONS:
        section = doc.split(f"## {sel.name} (`{sel.recipe}`)")[1].split("\n## ")[0]
        winner = re.search(r"Winner: (.*?) \(", section)
        assert winner is not None, sel.name
        values = ss.recipe_params(sel.recipe)
        chosen = dict(re.findall(r"`(\w+) = ([^`]+)`", winner.group(1)))
        for name, value in chosen.items():
            assert float(values[name]) == float(value), (sel.name, name)
        for recipe, names in sel.followers:
            theirs = ss.recipe_params(recipe)
            for name in names:
                assert float(theirs[name]) == float(chosen[name]), (recipe, name)
