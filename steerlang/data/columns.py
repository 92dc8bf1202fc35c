"""The dataset columns a recipe reads, checked against a loaded table before any pass runs.

The compiler checks columns against the fixed column lists of the known formats
(steerlang/facts.py); a `table` or `hf_datasets` dataset, or extra columns of a known format,
only show their columns once loaded. This check runs when the runtime binds the dataset, so a
misspelt column is reported with a did-you-mean before a model or a statistics pass is paid
for, in the same words as the table's own column lookup (steerlang/data/table.py).
"""

from __future__ import annotations

from typing import Any

from steerlang.errors import DatasetError, did_you_mean
from steerlang.facts import ATTACK_COLUMNS
from steerlang.plan import Column, RecipeIR


def recipe_columns(ir: RecipeIR) -> dict[str, str]:
    """Column name -> where the recipe reads it (`concept water`, `task`, `groups`), in
    recipe order; the attacked copies' columns are left out (the attack adds them)."""
    used: dict[str, str] = {}
    if ir.task is not None:
        used.setdefault(ir.task.label, "the task (`task classify ...`)")
    for g in ir.groups:
        used.setdefault(g, "`groups`")
    for name, concept in ir.concepts.items():
        for col in _columns_of(concept.expr):
            used.setdefault(col, f"concept `{name}`")
    return {c: w for c, w in used.items() if c not in ATTACK_COLUMNS}


def check_recipe_columns(ir: RecipeIR, table: Any) -> None:
    """A DatasetError for the first column the recipe reads that `table` lacks."""
    have = set(table.columns) | {"path"}
    for col, where in recipe_columns(ir).items():
        if col in have:
            continue
        guess = did_you_mean(col, sorted(have))
        origin = table.meta.get("table_file") or str(table.root)
        raise DatasetError(
            f"{where} reads the column '{col}', which dataset '{table.name}' ({table.format}, "
            f"{origin}) does not have",
            help=(f"did you mean '{guess}'? " if guess else "")
            + f"available columns: {', '.join(table.columns)}",
        )


def _columns_of(expr: Any) -> list[str]:
    """Column names in an IR expression tree, depth first, left to right."""
    out: list[str] = []
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, Column):
            out.append(e.name)
            continue
        kids = [getattr(e, k) for k in ("left", "right", "arg") if hasattr(e, k)]
        kids += list(getattr(e, "args", None) or [])
        stack.extend(reversed([k for k in kids if k is not None]))
    return out
