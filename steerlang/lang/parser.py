"""Text -> syntax tree, with statement-level error recovery and human syntax errors.

The Lark LALR parser is built lazily once per process (and its analysis cached on disk per
user, which makes start-up 2-4 ms instead of ~100 ms). Syntax errors never escape as Lark
exceptions: `parse()` returns the tree it could build plus `Diagnostic`s. Recovery syncs to the
end of the line (Lark's own grammar-error finder does the same), so every independent error is
reported once and a broken statement never cascades into errors on the next lines.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

from steerlang.diagnostics import Diagnostic, SourceSpan
from steerlang.lang import ast
from steerlang.lang.spans import LineIndex, join, token_span

# Keyword terminals and the word each one matches. All keywords are reserved (E110).
KEYWORD_TERMINALS: dict[str, str] = {
    "STEER": "steer",
    "RECIPE": "recipe",
    "MODEL": "model",
    "DATASET": "dataset",
    "TASK": "task",
    "CLASSIFY": "classify",
    "AS": "as",
    "PROMPT": "prompt",
    "GROUPS": "groups",
    "CONCEPT": "concept",
    "PARAM": "param",
    "SET": "set",
    "INCLUDE": "include",
    "SAE": "sae",
    "RULE": "rule",
    "AT": "at",
    "LAYER": "layer",
    "LAYERS": "layers",
    "SITE": "site",
    "TOKENS": "tokens",
    "SUPPRESS": "suppress",
    "CLAMP": "clamp",
    "SCALE": "scale",
    "ADD": "add",
    "MEAN_ABLATE": "mean-ablate",
    "TO": "to",
    "BY": "by",
    "FEATURES": "features",
    "FEATURE": "feature",
    "TOP": "top",
    "BOTTOM": "bottom",
    "WHERE": "where",
    "AND": "and",
    "OR": "or",
    "NOT": "not",
    "TRUE": "true",
    "FALSE": "false",
}
KEYWORDS: frozenset[str] = frozenset(KEYWORD_TERMINALS.values())

_PUNCT: dict[str, str] = {
    "DOTDOT": "..",
    "COMMA": ",",
    "COLON": ":",
    "LPAR": "(",
    "RPAR": ")",
    "LSQB": "[",
    "RSQB": "]",
    "EQ": "=",
    "EQEQ": "==",
    "NE": "!=",
    "LT": "<",
    "LE": "<=",
    "GT": ">",
    "GE": ">=",
    "PLUS": "+",
    "MINUS": "-",
    "STAR": "*",
    "SLASH": "/",
}

# Every terminal of the grammar (plus Lark's end marker) in words, for messages and completion.
TERMINAL_DESCRIPTIONS: dict[str, str] = {
    **{t: f"`{w}`" for t, w in KEYWORD_TERMINALS.items()},
    **{t: f"`{p}`" for t, p in _PUNCT.items()},
    "NAME": "a name",
    "INT": "a whole number",
    "NUMBER": "a number",
    "STRING": "a string",
    "_NL": "end of line",
    "$END": "end of file",
    "COMMENT": "a comment",
    "WS": "whitespace",
}

STATEMENT_STARTS = frozenset(
    {
        "RECIPE",
        "MODEL",
        "DATASET",
        "TASK",
        "GROUPS",
        "CONCEPT",
        "PARAM",
        "SET",
        "INCLUDE",
        "SAE",
        "RULE",
        "AT",
    }
)
ACTION_TERMINALS = ("SUPPRESS", "CLAMP", "SET", "SCALE", "ADD", "MEAN_ABLATE")
_EXPR_STARTS = frozenset({"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "NOT", "MINUS", "LPAR"})

_parser: Any = None


def _cache_file(grammar_text: str) -> str | None:
    """A per-user cache path keyed on the grammar and lark version (Lark verifies it too)."""
    if os.environ.get("STEERLANG_NO_CACHE"):
        return None
    import lark

    base = os.environ.get("STEERLANG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "steerlang",
    )
    key = hashlib.sha256((lark.__version__ + "\0" + grammar_text).encode()).hexdigest()[:16]
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
    except OSError:
        return None
    if not os.access(base, os.W_OK):
        return None
    return os.path.join(base, f"steer-grammar-{key}.lark-cache")


def grammar_text() -> str:
    from importlib import resources

    return resources.files("steerlang.grammar").joinpath("steer.lark").read_text(encoding="utf-8")


def build_parser(*, strict: bool = False, cache: bool = True) -> Any:
    """A fresh Lark parser; `strict=True` turns conflicts and terminal collisions into errors."""
    from lark import Lark

    text = grammar_text()
    cache_path = _cache_file(text + ("strict" if strict else "")) if cache else None
    kwargs: dict[str, Any] = dict(
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        strict=strict,
    )
    try:
        if cache_path:
            return Lark(text, cache=cache_path, **kwargs)
    except Exception:  # an unreadable or unwritable cache must never stop the parser
        pass
    return Lark(text, **kwargs)


def get_parser() -> Any:
    global _parser
    if _parser is None:
        _parser = build_parser()
    return _parser


# --------------------------------------------------------------------------------------------
# Tree -> AST
# --------------------------------------------------------------------------------------------


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


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}


def unquote(s: str) -> str:
    """The value of a STRING token: `\\n`, `\\t`, `\\r`, `\\\\` and `\\"` are escapes; any other
    backslash is kept literally (so Windows paths and regexes read naturally)."""
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
    if "\\" not in s:
        return s
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in _ESCAPES:
            out.append(_ESCAPES[s[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _Builder:
    """Bottom-up conversion of the Lark tree to `steerlang.lang.ast`. Lenient by design: tokens
    invented by error recovery (empty, no position) give placeholder values, and the statement
    is marked broken afterwards."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    # -- helpers
    def sp(self, *items: Any) -> SourceSpan | None:
        first = last = None
        for it in items:
            s = self._span_of(it)
            if s is not None:
                first = s if first is None else first
                last = s
        return join(first, last)

    def _span_of(self, it: Any) -> SourceSpan | None:
        if it is None:
            return None
        if isinstance(it, list):
            return self.sp(*it)
        span = getattr(it, "span", None)
        if span is not None or hasattr(it, "span"):
            return span
        return token_span(self.file, it)

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

    def build(self, tree: Any) -> Any:
        """Iterative post-order walk (deeply nested input must not hit Python's recursion limit)."""
        from lark import Tree

        stack: list[tuple[Any, bool]] = [(tree, False)]
        results: list[Any] = []
        while stack:
            node, done = stack.pop()
            if not isinstance(node, Tree):
                results.append(node)
                continue
            if not done:
                stack.append((node, True))
                for child in reversed(node.children):
                    stack.append((child, False))
                continue
            n = len(node.children)
            children = results[len(results) - n :] if n else []
            if n:
                del results[len(results) - n :]
            results.append(getattr(self, node.data)(children))
        return results[0]

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
        hi = _tok_int(c[2]) if c[2] is not None else None
        return ast.IntItem(_tok_int(c[0]), hi, span=self.sp(*c))

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

    def count(self, c: list) -> ast.Expr:
        return self.lit(c[0])

    def where_selector(self, c: list) -> ast.WhereSel:
        return ast.WhereSel(c[2], span=self.sp(*c))

    def top_selector(self, c: list) -> ast.TopSel:
        order = "asc" if getattr(c[0], "type", "") == "BOTTOM" else "desc"
        return ast.TopSel(order, c[1], c[4], c[6], span=self.sp(*c))

    def ids_selector(self, c: list) -> ast.IdsSel:
        return ast.IdsSel(c[1], span=self.sp(*c))

    # -- expressions
    def _binary(self, c: list) -> ast.Binary:
        return ast.Binary(
            str(c[1]), c[0], c[2], span=self.sp(c[0], c[2]), op_span=token_span(self.file, c[1])
        )

    or_expr = and_expr = comparison = sum = product = _binary

    def not_op(self, c: list) -> ast.Unary:
        return ast.Unary("not", c[1], span=self.sp(*c), op_span=token_span(self.file, c[0]))

    def neg(self, c: list) -> ast.Unary:
        return ast.Unary("-", c[1], span=self.sp(*c), op_span=token_span(self.file, c[0]))

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


# --------------------------------------------------------------------------------------------
# Parsing with recovery
# --------------------------------------------------------------------------------------------


@dataclass
class _SyntaxError:
    exc: Any
    accepts: frozenset[str]
    line: int


def _error_line(e: Any) -> int:
    line = getattr(e, "line", None)
    return line if isinstance(line, int) and line > 0 else 10**9


def _sync_to_newline(ip: Any) -> None:
    """Feed invented tokens until a newline is acceptable (breadth-first over the parse table)."""
    from lark.lexer import Token

    if "_NL" in ip.accepts():
        return
    start = ip.as_immutable()
    frontier = [((), start)]
    seen = {tuple(start.parser_state.state_stack)}
    for _ in range(12):
        nxt = []
        for path, p in frontier:
            for choice in p.choices():
                if not choice.isupper() or choice == "$END":
                    continue
                try:
                    q = p.feed_token(Token(choice, ""))
                except Exception:
                    continue
                key = tuple(q.parser_state.state_stack)
                if key in seen:
                    continue
                seen.add(key)
                if "_NL" in q.accepts():
                    for t in (*path, choice):
                        ip.feed_token(Token(t, ""))
                    return
                nxt.append(((*path, choice), q))
        frontier = nxt
    raise RuntimeError("syntax recovery found no way to end the statement")


def _find_comments(text: str) -> list[ast.Comment]:
    """`#` comments outside strings (strings never span lines, so a per-line scan is exact)."""
    out: list[ast.Comment] = []
    offset = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        if "#" in line:
            i, in_str = 0, False
            while i < len(line):
                ch = line[i]
                if in_str:
                    if ch == "\\":
                        i += 1
                    elif ch == '"':
                        in_str = False
                elif ch == '"':
                    in_str = True
                elif ch == "#":
                    out.append(ast.Comment(line[i:].rstrip(), lineno, i + 1, offset + i))
                    break
                i += 1
        offset += len(line) + 1
    return out


@dataclass
class ParseResult:
    recipe: ast.Recipe
    diagnostics: list[Diagnostic]


def parse(text: str, file: str | None = None) -> ParseResult:
    """Parse one file. Never raises for any input text."""
    from lark.exceptions import UnexpectedInput, UnexpectedToken
    from lark.lexer import Token

    src = text.replace("\ufeff", " ", 1) if text.startswith("\ufeff") else text
    src = src + "\n"
    errors: list[_SyntaxError] = []
    state = {"last_line": -1, "header_fixed": False}

    def on_error(e: Any) -> bool:
        acc = frozenset()
        if getattr(e, "interactive_parser", None) is not None:
            try:
                acc = frozenset(e.interactive_parser.accepts())
            except Exception:
                acc = frozenset()
        line = _error_line(e)
        if isinstance(e, UnexpectedToken) and e.token.type == "$END":
            if line != state["last_line"]:
                errors.append(_SyntaxError(e, acc, line))
            return False
        if line != state["last_line"]:
            errors.append(_SyntaxError(e, acc, line))
            state["last_line"] = line
        if isinstance(e, UnexpectedToken):
            ip = e.interactive_parser
            if "STEER" in acc and not state["header_fixed"]:
                # Missing header: pretend `steer 1` was there and go on with this token, so a
                # file without a header gets exactly one error.
                state["header_fixed"] = True
                for t in ("STEER", "INT", "_NL"):
                    ip.feed_token(Token(t, ""))
                if e.token.type != "_NL":
                    try:
                        ip.feed_token(e.token)
                    except UnexpectedInput:
                        pass
                    else:
                        state["last_line"] = -1
                return True
            if e.token.type == "_NL":
                _sync_to_newline(ip)
                ip.feed_token(e.token)
        return True

    parser = get_parser()
    tree = None
    try:
        tree = parser.parse(src, on_error=on_error)
    except (UnexpectedInput, RuntimeError):
        tree = None

    builder = _Builder(file)
    if tree is not None:
        recipe = builder.build(tree)
    else:
        recipe = ast.Recipe(file, None, [])
    recipe.comments = _find_comments(text)
    index = LineIndex(src)
    diags = [_syntax_diagnostic(err, src, index, file) for err in errors]
    bad_lines = {err.line for err in errors}
    if bad_lines:
        for s in recipe.statements:
            if s.span is None or any(s.span.line <= b <= s.span.end_line for b in bad_lines):
                s.broken = True
        if recipe.header is not None and (
            recipe.header.span is None or recipe.header.span.line in bad_lines
        ):
            recipe.header.broken = True
    return ParseResult(recipe, diags)


# --------------------------------------------------------------------------------------------
# Syntax error messages
# --------------------------------------------------------------------------------------------

_LEX_RE = re.compile(
    r'"(?:[^"\\\n]|\\.)*"?|[A-Za-z_][A-Za-z0-9_]*(?:-ablate)?|[0-9]+(?:\.[0-9]+)?|\.\.|[<>=!]=|\S'
)


def _line_tokens(line: str) -> list[tuple[int, str]]:
    """A rough tokenisation of one line (comments removed), for context in messages."""
    out = []
    for m in _LEX_RE.finditer(line):
        if m.group().startswith("#"):
            break
        out.append((m.start(), m.group()))
    return out


def describe(terminals: set[str] | frozenset[str]) -> str:
    """`a`, `b` or `c` in words, keywords first."""
    if "_NL" in terminals:
        terminals = set(terminals) - {"$END"}
    words = sorted({TERMINAL_DESCRIPTIONS.get(t, t) for t in terminals if t not in ("WS",)})
    words.sort(key=lambda w: (not w.startswith("`"), w == "end of line", w))
    if len(words) > 7:
        words = words[:6] + ["…"]
    if not words:
        return "nothing"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _found(tok: Any) -> str:
    t = tok.type
    if t == "_NL":
        return "end of line"
    if t == "$END":
        return "end of file"
    if t == "STRING":
        return f"string {tok}"
    if t in ("NUMBER", "INT"):
        return f"number `{tok}`"
    return f"`{tok}`"


def _suggest(word: str, candidates: list[str]) -> str | None:
    m = difflib.get_close_matches(word, candidates, n=2, cutoff=0.6)
    if not m:
        return None
    return m[0]


def _syntax_diagnostic(
    err: _SyntaxError, src: str, index: LineIndex, file: str | None
) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters

    e = err.exc
    acc = err.accepts
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream
        ch = src[pos] if pos < len(src) else ""
        line, col = index.position(pos)
        if ch == '"':
            line_text = index.line_text(line)
            end = index.line_start(line) + len(line_text.rstrip())
            span = index.span(file, pos, end)
            from steerlang.diagnostics import Edit

            return Diagnostic(
                "E008",
                "error",
                "unterminated string",
                span,
                label="this string is never closed",
                help='add the closing `"`',
                fix=Edit(index.span(file, end, end), '"'),
            )
        span = index.span(file, pos, pos + 1)
        nxt = src[pos : pos + 2]
        helps = {
            "&&": "write `and` instead of `&&`",
            "||": "write `or` instead of `||`",
        }
        single = {
            "!": "write `not` for negation, or `!=` for 'not equal'",
            "&": "write `and` instead of `&`",
            "|": "write `or` instead of `|`",
            "'": 'strings use double quotes: "like this"',
            ";": "statements end at the end of the line; remove the `;`",
            "≥": "write `>=`",
            "≤": "write `<=`",
            "≠": "write `!=`",
            "−": "write `-` (ASCII minus)",
            "{": "rules are one line each; braces are not part of the language",
            "}": "rules are one line each; braces are not part of the language",
            ".": "numbers need a digit before the point (`0.5`); ranges use `..`",
        }
        help_ = helps.get(nxt) or single.get(ch)
        if nxt in helps:
            span = index.span(file, pos, pos + 2)
        shown = ch if ch.isprintable() else repr(ch)
        return Diagnostic(
            "E007",
            "error",
            f"unexpected character `{shown}`",
            span,
            label="not part of the language",
            help=help_,
        )

    tok = e.token
    tspan = token_span(file, tok)
    if tspan is None or tok.type == "$END":
        at = len(src) - 1
        tspan = index.span(file, at, at)
    line_text = index.line_text(tspan.line)
    line_start = index.line_start(tspan.line)
    before = [t for t in _line_tokens(line_text) if line_start + t[0] < tspan.start]
    prev = before[-1][1] if before else None
    word = str(tok)
    found = _found(tok)
    is_eol = tok.type in ("_NL", "$END")
    if is_eol:
        # Point just after the last thing on the line, not at the comment or trailing spaces.
        if before:
            last_off, last_text = before[-1]
            at = line_start + last_off + len(last_text)
        else:
            at = line_start + len(line_text.rstrip())
        tspan = index.span(file, at, at)

    # E001: the file does not start with `steer 1`.
    if "STEER" in acc:
        from steerlang.diagnostics import Edit

        at = index.line_start(tspan.line)
        return Diagnostic(
            "E001",
            "error",
            "missing version header",
            tspan if not is_eol else index.span(file, at, at),
            label="expected `steer 1` before this",
            help="add `steer 1` as the first line",
            fix=Edit(index.span(file, at, at), "steer 1\n"),
        )

    if tok.type == "STEER":
        return Diagnostic(
            "E001",
            "error",
            "the version header must come first",
            tspan,
            label="found after other statements",
            help="move `steer 1` to the first line",
        )

    # E006: an unclosed bracket at the end of the line.
    if is_eol:
        depth: list[tuple[int, str]] = []
        for off, t in before:
            if t in ("(", "["):
                depth.append((off, t))
            elif t in (")", "]") and depth:
                depth.pop()
        if depth and ("RPAR" in acc or "RSQB" in acc):
            off, t = depth[-1]
            close = ")" if t == "(" else "]"
            span = index.span(file, line_start + off, line_start + off + 1)
            return Diagnostic(
                "E006",
                "error",
                f"unclosed `{t}`",
                span,
                label=f"this `{t}` is never closed",
                help=f"add `{close}` before the end of the line",
                secondary=[(tspan, f"expected `{close}` here")],
            )

    # E002: a line that does not start a statement.
    if acc & STATEMENT_STARTS and "SUPPRESS" not in acc:
        if tok.type in ACTION_TERMINALS:
            return Diagnostic(
                "E002",
                "error",
                f"a rule must start with its scope, found `{word}`",
                tspan,
                label="expected `at layer N` before the action",
                help=f"write `at layer N {word} …`",
            )
        stmt_words = sorted(KEYWORD_TERMINALS[t] for t in STATEMENT_STARTS)
        guess = _suggest(word, stmt_words) if tok.type == "NAME" else None
        return Diagnostic(
            "E002",
            "error",
            f"unknown statement `{word}`"
            if tok.type == "NAME"
            else f"expected a statement, found {found}",
            tspan,
            label="not a statement",
            help=f"did you mean `{guess}`?"
            if guess
            else "statements start with `recipe`, `model`, `dataset`, `task`, `groups`, "
            "`concept`, `param`, `set`, `include`, `sae`, `rule` or `at`",
        )

    # E003: the action word after a rule's scope.
    if "SUPPRESS" in acc:
        action_words = ["suppress", "clamp", "set", "scale", "add", "mean-ablate"]
        others = [KEYWORD_TERMINALS[t] for t in acc if t in KEYWORD_TERMINALS]
        if is_eol:
            return Diagnostic(
                "E003",
                "error",
                "missing action",
                tspan,
                label="expected an action here",
                help="add an action: `suppress`, `clamp … to V`, `scale … by K`, `add V to …` "
                "or `mean-ablate`",
            )
        guess = (
            _suggest(word, sorted(set(action_words) | set(others))) if tok.type == "NAME" else None
        )
        return Diagnostic(
            "E003",
            "error",
            f"unknown action `{word}`"
            if tok.type == "NAME"
            else f"expected an action, found {found}",
            tspan,
            label="not an action",
            help=f"did you mean `{guess}`?"
            if guess
            else "actions are `suppress`, `clamp`, `set`, `scale`, `add` and `mean-ablate`",
        )

    # E004: `at layer` without a number.
    if acc <= {"INT"} and prev in ("layer", "layers", ",", ".."):
        return Diagnostic(
            "E004",
            "error",
            f"missing layer number after `{prev}`",
            tspan,
            label="expected a layer number" + ("" if is_eol else f", found {found}"),
            help="write a 0-based block index such as `7`, a range `5..8`, or a list `3..5, 9`",
        )

    # E010: an action without a selector.
    if {"FEATURES", "TOP", "FEATURE"} <= acc:
        return Diagnostic(
            "E010",
            "error",
            f"missing feature selector after `{prev}`" if prev else "missing feature selector",
            tspan,
            label="expected a selector" + ("" if is_eol else f", found {found}"),
            help="write `features where …`, `top K features by …` or `feature N`",
        )

    # E005: nothing after an operator, `=`, `to`, `by`, `where`, ...
    if is_eol and acc & _EXPR_STARTS and prev is not None:
        return Diagnostic(
            "E005",
            "error",
            f"missing value after `{prev}`",
            tspan,
            label=f"expected {describe(acc - {'LPAR', 'MINUS', 'NOT'})}",
        )

    # E009: everything else.
    help_ = None
    kw = [KEYWORD_TERMINALS[t] for t in acc if t in KEYWORD_TERMINALS]
    if tok.type == "NAME" and kw:
        guess = _suggest(word, kw)
        if guess:
            help_ = f"did you mean `{guess}`?"
    if tok.type in ("LT", "LE", "GT", "GE", "EQEQ", "NE") and "AND" in acc:
        help_ = "comparisons cannot be chained; join them with `and`"
    if tok.type == "EQ" and "EQEQ" in acc:
        help_ = "write `==` to compare"
    if help_ is None and tok.type in KEYWORD_TERMINALS and "NAME" in acc:
        help_ = f"`{word}` is a reserved word; choose another name"
    msg = "unexpected end of line" if is_eol else f"unexpected {found}"
    return Diagnostic(
        "E009",
        "error",
        msg,
        tspan,
        label=f"expected {describe(acc)}",
        help=help_,
    )


# --------------------------------------------------------------------------------------------
# Completion support
# --------------------------------------------------------------------------------------------

_WORD_TAIL = re.compile(r"[A-Za-z0-9_-]*$")


def accepted_at(text: str, offset: int) -> set[str]:
    """Terminal names the grammar accepts where a token at `offset` would start.

    A partial word under the cursor is ignored (completion replaces it). Statements are single
    lines, so only the cursor's line matters once the header is behind it; errors elsewhere in
    the file do not affect the answer.
    """
    from lark.exceptions import UnexpectedInput

    offset = max(0, min(offset, len(text)))
    prefix = text[:offset]
    m = _WORD_TAIL.search(prefix)
    if m:
        prefix = prefix[: m.start()]
    line_start = prefix.rfind("\n") + 1
    before_line = prefix[:line_start]
    current = prefix[line_start:]
    if _find_comments(current):
        return set()
    has_header = any(re.match(r"\s*steer(?![A-Za-z0-9_])", ln) for ln in before_line.split("\n"))
    src = ("steer 1\n" + current) if has_header else prefix
    parser = get_parser()
    try:
        ip = parser.parse_interactive(src)
        for _ in ip.iter_parse():
            pass
        return set(ip.accepts())
    except UnexpectedInput:
        return set()
    except Exception:
        return set()
