"""Literal values and types in the compiler's own words, shared by its passes."""

from __future__ import annotations

from typing import Any

from steerlang.lang import ast

# Expression types: num, bool, str, col (a dataset column), and ? (already reported: any check
# accepts it silently, so one mistake gives one diagnostic).
TYPE_WORDS = {
    "num": "a number",
    "bool": "a condition",
    "str": "a string",
    "col": "a dataset column",
}


def literal(e: ast.Expr) -> tuple[str, Any] | None:
    """(type, value) of a literal expression (type int, float, str, bool or word), or None."""
    if isinstance(e, ast.Num):
        return ("int", e.value) if isinstance(e.value, int) else ("float", e.value)
    if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.arg, ast.Num):
        v = -e.arg.value
        return ("int", v) if isinstance(v, int) else ("float", v)
    if isinstance(e, ast.Str):
        return ("str", e.value)
    if isinstance(e, ast.Bool):
        return ("bool", e.value)
    if isinstance(e, ast.Name):
        return ("word", e.name)
    return None


def literal_ir(e: ast.Num | ast.Str | ast.Bool) -> tuple[dict, str]:
    """A literal's IR node and type: the same in concept definitions and rule predicates."""
    if isinstance(e, ast.Num):
        return {"kind": "num", "value": float(e.value)}, "num"
    if isinstance(e, ast.Str):
        return {"kind": "str", "value": e.value}, "str"
    return {"kind": "bool", "value": e.value}, "bool"


def param_type(t: str) -> str:
    """The expression type of a param of declared type `t`."""
    return {"int": "num", "float": "num", "str": "str", "bool": "bool"}.get(t, "?")


def type_phrase(t: str) -> str:
    return {
        "int": "a whole number",
        "float": "a number",
        "bool": "`true` or `false`",
        "str": "a string",
        "word": "a bare word",
    }.get(t, t)


def fmt(v: Any) -> str:
    """A number as written in messages: no `.0` on whole numbers."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def render_value(v: Any) -> str:
    """A value as it would be written in a recipe."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return fmt(v)
