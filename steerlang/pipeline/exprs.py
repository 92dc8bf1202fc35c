"""The one evaluator of the IR's expressions (`steerlang.plan.Expr`) over named numpy columns.

Every place the runtime reads an expression evaluates it here, whole columns at a time:
- rule predicates and `by` expressions over a statistics table, one row per SAE feature
  (`pipeline/selection.py`); a real SAE has ~50k features per site, so each expression is a
  handful of numpy operations rather than a loop over features;
- the near misses `steer explain` lists: the same predicate with every numeric comparison
  loosened by `eps` (the `eps` option);
- concept definitions over dataset columns, one row per image (`pipeline/statistics.py`).

What a data leaf (`Stat`, `Column`) means is the caller's business: it passes `lookup`, which
returns the column or raises an error that names the rule or concept. Everything else means
the same everywhere (docs/running.md, "Selection semantics"):
- literals and params have one value (`leaf_value`);
- comparisons follow IEEE: anything compared with NaN is false (so `not (x > t)` is true);
- arithmetic is float64 and division follows IEEE (x/0 = +-inf, 0/0 = NaN), never an error;
- a string never takes part in arithmetic;
- `abs`, `min`, `max` act row by row (`min`/`max` propagate NaN); `log` is the natural
  logarithm, NaN where its argument is <= 0 (so a comparison with it is false and `top` never
  ranks it), and the evaluator counts those rows in `domain_nan` for a warning;
- `rank(E)` and `quantile(E, q)` look at the whole column (every row: every feature at the
  site): rank 1 is the largest E, ties broken by the lower row (feature id), NaN rows get NaN
  and are not ranked; `quantile` is numpy's linear-interpolation quantile over the non-NaN
  rows (NaN when none).

Two options differ between statistics tables and dataset columns, because the data differ:
- `text_columns`: dataset columns come from CSV and folder names, so a numeric column compared
  with a string (or a string column with a number) compares as text, and strings may be
  ordered. Statistics columns have fixed types, so there a string only meets `==` / `!=`.
- `strict_logic`: a rule's `and` / `or` / `not` take true/false values only (a number there is
  an error naming the rule); a concept may be a bare column, whose nonzero values count.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from steerlang.errors import SteerError
from steerlang.plan import (
    And,
    Arith,
    Bool,
    Column,
    Compare,
    Fn,
    Neg,
    Not,
    Num,
    Or,
    ParamRef,
    Stat,
    Str,
    stat_key,
)

Lookup = Callable[[Stat | Column], Any]
"""Resolves a data leaf to its column (a numpy array with one entry per row)."""


class ExpressionError(SteerError):
    """An expression cannot be evaluated (a param without a value, a string where a number
    belongs, a number where a condition belongs)."""


def param_value(params: Mapping[str, Any], name: str) -> Any:
    """The value of a recipe param; `params` maps names to ParamDef or to raw values."""
    if name not in params:
        raise ExpressionError(
            f"param `{name}` has no value",
            help=f"declare `param {name} = ...` in the recipe or pass --param {name}=VALUE",
        )
    v = params[name]
    return v.value if hasattr(v, "value") and hasattr(v, "type") else v


_NOT_LEAF = object()


def leaf_value(e: Any, params: Mapping[str, Any]) -> Any:
    """A literal's or param's value, or `_NOT_LEAF` for anything else."""
    if isinstance(e, Num):
        return float(e.value)
    if isinstance(e, Str):
        return e.value
    if isinstance(e, Bool):
        return bool(e.value)
    if isinstance(e, ParamRef):
        v = param_value(params, e.name)
        return v if isinstance(v, str | bool) else float(v)
    return _NOT_LEAF


def numeric_constant(e: Any, params: Mapping[str, Any]) -> float | None:
    """The value of a numeric literal, a numeric param or the negation of one; None for
    anything else (explain reports `stat OP constant` comparisons as thresholds)."""
    if isinstance(e, Neg):
        c = numeric_constant(e.arg, params)
        return None if c is None else -c
    if not isinstance(e, Num | ParamRef):
        return None
    v = leaf_value(e, params)
    return v if isinstance(v, float) else None


def stats_in(expr: Any) -> list[Stat]:
    """Every Stat node under `expr`, in first-appearance order, without duplicates."""
    out: list[Stat] = []
    seen: set[str] = set()

    def walk(e: Any) -> None:
        if e is None:
            return
        if isinstance(e, Stat):
            k = stat_key(e)
            if k not in seen:
                seen.add(k)
                out.append(e)
        elif isinstance(e, Compare | Arith):
            walk(e.left)
            walk(e.right)
        elif isinstance(e, Neg | Not):
            walk(e.arg)
        elif isinstance(e, And | Or | Fn):
            for a in e.args:
                walk(a)

    walk(expr)
    return out


_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
}
_PREDICATE_HELP = "compare the statistic with a threshold, e.g. corr(c) > 0.3"


def _is_str(x: Any) -> bool:
    if isinstance(x, str):
        return True
    return isinstance(x, np.ndarray) and x.dtype.kind in "OU"


def _num(x: Any, what: str) -> Any:
    if _is_str(x):
        raise ExpressionError(
            f"{what} needs a number but got a string",
            help='only `==` and `!=` compare strings (e.g. top_concept() == "text")',
        )
    return x


def _to_str(x: Any) -> Any:
    """Text of a value or column; whole floats print without `.0` (so 1.0 matches "1")."""

    def s(v: Any) -> str:
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    if isinstance(x, np.ndarray):
        return np.asarray([s(v) for v in x.tolist()], dtype=object)
    return s(x)


def _compare(op: str, left: Any, right: Any) -> Any:
    with np.errstate(invalid="ignore"):
        out = _CMP[op](left, right)
    return np.asarray(out, dtype=bool) if isinstance(out, np.ndarray) else bool(out)


class Evaluator:
    """Evaluates expressions over `n_rows` rows; a result is a column (numpy array) or, for an
    expression that reads no data, a Python scalar.

    `label` names the expression's owner in errors (e.g. "rule `bg`"). With `eps`, every
    numeric comparison is loosened by `eps` in the direction that lets more rows through
    (tightened under `not`), so `relaxed & ~exact` are the rows that missed by at most eps.
    """

    def __init__(
        self,
        lookup: Lookup,
        params: Mapping[str, Any],
        n_rows: int,
        *,
        label: str,
        text_columns: bool = False,
        strict_logic: bool = True,
        eps: float | None = None,
    ) -> None:
        self.lookup = lookup
        self.params = params
        self.n_rows = n_rows
        self.label = label
        self.text_columns = text_columns
        self.strict_logic = strict_logic
        self.eps = eps
        self._loosen = True  # flips under each `not` when eps is set
        # Rows where `log` met a value <= 0 (NaN there), summed over the calls evaluated.
        self.domain_nan = 0

    def __call__(self, e: Any) -> Any:
        v = leaf_value(e, self.params)
        if v is not _NOT_LEAF:
            return v
        if isinstance(e, Stat | Column):
            return self.lookup(e)
        if isinstance(e, Compare):
            return self._compare(e)
        if isinstance(e, Arith):
            la = np.asarray(_num(self(e.left), f"`{e.op}`"), dtype=np.float64)
            ra = np.asarray(_num(self(e.right), f"`{e.op}`"), dtype=np.float64)
            with np.errstate(all="ignore"):
                out = _ARITH[e.op](la, ra)
            return out if out.ndim else float(out)
        if isinstance(e, Neg):
            v = np.asarray(_num(self(e.arg), "`-`"), dtype=np.float64)
            return -v if v.ndim else -float(v)
        if isinstance(e, And | Or):
            return self._connective(e)
        if isinstance(e, Not):
            return self._not(e)
        if isinstance(e, Fn):
            return self._function(e)
        raise ExpressionError(f"{self.label}: cannot evaluate expression {e!r}")

    def mask(self, e: Any) -> np.ndarray:
        """A predicate as a boolean column (a constant predicate fills every row)."""
        v = self._condition(e)
        if isinstance(v, np.ndarray):
            return v
        return np.full(self.n_rows, v, dtype=bool)

    def values(self, e: Any, what: str = "`by`") -> np.ndarray:
        """A numeric expression as a float64 column (a constant fills every row)."""
        arr = np.asarray(_num(self(e), what), dtype=np.float64)
        if arr.ndim == 0:
            return np.full(self.n_rows, float(arr), dtype=np.float64)
        return arr

    def _compare(self, e: Compare) -> Any:
        # Under eps only this comparison is loosened, never one inside its operands.
        operand = self if self.eps is None else self._exact()
        left, right = operand(e.left), operand(e.right)
        if _is_str(left) or _is_str(right):
            if self.text_columns and _is_str(left) != _is_str(right):
                left, right = _to_str(left), _to_str(right)
            elif not self.text_columns and e.op not in ("==", "!="):
                _num(left if _is_str(left) else right, f"comparison `{e.op}`")
            return _compare(e.op, left, right)
        if self.eps is None:
            return _compare(e.op, left, right)
        la = np.asarray(left, dtype=np.float64)
        ra = np.asarray(right, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            exact = np.asarray(_CMP[e.op](la, ra), dtype=bool)
            close = np.abs(la - ra) <= self.eps
        out = (exact | close) if self._loosen else (exact & ~close)
        return out if out.ndim else bool(out)

    def _function(self, e: Fn) -> Any:
        what = f"`{e.fn}`"
        args = [np.asarray(_num(self(a), what), dtype=np.float64) for a in e.args]
        if e.fn in ("rank", "quantile"):
            return self._column_function(e, args)
        with np.errstate(all="ignore"):
            if e.fn == "abs":
                out = np.abs(args[0])
            elif e.fn == "min":
                out = np.minimum(args[0], args[1])
            elif e.fn == "max":
                out = np.maximum(args[0], args[1])
            else:  # log
                x = args[0]
                bad = ~(x > 0) & ~np.isnan(x)
                self.domain_nan += int(np.count_nonzero(bad))
                out = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
        return out if out.ndim else float(out)

    def _column_function(self, e: Fn, args: list[np.ndarray]) -> Any:
        col = args[0] if args[0].ndim else np.full(self.n_rows, float(args[0]))
        if e.fn == "rank":
            ok = ~np.isnan(col)
            idx = np.flatnonzero(ok)
            order = idx[np.lexsort((idx, -col[idx]))]
            out = np.full(col.shape, np.nan)
            out[order] = np.arange(1, len(order) + 1, dtype=np.float64)
            return out
        q = args[1]
        if q.ndim or not 0.0 <= float(q) <= 1.0:
            raise ExpressionError(
                f"{self.label}: the level of `quantile` must be one number in [0, 1], "
                f"got {q if q.ndim else float(q)}",
                help="write e.g. quantile(corr(c), 0.99), or pass a param in [0, 1]",
            )
        vals = col[~np.isnan(col)]
        return float(np.quantile(vals, float(q))) if len(vals) else float("nan")

    def _exact(self) -> Evaluator:
        return Evaluator(
            self.lookup,
            self.params,
            self.n_rows,
            label=self.label,
            text_columns=self.text_columns,
            strict_logic=self.strict_logic,
        )

    def _connective(self, e: And | Or) -> Any:
        vals = [self._condition(a) for a in e.args]
        if self.strict_logic:
            combine = operator.and_ if isinstance(e, And) else operator.or_
        else:
            combine = np.logical_and if isinstance(e, And) else np.logical_or
        acc = vals[0]
        for v in vals[1:]:
            acc = combine(acc, v)
        return acc

    def _not(self, e: Not) -> Any:
        self._loosen = not self._loosen
        try:
            v = self._condition(e.arg)
        finally:
            self._loosen = not self._loosen
        if not self.strict_logic:
            return np.logical_not(v)
        return ~v if isinstance(v, np.ndarray) else (not v)

    def _condition(self, e: Any) -> Any:
        """`e`'s value where a condition belongs; under strict_logic it must be true/false."""
        v = self(e)
        if not self.strict_logic:
            return v
        if isinstance(v, np.ndarray):
            if v.dtype != bool:
                raise ExpressionError(
                    f"{self.label}: a predicate must be true/false, got numbers",
                    help=_PREDICATE_HELP,
                )
            return v
        if not isinstance(v, bool):
            raise ExpressionError(
                f"{self.label}: a predicate must be true/false, got `{v}`", help=_PREDICATE_HELP
            )
        return v
