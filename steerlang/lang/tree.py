"""Parse tree -> syntax tree (`steerlang.lang.ast`): the callbacks Lark runs for each grammar rule."""

from __future__ import annotations

import re
from typing import Any

from lark.lexer import Token

from steerlang.diagnostics import SourceSpan
from steerlang.lang import ast
from steerlang.lang.lexer import unquote
from steerlang.lang.spans import make_span, token_span


def _tok_int(tok: Any) -> int:
    s = str(tok)
    return int(s) if s.isdigit() else 0


def _tok_num(tok: Any) -> ast.Num:
    s = str(tok)
    if re.fullmatch(r"[0-9]+", s):
        return ast.Num(int(s), s)
    try:
        return ast.Num(float(s), s)
    except ValueError:
        return ast.Num(0, s)


def _bounds(it: Any, b: TreeBuilder) -> tuple | None:
    """(file, start, end, line, column, end_line, end_column) of a token (as `token_span`
    computes it), a node with a span, or a list of those (first to last); None without one."""
    if it is None:
        return None
    t = type(it)
    if t is Token:
        start = it.start_pos
        line = it.line
        if start is None or line is None:
            return None
        end = it.end_pos
        if end is None:
            end = start + len(it)
        end_line = it.end_line if it.end_line is not None else line
        end_col = it.end_column if it.end_column is not None else it.column + (end - start)
        return (b.file, start, end, line, it.column, end_line, end_col)
    if t is list:
        s = b.sp(*it)
    else:
        s = getattr(it, "span", None)
    if s is None:
        return None
    return (s.file, s.start, s.end, s.line, s.column, s.end_line, s.end_column)


def cover(a: SourceSpan | None, b: SourceSpan | None) -> SourceSpan | None:
    """A new span from the first to the last of two spans (either may be missing): what
    `TreeBuilder.sp` gives for two items with these spans, without looking at the items.
    The operator callbacks below use it: they run once per operator of every expression (a
    900 KB recipe of nested `not` has 400,000), and `sp`'s generic walk was most of their cost."""
    if a is None:
        if b is None:
            return None
        a = b
    elif b is None:
        b = a
    elif b.start < a.start:
        a, b = b, a
    end = b if b.end >= a.end else a
    return make_span(a.file, a.start, end.end, a.line, a.column, end.end_line, end.end_column)


class TreeBuilder:
    """Bottom-up conversion of the Lark tree to `steerlang.lang.ast`: one method per grammar
    rule, run by Lark as each rule is reduced (an embedded transformer), so no intermediate
    tree is built. Lenient by design: tokens invented by error recovery (empty, no position)
    give placeholder values, and the statement is marked broken afterwards.

    `file` is the name spans get; the parser sets it before each parse."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    # -- helpers
    def sp(self, *items: Any) -> SourceSpan | None:
        """Span from the first to the last item that has a position.

        Same result as `join(span of first, span of last)` with `token_span` for tokens, but
        builds one span instead of three: this runs for nearly every node of the tree."""
        first = last = None
        for it in items:
            first = _bounds(it, self)
            if first is not None:
                break
        if first is None:
            return None
        for it in reversed(items):
            last = _bounds(it, self)
            if last is not None:
                break
        assert last is not None
        if last[1] < first[1]:
            first, last = last, first
        end = last if last[2] >= first[2] else first
        return make_span(first[0], first[1], end[2], first[3], first[4], end[5], end[6])

    def ident(self, tok: Any) -> ast.Ident:
        return ast.Ident(str(tok), span=token_span(self.file, tok))

    def strlit(self, tok: Any) -> ast.Str:
        return ast.Str(unquote(str(tok)), span=token_span(self.file, tok))

    def lit(self, x: Any) -> ast.Expr:
        """A literal child that may still be a raw token (from `?literal`)."""
        if isinstance(x, ast.Expr):
            return x
        t = getattr(x, "type", "")
        span = token_span(self.file, x)
        if t == "STRING":
            return ast.Str(unquote(str(x)), span=span)
        if t in ("TRUE", "FALSE"):
            return ast.Bool(t == "TRUE", span=span)
        if t == "NAME":
            return ast.Name(str(x), span=span)
        n = _tok_num(x)
        n.span = span
        return n

    # -- file
    def start(self, c: list) -> ast.Recipe:
        header = c[0] if c and isinstance(c[0], ast.Header) else None
        stmts = [s for s in c[1 if header else 0 :] if isinstance(s, ast.Stmt)]
        return ast.Recipe(self.file, header, stmts)

    def header(self, c: list) -> ast.Header:
        return ast.Header(_tok_int(c[1]) if str(c[1]).isdigit() else None, span=self.sp(*c))

    def recipe_decl(self, c: list) -> ast.RecipeDecl:
        desc = self.strlit(c[2]) if c[2] is not None else None
        return ast.RecipeDecl(self.ident(c[1]), desc, span=self.sp(*c))

    def ref(self, c: list) -> ast.Str:
        tok = c[0]
        if getattr(tok, "type", "") == "STRING":
            return self.strlit(tok)
        return ast.Str(str(tok), span=token_span(self.file, tok))

    def model_decl(self, c: list) -> ast.ModelDecl:
        return ast.ModelDecl(c[1], span=self.sp(*c))

    def dataset_decl(self, c: list) -> ast.DatasetDecl:
        return ast.DatasetDecl(c[1], span=self.sp(*c))

    def string_list(self, c: list) -> list[ast.Str]:
        return [self.strlit(t) for t in c if getattr(t, "type", "") == "STRING"]

    def task_decl(self, c: list) -> ast.TaskDecl:
        prompts = c[8] if c[8] is not None else []
        return ast.TaskDecl(self.ident(c[2]), c[5], prompts, span=self.sp(*c))

    def groups_decl(self, c: list) -> ast.GroupsDecl:
        names = [self.ident(t) for t in c[1:] if getattr(t, "type", "") == "NAME"]
        return ast.GroupsDecl(names, span=self.sp(*c))

    def concept_decl(self, c: list) -> ast.ConceptDecl:
        return ast.ConceptDecl(self.ident(c[1]), self.lit(c[3]), span=self.sp(*c))

    def param_decl(self, c: list) -> ast.ParamDecl:
        return ast.ParamDecl(self.ident(c[1]), self.lit(c[3]), span=self.sp(*c))

    def set_decl(self, c: list) -> ast.SetDecl:
        value = self.lit(c[3])
        if isinstance(value, ast.Name):  # `set pooling = max` means the string "max"
            value = ast.Str(value.name, span=value.span)
        return ast.SetDecl(self.ident(c[1]), value, span=self.sp(*c))

    def signed_number(self, c: list) -> ast.Expr:
        num = _tok_num(c[1])
        num.span = token_span(self.file, c[1])
        if c[0] is None:
            return num
        return ast.Unary("-", num, span=self.sp(*c), op_span=token_span(self.file, c[0]))

    def include_decl(self, c: list) -> ast.IncludeDecl:
        return ast.IncludeDecl(self.strlit(c[1]), span=self.sp(*c))

    def sae_decl(self, c: list) -> ast.SaeDecl:
        site = self.ident(c[5]) if c[5] is not None else None
        return ast.SaeDecl(c[3], site, self.strlit(c[7]), span=self.sp(*c))

    # -- rules
    def rule_decl(self, c: list) -> ast.RuleDecl:
        name = self.ident(c[1]) if c[1] is not None else None
        return ast.RuleDecl(name, c[3], c[4], span=self.sp(*c))

    def scope(self, c: list) -> ast.Scope:
        return ast.Scope(c[2], list(c[3:]), span=self.sp(*c))

    def site_mod(self, c: list) -> ast.SiteMod:
        return ast.SiteMod(self.ident(c[1]), span=self.sp(*c))

    def tokens_mod(self, c: list) -> ast.TokensMod:
        kind, indices, last = c[1]
        return ast.TokensMod(kind, indices, span=self.sp(c[0], last))

    def token_spec(self, c: list) -> tuple:
        if len(c) == 1:
            ident = self.ident(c[0])
            return (ident, None, ident)
        return (None, c[1], list(c))

    def int_list(self, c: list) -> list[ast.IntItem]:
        return [x for x in c if isinstance(x, ast.IntItem)]

    def int_item(self, c: list) -> ast.IntItem:
        hi = self._bound(c[2]) if c[2] is not None else None
        return ast.IntItem(self._bound(c[0]), hi, span=self.sp(*c))

    def _bound(self, tok: Any) -> int | ast.Name:
        """An INT, or a NAME the compiler resolves as an int param."""
        if getattr(tok, "type", "") == "NAME":
            return ast.Name(str(tok), span=token_span(self.file, tok))
        return _tok_int(tok)

    def _action(self, op: str, word_tok: Any, sel: Any, value: Any, c: list) -> ast.Action:
        return ast.Action(
            op,
            sel,
            value,
            word=str(word_tok) or op,
            span=self.sp(*c),
            word_span=token_span(self.file, word_tok),
        )

    def suppress_action(self, c: list) -> ast.Action:
        return self._action("suppress", c[0], c[1], None, c)

    def clamp_action(self, c: list) -> ast.Action:
        return self._action("clamp", c[0], c[1], c[3], c)

    def scale_action(self, c: list) -> ast.Action:
        return self._action("scale", c[0], c[1], c[3], c)

    def add_action(self, c: list) -> ast.Action:
        return self._action("add", c[0], c[3], c[1], c)

    def mean_ablate_action(self, c: list) -> ast.Action:
        return self._action("mean_ablate", c[0], c[1], None, c)

    def value(self, c: list) -> ast.Expr:
        return self.lit(c[0])

    def target_value(self, c: list) -> ast.Call:
        args = [a for a in c[2:-1] if isinstance(a, ast.Expr)]
        return ast.Call(str(c[0]), args, span=self.sp(*c), func_span=token_span(self.file, c[0]))

    def count(self, c: list) -> ast.Expr:
        return self.lit(c[0])

    def where_selector(self, c: list) -> ast.WhereSel:
        return ast.WhereSel(c[2], span=self.sp(*c))

    def top_selector(self, c: list) -> ast.TopSel:
        order = "asc" if getattr(c[0], "type", "") == "BOTTOM" else "desc"
        return ast.TopSel(order, c[1], c[4], c[6], span=self.sp(*c))

    def random_selector(self, c: list) -> ast.RandomSel:
        return ast.RandomSel(c[1], c[4], span=self.sp(*c))

    def ids_selector(self, c: list) -> ast.IdsSel:
        return ast.IdsSel(c[1], span=self.sp(*c))

    # -- expressions
    # Operands are always syntax-tree nodes (every atom is converted as it is reduced, tokens
    # invented by recovery included), so their spans are read directly (see `cover`).
    def _binary(self, c: list) -> ast.Binary:
        left, right = c[0], c[2]
        return ast.Binary(
            str(c[1]),
            left,
            right,
            span=cover(left.span, right.span),
            op_span=token_span(self.file, c[1]),
        )

    or_expr = and_expr = comparison = sum = product = _binary

    def not_op(self, c: list) -> ast.Unary:
        op = token_span(self.file, c[0])
        return ast.Unary("not", c[1], span=cover(op, c[1].span), op_span=op)

    def neg(self, c: list) -> ast.Unary:
        op = token_span(self.file, c[0])
        return ast.Unary("-", c[1], span=cover(op, c[1].span), op_span=op)

    def number(self, c: list) -> ast.Num:
        return self.lit(c[0])  # type: ignore[return-value]

    def string(self, c: list) -> ast.Str:
        return self.strlit(c[0])

    def true(self, c: list) -> ast.Bool:
        return ast.Bool(True, span=token_span(self.file, c[0]))

    def false(self, c: list) -> ast.Bool:
        return ast.Bool(False, span=token_span(self.file, c[0]))

    def name(self, c: list) -> ast.Name:
        return ast.Name(str(c[0]), span=token_span(self.file, c[0]))

    def call(self, c: list) -> ast.Call:
        args = [a for a in c[2:-1] if isinstance(a, ast.Expr)]
        return ast.Call(str(c[0]), args, span=self.sp(*c), func_span=token_span(self.file, c[0]))

    def paren(self, c: list) -> ast.Expr:
        e = c[1]
        if isinstance(e, ast.Expr):
            e.parens = True
            e.span = self.sp(*c)
        return e
