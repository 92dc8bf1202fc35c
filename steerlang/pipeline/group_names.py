"""Readable group names: "waterbird, water=no" rather than `y=1,place=0`.

Each group is a combination of the group columns' values (steerlang/pipeline/evaluate.py
`GroupSpec`, mixed radix). A value is named, in this order of preference:

1. the task's class name, when the column is the task's label column (`task classify y as
   ["landbird", "waterbird"]`: y=1 is "waterbird");
2. a recipe concept defined as `column == value` (`concept water = place == 1`): "water=yes"
   for that value and "water=no" for the others of a two-valued column (a column with more
   values names only the matching one "water" and the others by rule 3 or 4);
3. the value name the dataset's format declares (Waterbirds' place: land, water): "place=land";
4. the raw value: "place=0".

The raw `column=value` form stays in report.json (`group_keys`) for scripts.
"""

from __future__ import annotations

from typing import Any

from steerlang.plan import Column, Compare, Num, RecipeIR


def _equality_concepts(ir: RecipeIR) -> dict[str, tuple[str, float]]:
    """column -> (concept name, value) for the first concept of the form `column == value`."""
    out: dict[str, tuple[str, float]] = {}
    for name, c in ir.concepts.items():
        e = c.expr
        if not isinstance(e, Compare) or e.op != "==":
            continue
        col, num = (e.left, e.right) if isinstance(e.left, Column) else (e.right, e.left)
        if isinstance(col, Column) and isinstance(num, Num):
            out.setdefault(col.name, (name, float(num.value)))
    return out


def value_name(
    ir: RecipeIR, column: str, value: int, radix: int, declared: list[str] | None
) -> str:
    """The readable name of one value of one group column (rules in the module docstring)."""
    task = ir.task
    if task is not None and column == task.label and 0 <= value < len(task.classes):
        return task.classes[value]
    concept = _equality_concepts(ir).get(column)
    if concept is not None:
        name, v = concept
        if float(value) == v:
            return f"{name}=yes"
        if radix == 2:
            return f"{name}=no"
    if declared and 0 <= value < len(declared):
        return f"{column}={declared[value]}"
    return f"{column}={value}"


def readable_group_names(ir: RecipeIR, spec: Any, table: Any) -> list[str]:
    """One readable name per group id of `spec` (a GroupSpec), in group-id order."""
    from steerlang.pipeline.evaluate import declared_values

    declared = {c: declared_values(table, c) for c in spec.columns}
    names = []
    for g in range(spec.n_groups):
        parts = []
        rem = g
        for col, r in zip(reversed(spec.columns), reversed(spec.radices), strict=True):
            parts.append(value_name(ir, col, rem % r, r, declared[col]))
            rem //= r
        names.append(", ".join(reversed(parts)))
    return names
