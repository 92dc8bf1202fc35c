"""Syntax tree -> canonical text, and the `steer fmt` formatter built on it.

`show_*` print a tree with canonical spacing and the fewest parentheses that keep its meaning
(plus any the user wrote). `format_source` lays out a whole file: one statement per line,
every comment kept (own-line comments stay on their own line, trailing comments follow their
statement after two spaces), runs of blank lines collapsed to one.
"""

from __future__ import annotations

import math
import re

from steerlang.lang import ast
from steerlang.lang.lexer import KEYWORDS

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_OF_OP = {
    "suppress": "suppress",
    "clamp": "clamp",
    "scale": "scale",
    "add": "add",
    "mean_ablate": "mean-ablate",
}


def quote(s: str) -> str:
    out = (
        s.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return f'"{out}"'


def show_number(n: ast.Num) -> str:
    v = n.value
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return n.text or "0"
    return repr(float(v))


def _show(e: ast.Expr) -> tuple[str, int]:
    if isinstance(e, ast.Num):
        return show_number(e), 8
    if isinstance(e, ast.Str):
        return quote(e.value), 8
    if isinstance(e, ast.Bool):
        return ("true" if e.value else "false"), 8
    if isinstance(e, ast.Name):
        return e.name, 8
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(show_expr(a) for a in e.args)})", 8
    if isinstance(e, ast.Unary):
        if e.op == "not":
            return f"not {show_expr(e.arg, 3)}", 3
        return f"-{show_expr(e.arg, 7)}", 7
    if isinstance(e, ast.Binary):
        p = ast.PRECEDENCE[e.op]
        if e.op in ast.COMPARE_OPS:
            return f"{show_expr(e.left, 5)} {e.op} {show_expr(e.right, 5)}", 4
        return f"{show_expr(e.left, p)} {e.op} {show_expr(e.right, p + 1)}", p
    raise TypeError(f"not an expression: {e!r}")


def show_expr(e: ast.Expr, need: int = 0) -> str:
    """Print `e` so it parses back to the same tree where an operand of binding `need` goes."""
    s, p = _show(e)
    if e.parens or p < need:
        return f"({s})"
    return s


def _ref(s: ast.Str) -> str:
    v = s.value
    if _NAME_RE.fullmatch(v) and v not in KEYWORDS:
        return v
    return quote(v)


def _items(items: list[ast.IntItem]) -> str:
    return ", ".join(
        _bound(i.lo) if i.hi is None else f"{_bound(i.lo)}..{_bound(i.hi)}" for i in items
    )


def _bound(b: int | ast.Name) -> str:
    return b.name if isinstance(b, ast.Name) else str(b)


def _layer_kw(items: list[ast.IntItem]) -> str:
    return "layer" if len(items) == 1 and items[0].hi is None else "layers"


def _selector(sel: ast.Selector) -> str:
    if isinstance(sel, ast.WhereSel):
        return f"features where {show_expr(sel.where)}"
    if isinstance(sel, ast.TopSel):
        word = "top" if sel.order == "desc" else "bottom"
        k = show_expr(sel.k)
        noun = "feature" if isinstance(sel.k, ast.Num) and sel.k.value == 1 else "features"
        out = f"{word} {k} {noun} by {show_expr(sel.by)}"
        if sel.where is not None:
            out += f" where {show_expr(sel.where)}"
        return out
    if isinstance(sel, ast.RandomSel):
        k = show_expr(sel.k)
        noun = "feature" if isinstance(sel.k, ast.Num) and sel.k.value == 1 else "features"
        out = f"random {k} {noun}"
        if sel.where is not None:
            out += f" where {show_expr(sel.where)}"
        return out
    noun = "feature" if len(sel.items) == 1 and sel.items[0].hi is None else "features"
    return f"{noun} {_items(sel.items)}"


def show_action(a: ast.Action) -> str:
    word = a.word or _WORD_OF_OP[a.op]
    sel = _selector(a.selector)
    v = show_expr(a.value) if a.value is not None else ""
    if a.op == "clamp":
        return f"{word} {sel} to {v}"
    if a.op == "scale":
        return f"{word} {sel} by {v}"
    if a.op == "add":
        return f"{word} {v} to {sel}"
    return f"{word} {sel}"


def show_scope(s: ast.Scope) -> str:
    out = f"at {_layer_kw(s.layers)} {_items(s.layers)}"
    for m in s.mods:
        if isinstance(m, ast.SiteMod):
            out += f" site {m.site.name}"
        elif m.kind is not None:
            out += f" tokens {m.kind.name}"
        else:
            out += f" tokens [{_items(m.indices or [])}]"
    return out


def show_stmt(s: ast.Stmt) -> str:
    if isinstance(s, ast.Header):
        return f"steer {s.version if s.version is not None else 1}"
    if isinstance(s, ast.RecipeDecl):
        out = f"recipe {s.name.name}"
        return out + (f" {quote(s.description.value)}" if s.description is not None else "")
    if isinstance(s, ast.ModelDecl):
        return f"model {_ref(s.ref)}"
    if isinstance(s, ast.DatasetDecl):
        return f"dataset {_ref(s.ref)}"
    if isinstance(s, ast.TaskDecl):
        classes = ", ".join(quote(c.value) for c in s.classes)
        out = f"task classify {s.label.name} as [{classes}]"
        if s.prompts:
            out += " prompt " + ", ".join(quote(p.value) for p in s.prompts)
        return out
    if isinstance(s, ast.GroupsDecl):
        return "groups " + ", ".join(n.name for n in s.names)
    if isinstance(s, ast.ConceptDecl):
        return f"concept {s.name.name} = {show_expr(s.expr)}"
    if isinstance(s, ast.ParamDecl):
        return f"param {s.name.name} = {show_expr(s.value)}"
    if isinstance(s, ast.SetDecl):
        return f"set {s.name.name} = {show_expr(s.value)}"
    if isinstance(s, ast.IncludeDecl):
        return f"include {quote(s.path.value)}"
    if isinstance(s, ast.SaeDecl):
        out = f"sae at {_layer_kw(s.layers)} {_items(s.layers)}"
        if s.site is not None:
            out += f" site {s.site.name}"
        return out + f" = {quote(s.ref.value)}"
    if isinstance(s, ast.RuleDecl):
        prefix = f"rule {s.name.name}: " if s.name is not None else ""
        return f"{prefix}{show_scope(s.scope)} {show_action(s.action)}"
    raise TypeError(f"not a statement: {s!r}")


def format_source(text: str, recipe: ast.Recipe) -> str:
    """Canonical layout of a parsed file (which must have no syntax errors)."""
    by_line: dict[int, ast.Stmt] = {}
    for s in ([recipe.header] if recipe.header else []) + list(recipe.statements):
        if s.span is not None:
            by_line[s.span.line] = s
    comments = {c.line: c for c in recipe.comments}
    n_lines = text.count("\n") + 1
    out: list[str] = []
    blank = False
    for ln in range(1, n_lines + 1):
        stmt = by_line.get(ln)
        com = comments.get(ln)
        if stmt is None and com is None:
            blank = True
            continue
        if blank and out:
            out.append("")
        blank = False
        if stmt is not None:
            line = show_stmt(stmt)
            if com is not None:
                line += "  " + com.text
            out.append(line)
        else:
            assert com is not None
            out.append(com.text)
    return "\n".join(out) + "\n" if out else ""
