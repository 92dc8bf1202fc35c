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
import threading
from dataclasses import dataclass
from typing import Any

from lark.exceptions import UnexpectedCharacters
from lark.lexer import Lexer, Token

from steerlang.diagnostics import Diagnostic, Edit, SourceSpan
from steerlang.lang import ast
from steerlang.lang.spans import LineIndex, make_span, token_span

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


_KEYWORD_BY_WORD: dict[str, str] = {w: t for t, w in KEYWORD_TERMINALS.items()}
_PUNCT_BY_TEXT: dict[str, str] = {p: t for t, p in _PUNCT.items()}
_TOKEN_RE = re.compile(
    r"""(?P<WS>[ \t\f\r]+)
    |(?P<NL>\n)
    |(?P<COMMENT>\#[^\n]*)
    |(?P<WORD>mean-ablate(?![A-Za-z0-9_])|[A-Za-z_][A-Za-z0-9_]*)
    |(?P<NUM>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    |(?P<STR>"(?:[^"\\\n]|\\[^\n])*")
    |(?P<P>\.\.|==|!=|<=|>=|[,:()\[\]=<>+\-*/])""",
    re.X,
)
_INT_RE = re.compile(r"[0-9]+")


class SteerLexer(Lexer):
    """A hand-written lexer with the semantics of Lark's contextual lexer, but faster.

    Like Lark's contextual lexer it asks the parser which terminals the current state accepts:
    a keyword is a keyword only where the grammar accepts it (elsewhere it is a NAME), and a
    digit run is an INT where an INT is expected and a NUMBER elsewhere. Where nothing fits,
    it returns the token the whole-language lexer would, so the parser reports it.
    """

    __future_interface__ = 2

    def __init__(self, lexer_conf: Any) -> None:
        self.terminals_by_name = lexer_conf.terminals_by_name

    def lex(self, lexer_state: Any, parser_state: Any) -> Any:
        text = lexer_state.text.text
        end = lexer_state.text.end
        ctr = lexer_state.line_ctr
        states = parser_state.parse_conf.parse_table.states
        match = _TOKEN_RE.match
        while ctr.char_pos < end:
            pos = ctr.char_pos
            m = match(text, pos)
            if m is None:
                raise UnexpectedCharacters(
                    text,
                    pos,
                    ctr.line,
                    ctr.column,
                    allowed=set(states[parser_state.position]),
                    state=parser_state,
                    terminals_by_name=self.terminals_by_name,
                    token_history=lexer_state.last_token and [lexer_state.last_token],
                )
            kind = m.lastgroup
            value = m.group()
            if kind == "WS" or kind == "COMMENT":
                ctr.char_pos = m.end()
                ctr.column = ctr.char_pos - ctr.line_start_pos + 1
                continue
            line, col = ctr.line, ctr.column
            if kind == "NL":
                ctr.char_pos = pos + 1
                ctr.line += 1
                ctr.line_start_pos = pos + 1
                ctr.column = 1
                tok = Token("_NL", value, pos, line, col, line + 1, 1, pos + 1)
                lexer_state.last_token = tok
                yield tok
                continue
            accepts = states[parser_state.position]
            if kind == "WORD":
                ttype = _KEYWORD_BY_WORD.get(value)
                if ttype is None:
                    ttype = "NAME"
                elif ttype not in accepts and "NAME" in accepts:
                    ttype = "NAME"
                if ttype == "NAME" and "-" in value:  # `mean-ablate` where no action fits
                    value = "mean"
            elif kind == "NUM":
                if "INT" in accepts and "NUMBER" not in accepts:
                    value = _INT_RE.match(value).group()  # type: ignore[union-attr]
                    ttype = "INT"
                else:
                    ttype = "NUMBER"
            elif kind == "STR":
                ttype = "STRING"
            else:
                ttype = _PUNCT_BY_TEXT[value]
            stop = pos + len(value)
            ctr.char_pos = stop
            ctr.column = stop - ctr.line_start_pos + 1
            tok = Token(ttype, value, pos, line, col, line, ctr.column, stop)
            lexer_state.last_token = tok
            yield tok


def _make_lexer_class() -> Any:
    return SteerLexer


def build_parser(
    *, strict: bool = False, cache: bool = True, lexer: str = "steer", transformer: Any = None
) -> Any:
    """A fresh Lark parser.

    `strict=True` turns grammar conflicts and terminal collisions into errors (tests use it
    with `lexer="contextual"`, Lark's own lexer over the grammar's terminal definitions);
    production uses our faster lexer with the same semantics and builds the syntax tree
    during parsing (`transformer`).
    """
    from lark import Lark

    text = grammar_text()
    kwargs: dict[str, Any] = dict(
        parser="lalr",
        lexer=_make_lexer_class() if lexer == "steer" else lexer,
        maybe_placeholders=True,
        strict=strict,
    )
    if transformer is not None:
        kwargs["transformer"] = transformer
    cache_path = _cache_file(f"{text}\0strict={strict}\0lexer={lexer}") if cache else None
    try:
        if cache_path:
            return Lark.open_from_package(
                "steerlang.grammar", "steer.lark", cache=cache_path, **kwargs
            )
    except Exception:  # an unreadable or unwritable cache must never stop the parser
        pass
    return Lark.open_from_package("steerlang.grammar", "steer.lark", **kwargs)


_BUILDER: Any = None
_LOCK = threading.Lock()
_PARSE_LOCK = threading.RLock()  # the embedded tree builder holds the current file name


def get_parser() -> Any:
    """The process-wide parser (built on first use); its tree builder is `_BUILDER`."""
    global _parser, _BUILDER
    if _parser is None:
        with _LOCK:
            if _parser is None:
                _BUILDER = _Builder(None)
                _parser = build_parser(transformer=_BUILDER)
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


def _bounds(it: Any, b: _Builder) -> tuple | None:
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


class _Builder:
    """Bottom-up conversion of the Lark tree to `steerlang.lang.ast`. Lenient by design: tokens
    invented by error recovery (empty, no position) give placeholder values, and the statement
    is marked broken afterwards."""

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


def _cursor(ip: Any) -> Any:
    """A cheap copy of an interactive parser that runs no tree-building callbacks."""
    from copy import copy

    c = ip.copy(deepcopy_values=False)
    conf = copy(c.parser_state.parse_conf)
    conf.callbacks = {}
    c.parser_state.parse_conf = conf
    return c


def _sync_to_newline(ip: Any) -> None:
    """Feed invented tokens until a newline is acceptable: a breadth-first search over the
    parse table on callback-free copies, then the shortest path is fed to the real parser."""
    from lark.lexer import Token

    if "_NL" in ip.accepts():
        return
    start = _cursor(ip)
    frontier: list[tuple[tuple[str, ...], Any]] = [((), start)]
    seen = {tuple(start.parser_state.state_stack)}
    for _ in range(12):
        nxt = []
        for path, p in frontier:
            for choice in p.choices():
                if not choice.isupper() or choice == "$END":
                    continue
                q = p.copy(deepcopy_values=False)
                try:
                    q.feed_token(Token(choice, ""))
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
    if "#" not in text:
        return out
    offset = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        at = line.find("#")
        if at >= 0 and '"' in line[:at]:
            at, i, in_str = -1, 0, False
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
                    at = i
                    break
                i += 1
        if at >= 0:
            out.append(ast.Comment(line[at:].rstrip(), lineno, at + 1, offset + at))
        offset += len(line) + 1
    return out


@dataclass
class ParseResult:
    recipe: ast.Recipe
    diagnostics: list[Diagnostic]


# --------------------------------------------------------------------------------------------
# Fast path: the LALR tables driven by a tight loop (no recovery; errors fall back to Lark)
# --------------------------------------------------------------------------------------------

_FAST: Any = None


def _fast_tables() -> Any:
    """Lark's LALR tables re-indexed for a tight driver loop, with the same tree callbacks."""
    global _FAST
    if _FAST is None:
        from lark.parsers.lalr_analysis import Shift

        inner = get_parser().parser.parser.parser
        pt = inner.parse_table
        rules: dict[int, tuple[int, str, Any]] = {}
        actions: dict[int, dict[str, tuple[bool, Any]]] = {}
        gotos: dict[int, dict[str, int]] = {}
        for st, acts in pt.states.items():
            a: dict[str, tuple[bool, Any]] = {}
            g: dict[str, int] = {}
            for sym_, (action, arg) in acts.items():
                sym = str(sym_)  # Lark keys some symbols by Token; plain str hashes faster
                if sym.isupper():
                    if action is Shift:
                        a[sym] = (True, arg)
                    else:
                        r = rules.get(id(arg))
                        if r is None:
                            r = rules[id(arg)] = (
                                len(arg.expansion),
                                str(arg.origin.name),
                                inner.callbacks[arg],
                            )
                        a[sym] = (False, r)
                else:
                    g[sym] = arg
            actions[st] = a
            gotos[st] = g
        _FAST = (actions, gotos, pt.start_states["start"], pt.end_states["start"])
    return _FAST


def _fast_parse(src: str) -> ast.Recipe | None:
    """Parse text with no syntax errors ~2x faster than Lark's own loop; None on any error.

    Same lexing rules as `SteerLexer`, same tables and tree callbacks as the Lark parser, so
    the result is identical; the caller falls back to the recovering parser on None.
    """
    from lark.lexer import Token

    actions, gotos, start, end_state = _fast_tables()
    new_token = Token._future_new
    state_stack = [start]
    value_stack: list[Any] = []
    match = _TOKEN_RE.match
    kw = _KEYWORD_BY_WORD
    punct = _PUNCT_BY_TEXT
    pos, line, line_start, n = 0, 1, 0, len(src)
    while pos < n:
        m = match(src, pos)
        if m is None:
            return None
        kind = m.lastgroup
        value = m.group()
        if kind == "WS" or kind == "COMMENT":
            pos = m.end()
            continue
        col = pos - line_start + 1
        acts = actions[state_stack[-1]]
        if kind == "NL":
            tok = new_token("_NL", value, pos, line, col, line + 1, 1, pos + 1)
            line += 1
            line_start = pos + 1
            pos += 1
        else:
            if kind == "WORD":
                ttype = kw.get(value)
                if ttype is None or (ttype not in acts and "NAME" in acts):
                    ttype = "NAME"
                    if "-" in value:
                        return None
            elif kind == "NUM":
                if "INT" in acts and "NUMBER" not in acts:
                    if not value.isdigit():
                        return None
                    ttype = "INT"
                else:
                    ttype = "NUMBER"
            elif kind == "STR":
                ttype = "STRING"
            else:
                ttype = punct[value]
            stop = pos + len(value)
            tok = new_token(ttype, value, pos, line, col, line, stop - line_start + 1, stop)
            pos = stop
        ttype = tok.type
        while True:
            act = actions[state_stack[-1]].get(ttype)
            if act is None:
                return None
            if act[0]:
                state_stack.append(act[1])
                value_stack.append(tok)
                break
            size, origin, cb = act[1]
            if size:
                args = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                args = []
            value_stack.append(cb(args))
            state_stack.append(gotos[state_stack[-1]][origin])
    while True:
        act = actions[state_stack[-1]].get("$END")
        if act is None or act[0]:
            return None
        size, origin, cb = act[1]
        if size:
            args = value_stack[-size:]
            del state_stack[-size:]
            del value_stack[-size:]
        else:
            args = []
        value_stack.append(cb(args))
        state_stack.append(gotos[state_stack[-1]][origin])
        if state_stack[-1] == end_state:
            result = value_stack[-1]
            return result if isinstance(result, ast.Recipe) else None


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
    recipe = None
    with _PARSE_LOCK:
        _BUILDER.file = file
        try:
            recipe = _fast_parse(src)
        except Exception:
            recipe = None
        if recipe is None:
            try:
                recipe = parser.parse(src, on_error=on_error)
            except (UnexpectedInput, RuntimeError):
                recipe = None
    if not isinstance(recipe, ast.Recipe):
        recipe = ast.Recipe(file, None, [])
    recipe.comments = _find_comments(text)
    diags: list[Diagnostic] = []
    if errors:
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


_EXAMPLES = {"=": "= 0.3", "to": "to 20", "by": "by 0.5", "where": "where corr(water) > 0.3"}


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
        shown = nxt if nxt in helps else (ch if ch.isprintable() else repr(ch))
        return Diagnostic(
            "E007",
            "error",
            f"unexpected character{'s' if len(shown) > 1 else ''} `{shown}`",
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
            fix=Edit(tspan, guess) if guess else None,
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
            fix=Edit(tspan, guess) if guess else None,
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
            help=f"write the value on the same line, e.g. `{_EXAMPLES.get(prev, prev + ' 0.3')}`",
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

_WORD_TAIL = re.compile(r"[A-Za-z0-9_-]*\Z")


def accepted_at(text: str, offset: int) -> set[str]:
    """Terminal names the grammar accepts where a token at `offset` would start.

    A partial word under the cursor is ignored (completion replaces it). Statements are single
    lines, so only the cursor's line matters once the header is behind it; errors elsewhere in
    the file do not affect the answer.
    """

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
    with _PARSE_LOCK:
        _BUILDER.file = None
        try:
            ip = parser.parse_interactive(src)
            for _ in ip.iter_parse():
                pass
            return set(ip.accepts())
        except Exception:
            return set()
