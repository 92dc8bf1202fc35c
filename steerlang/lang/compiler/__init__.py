"""Syntax tree -> resolved, checked `steerlang.plan.RecipeIR`, in passes run in order.

Each pass is a function of the one `CompileState` (steerlang/lang/compiler/state.py): it reads
what earlier passes found and adds its own findings and diagnostics. In order:

- load: read the root file and its includes, parse them, expand includes in place;
- declarations: expressions nested too deeply, then what the recipe declares (one-off
  statements, params, concepts, settings, rule names), then the model and dataset the rest
  is checked against;
- overrides: `--param` values, checked against the param declarations (before anything
  reads a param's value: an `sae` line's layer may be a param);
- saes: `sae` lines, once the model depth is known;
- task: the classification task and group columns;
- concepts: concept definitions, type-checked and lowered;
- rules: scope, selector and action of every rule;
- lints: unused names, then rules that may override each other;
- lower: the IR, validated by the pydantic models the runtime reads.

Cascades are avoided on purpose: an expression that already failed has type "?", which every
check accepts silently; names declared by statements with syntax errors are still known; and
lints are skipped when the recipe has errors. Diagnostics come back sorted by file and position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steerlang.diagnostics import Diagnostic
from steerlang.lang import ast
from steerlang.lang.compiler import (
    declarations,
    expressions,
    lints,
    load,
    lower,
    rules,
    saes,
    task,
)
from steerlang.lang.compiler.state import CompileOptions, CompileState

Pass = Callable[[CompileState], None]

PASSES: tuple[Pass, ...] = (
    load.load_files,
    declarations.limit_nesting,
    declarations.declare,
    declarations.resolve_context,
    declarations.apply_overrides,
    saes.check_saes,
    task.check_task,
    expressions.resolve_concepts,
    rules.check_rules,
    lints.lint_unused,
    lints.lint_overlaps,
    lower.lower,
)


@dataclass
class CompileOutput:
    ir: Any  # steerlang.plan.RecipeIR | None (None iff there is an error)
    diagnostics: list[Diagnostic]
    sources: dict[str | None, str]  # every file read -> its text
    recipes: dict[str | None, ast.Recipe]  # every file read -> its syntax tree


def compile_source(
    text: str,
    path: str | None,
    options: CompileOptions,
    passes: tuple[Pass, ...] | None = None,
) -> CompileOutput:
    """Run `passes` (by default `PASSES`) over the recipe `text` read from `path`."""
    st = CompileState(text=text, root=path, options=options)
    for run_pass in PASSES if passes is None else passes:
        run_pass(st)
    return CompileOutput(st.ir, st.sorted_diagnostics(), st.sources, st.recipes)
