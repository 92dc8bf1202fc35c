"""The per-feature statistics table: the value the statistics pass produces, the steerability
sweep extends and the rule engine reads.

It lives in its own module so the producer (`pipeline/statistics.py`) and the readers
(`pipeline/selection.py`, `steer test`, `steer explain --stats`) depend on it and not on each
other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from steerlang.errors import SteerError


class StatisticsError(SteerError):
    """Statistics cannot be computed or a column a predicate needs is absent."""


def tokens_key(tokens: str | Sequence[int]) -> str:
    """A hashable, printable name of a token scope (`all`, `cls`, `patches`, `idx:1,2`)."""
    if isinstance(tokens, str):
        return tokens
    return "idx:" + ",".join(str(int(t)) for t in tokens)


def scope_from_key(key: str) -> str | list[int]:
    """The token scope a `tokens_key` names (its inverse)."""
    if key.startswith("idx:"):
        return [int(t) for t in key[4:].split(",") if t]
    return key


@dataclass
class StatsTable:
    """One row per feature, one column per statistic (names per `steerlang.plan.stat_key`).

    Numeric columns are float64 arrays of length `n_features`; string columns (`top_concept`)
    are object arrays. `key` is the cache content key the table was stored under.
    """

    n_features: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    key: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, col in self.columns.items():
            if len(col) != self.n_features:
                raise StatisticsError(
                    f"statistics column `{name}` has {len(col)} rows, expected {self.n_features}"
                )
        self.columns.setdefault("id", np.arange(self.n_features, dtype=np.float64))

    def has(self, name: str) -> bool:
        return name in self.columns

    def column(self, name: str) -> np.ndarray:
        try:
            return self.columns[name]
        except KeyError:
            where = self.meta.get("site_label", "this site")
            avail = ", ".join(sorted(c for c in self.columns if c != "id")) or "none"
            raise StatisticsError(
                f"the statistics for {where} have no column `{name}` (available: {avail})",
                help=_column_help(name),
            ) from None

    def with_columns(
        self, extra: Mapping[str, np.ndarray], *, key: str | None = None
    ) -> StatsTable:
        cols = dict(self.columns)
        cols.update(extra)
        meta = dict(self.meta)
        return StatsTable(self.n_features, cols, key=key or self.key, meta=meta)


def _column_help(name: str) -> str:
    if name.startswith(("corr:", "corr_not:", "mean:", "mean_not:")):
        concept = name.split(":", 1)[1]
        return f"declare `concept {concept} = ...` in the recipe so the statistics pass computes it"
    if name in ("steerability", "top_concept") or name.startswith("promotes:"):
        return (
            "steerability columns come from a steerability sweep; run the recipe with `steer run`"
        )
    return "check the statistic name in the rule"
