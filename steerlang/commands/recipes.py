"""Recipe files into RecipeIR for the runtime commands (run, plan, explain, sweep).

This is where the command line meets the language layer: a command compiles the recipe here and
hands the pipeline the RecipeIR only, so the runtime never reads recipe text. The language
layer loads inside the function, keeping command registration cheap.
"""

from __future__ import annotations

import sys

from steerlang.commands.dataset_columns import ColumnsReader
from steerlang.commands.options import write
from steerlang.plan import RecipeIR


def compile_or_report(
    recipe: str,
    params: dict[str, str],
    *,
    allow_include_outside: bool = False,
    dataset_columns: ColumnsReader | None = None,
) -> RecipeIR | None:
    """Compile `recipe` with the `--param` overrides (and `--allow-include-outside`); on errors
    print the diagnostics and an `error:` line on stderr and return None. `dataset_columns`
    (steerlang/commands/dataset_columns.py) gives the bound dataset's real columns.

    Warnings are printed on stderr either way, so stdout stays clean for JSON.
    """
    from steerlang.lang.api import compile_file

    res = compile_file(
        recipe,
        params=params or None,
        allow_include_outside=allow_include_outside,
        dataset_columns=dataset_columns,
    )
    if not res.ok or res.ir is None:
        n = len(res.errors) or 1
        write(sys.stderr, res.render(color=False))
        print(f"error: {recipe}: {n} error{'s' if n != 1 else ''} in the recipe", file=sys.stderr)
        return None
    if res.warnings:
        write(sys.stderr, res.render(color=False))
    return res.ir


def compile_points(
    recipe: str,
    points: list[dict[str, str]],
    *,
    allow_include_outside: bool = False,
    dataset_columns: ColumnsReader | None = None,
) -> list[RecipeIR] | None:
    """Compile `recipe` once per grid point (its values as `--param` overrides). Warnings are
    printed once (they do not depend on the values); errors name the point they belong to and
    stop before anything is loaded."""
    from steerlang.lang.api import compile_file

    irs: list[RecipeIR] = []
    for i, params in enumerate(points):
        res = compile_file(
            recipe,
            params=params or None,
            allow_include_outside=allow_include_outside,
            dataset_columns=dataset_columns,
        )
        if not res.ok or res.ir is None:
            n = len(res.errors) or 1
            write(sys.stderr, res.render(color=False))
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            print(
                f"error: {recipe}: {n} error{'s' if n != 1 else ''} at grid point {i} ({shown})",
                file=sys.stderr,
            )
            return None
        if i == 0 and res.warnings:
            write(sys.stderr, res.render(color=False))
        irs.append(res.ir)
    return irs
