"""The columns of the dataset a recipe is bound to, for the compiler's column checks.

`steer check` alone knows only the built-in columns of the known dataset names
(steerlang/facts.py). The commands that bind a recipe to data (run, plan, explain, show, sweep,
grid, and check with `--profile`/`--data`) know more: the profile (and `--data`) says which
files the recipe's `dataset` name means. This module reads that dataset's columns from its
metadata header (`DatasetSpec.columns`: no rows, no images) and hands them to the compiler
(`CompileOptions.dataset_columns`), so a recipe may use the extra columns of a Waterbirds
`metadata.csv`, or any column of a `table` or `hf_datasets` dataset, and a misspelt one is an
E105 error with the compiler's did-you-mean before anything loads.

When the columns cannot be read (no such dataset in the profile, a missing root, a broken
profile, a zoo copy not yet written, `hf:NAME`), the reader answers None and the compiler uses
the built-in columns; the runtime then reports the real problem, with its own message, when
it binds the dataset.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence

from steerlang.errors import SteerError

ColumnsReader = Callable[[str], "tuple[str, ...] | None"]


def columns_reader(profile: str | None, data: Sequence[str] = ()) -> ColumnsReader:
    """Dataset name -> its columns, through the profile `profile` (None: ./steer.yaml if there
    is one, else the built-in zoo profile) with the `--data` overrides; None where unknown.
    Each name is read once (a grid compiles the recipe once per point)."""

    @functools.cache
    def read(name: str) -> tuple[str, ...] | None:
        from steerlang.profile import apply_overrides, load_profile

        try:
            prof = apply_overrides(load_profile(profile), data=list(data) or None)
            return prof.dataset(name).columns()
        except SteerError:
            return None

    return read


def columns_from_args(args: argparse.Namespace) -> ColumnsReader:
    """`columns_reader` for a command with the binding options (`--profile`, `--data`)."""
    return columns_reader(getattr(args, "profile", None), list(getattr(args, "data", None) or ()))
