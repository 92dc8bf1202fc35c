"""The recipe syntax tree: plain dataclasses, one per construct, each with the span it came from.

Equality ignores spans and purely presentational details (the literal spelling of a number,
redundant parentheses, `layer` vs `layers`), so `parse(show(tree)) == tree` is a meaningful
property: the printer may change layout but never meaning. The tree keeps what the user wrote;
names are resolved later by the compiler, which never mutates it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from steerlang.diagnostics import SourceSpan


def _span() -> SourceSpan | None:
    return field(default=None, compare=False, repr=False, kw_only=True)


# --------------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------------


@dataclass
class Expr:
    span: SourceSpan | None = _span()
    # The user wrapped this expression in parentheses; kept so `fmt` does not drop them.
    parens: bool = field(default=False, compare=False, repr=False, kw_only=True)


@dataclass
class Num(Expr):
    value: int | float
    text: str = field(default="", compare=False, repr=False)


@dataclass
class Str(Expr):
    value: str


@dataclass
class Bool(Expr):
    value: bool


@dataclass
class Name(Expr):
    name: str


@dataclass
class Call(Expr):
    func: str
    args: list[Expr]
    func_span: SourceSpan | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass
class Unary(Expr):
    op: str  # "-" or "not"
    arg: Expr
    op_span: SourceSpan | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass
class Binary(Expr):
    op: str  # + - * / < <= > >= == != and or
    left: Expr
    right: Expr
    op_span: SourceSpan | None = field(default=None, compare=False, repr=False, kw_only=True)


COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")

# Binding strength, loosest first; the printer adds parentheses from this table.
PRECEDENCE: dict[str, int] = {
    "or": 1,
    "and": 2,
    "not": 3,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "==": 4,
    "!=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "neg": 7,
    "atom": 8,
}


# --------------------------------------------------------------------------------------------
# Pieces of statements
# --------------------------------------------------------------------------------------------


@dataclass
class Ident:
    name: str
    span: SourceSpan | None = _span()


@dataclass
class IntItem:
    """`7` or `5..8` in a layer list, an id list or a token list; a bound may name an int
    param (`at layer L`, `layers 0..last`), which the compiler resolves to its value."""

    lo: int | Name
    hi: int | Name | None = None
    span: SourceSpan | None = _span()

    def values(self) -> list[int]:
        """The integers, for an item whose bounds are numbers (the compiler resolves names)."""
        assert isinstance(self.lo, int) and not isinstance(self.hi, Name)
        return [self.lo] if self.hi is None else list(range(self.lo, self.hi + 1))

    def names(self) -> list[Name]:
        """The param names among the bounds."""
        return [b for b in (self.lo, self.hi) if isinstance(b, Name)]


@dataclass
class SiteMod:
    site: Ident
    span: SourceSpan | None = _span()


@dataclass
class TokensMod:
    kind: Ident | None  # all / cls / patches
    indices: list[IntItem] | None  # tokens [0, 3]
    span: SourceSpan | None = _span()


@dataclass
class Scope:
    layers: list[IntItem]
    mods: list[SiteMod | TokensMod]
    span: SourceSpan | None = _span()


@dataclass
class WhereSel:
    where: Expr
    span: SourceSpan | None = _span()


@dataclass
class TopSel:
    order: str  # "desc" (top) or "asc" (bottom)
    k: Expr  # Num (integer) or Name (param)
    by: Expr
    where: Expr | None
    span: SourceSpan | None = _span()


@dataclass
class IdsSel:
    items: list[IntItem]
    span: SourceSpan | None = _span()


@dataclass
class RandomSel:
    """`random K features [where P]`: a seeded uniform draw (the control of a selection)."""

    k: Expr  # Num (integer) or Name (param)
    where: Expr | None
    span: SourceSpan | None = _span()


Selector = WhereSel | TopSel | IdsSel | RandomSel


@dataclass
class Action:
    op: str  # suppress | clamp | scale | add | mean_ablate (plan.ACTION_OPS)
    selector: Selector
    value: Expr | None = None  # Num, -Num, Name, or Call (a per-feature target: `mean(c)`)
    # The verb as written (`clamp` or `set` both mean clamp); fmt keeps the user's word.
    word: str = field(default="", compare=False, repr=False)
    span: SourceSpan | None = _span()
    word_span: SourceSpan | None = field(default=None, compare=False, repr=False, kw_only=True)


# --------------------------------------------------------------------------------------------
# Statements
# --------------------------------------------------------------------------------------------


@dataclass
class Stmt:
    span: SourceSpan | None = _span()
    # Part of this statement was invented by syntax-error recovery: the compiler skips it
    # (but still knows the names it declares, so later uses do not cascade into more errors).
    broken: bool = field(default=False, compare=False, repr=False, kw_only=True)


@dataclass
class Header(Stmt):
    version: int | None


@dataclass
class RecipeDecl(Stmt):
    name: Ident
    description: Str | None


@dataclass
class ModelDecl(Stmt):
    ref: Str  # a bare name is stored as its text


@dataclass
class DatasetDecl(Stmt):
    ref: Str


@dataclass
class TaskDecl(Stmt):
    label: Ident
    classes: list[Str]
    prompts: list[Str]


@dataclass
class GroupsDecl(Stmt):
    names: list[Ident]


@dataclass
class ConceptDecl(Stmt):
    name: Ident
    expr: Expr


@dataclass
class ParamDecl(Stmt):
    name: Ident
    value: Expr  # Num, Unary("-", Num), Str or Bool


@dataclass
class SetDecl(Stmt):
    name: Ident
    value: Expr  # as ParamDecl, or a Name used as a bare word (`set pooling = max`)


@dataclass
class IncludeDecl(Stmt):
    path: Str


@dataclass
class SaeDecl(Stmt):
    layers: list[IntItem]
    site: Ident | None
    ref: Str


@dataclass
class RuleDecl(Stmt):
    name: Ident | None
    scope: Scope
    action: Action


@dataclass
class Comment:
    text: str  # including the leading '#', trailing whitespace removed
    line: int
    column: int
    start: int


@dataclass
class Recipe:
    """One parsed file."""

    file: str | None
    header: Header | None
    statements: list[Stmt]
    comments: list[Comment] = field(default_factory=list, compare=False)


# Expressions nest at most this deep (the checker reports E213 beyond it); keeps every
# recursive pass (checking, printing, comparing) far from Python's recursion limit.
MAX_DEPTH = 100


def expr_depth(e: Expr | None) -> int:
    """Nesting depth of an expression, computed without recursion."""
    if e is None:
        return 0
    best = 0
    stack: list[tuple[Expr, int]] = [(e, 1)]
    while stack:
        x, d = stack.pop()
        best = max(best, d)
        if isinstance(x, Unary):
            stack.append((x.arg, d + 1))
        elif isinstance(x, Binary):
            stack.append((x.left, d + 1))
            stack.append((x.right, d + 1))
        elif isinstance(x, Call):
            stack.extend((a, d + 1) for a in x.args)
    return best


def walk(e: Expr | None) -> Iterator[Expr]:
    """Every node of an expression, depth first, without recursion (see MAX_DEPTH)."""
    stack = [e]
    while stack:
        x = stack.pop()
        if x is None:
            continue
        yield x
        if isinstance(x, Call):
            stack.extend(x.args)
        elif isinstance(x, Unary):
            stack.append(x.arg)
        elif isinstance(x, Binary):
            stack.extend((x.left, x.right))


def stmt_exprs(s: Stmt) -> list[Expr]:
    """The expressions directly inside a statement."""
    if isinstance(s, RuleDecl):
        a = s.action
        out: list[Expr] = _item_names(s.scope.layers)
        for m in s.scope.mods:
            if isinstance(m, TokensMod):
                out.extend(_item_names(m.indices or []))
        if a.value is not None:
            out.append(a.value)
        sel = a.selector
        if isinstance(sel, WhereSel):
            out.append(sel.where)
        elif isinstance(sel, TopSel):
            out.extend(x for x in (sel.k, sel.by, sel.where) if x is not None)
        elif isinstance(sel, IdsSel):
            out.extend(_item_names(sel.items))
        elif isinstance(sel, RandomSel):
            out.extend(x for x in (sel.k, sel.where) if x is not None)
        return out
    if isinstance(s, SaeDecl):
        return _item_names(s.layers)
    if isinstance(s, ConceptDecl):
        return [s.expr]
    if isinstance(s, ParamDecl | SetDecl):
        return [s.value]
    return []


def _item_names(items: list[IntItem]) -> list[Expr]:
    return [n for it in items for n in it.names()]
