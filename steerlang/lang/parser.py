"""Text -> syntax tree, with statement-level error recovery.

The Lark LALR parser is built lazily once per process (its analysed tables are kept on disk as
JSON in a folder private to the user, `steerlang.lang.grammar_cache`, which makes the first
parse of a process cheaper than analysing the grammar again); it builds the syntax tree while it
parses (`steerlang.lang.tree.TreeBuilder`). Syntax errors never escape as Lark exceptions:
`parse()` returns the tree it could build plus `Diagnostic`s. Recovery syncs to the end of the
line (Lark's own grammar-error finder does the same), so every independent error is reported
once and a broken statement never cascades into errors on the next lines.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Token

from steerlang.diagnostics import Diagnostic
from steerlang.lang import ast, grammar_cache
from steerlang.lang.fast_parse import fast_parse
from steerlang.lang.lexer import SteerLexer, find_comments
from steerlang.lang.spans import LineIndex
from steerlang.lang.syntax_errors import SyntaxProblem, syntax_diagnostic
from steerlang.lang.tree import TreeBuilder


def grammar_text() -> str:
    from importlib import resources

    return resources.files("steerlang.grammar").joinpath("steer.lark").read_text(encoding="utf-8")


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
        lexer=SteerLexer if lexer == "steer" else lexer,
        maybe_placeholders=True,
        strict=strict,
    )
    if transformer is not None:
        kwargs["transformer"] = transformer
    variant = f"{text}\0strict={strict}\0lexer={lexer}"
    if cache:
        # Never Lark's own `cache=`: it unpickles the cache file (see grammar_cache).
        loaded = grammar_cache.load_parser(variant, transformer)
        if loaded is not None:
            return loaded
    parser = Lark.open_from_package("steerlang.grammar", "steer.lark", **kwargs)
    if cache:
        grammar_cache.save_parser(variant, parser)
    return parser


_parser: Any = None
_builder: TreeBuilder | None = None
_LOCK = threading.Lock()
_PARSE_LOCK = threading.RLock()  # the embedded tree builder holds the current file name


@contextmanager
def parsing(file: str | None) -> Iterator[Any]:
    """The process-wide Lark parser (built on first use), held for one parse of `file`.

    The tree builder is embedded in the parser and names spans after one file at a time, so
    a parse runs under a lock with the builder set to its file.
    """
    global _parser, _builder
    if _parser is None:
        with _LOCK:
            if _parser is None:
                _builder = TreeBuilder(None)
                _parser = build_parser(transformer=_builder)
    assert _builder is not None
    with _PARSE_LOCK:
        _builder.file = file
        yield _parser


@dataclass
class ParseResult:
    recipe: ast.Recipe
    diagnostics: list[Diagnostic]


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


class _Recovery:
    """Lark's `on_error` callback: records one `SyntaxProblem` per line and puts the parser
    back on its feet at the end of the line (or after an invented `steer 1` header)."""

    def __init__(self) -> None:
        self.errors: list[SyntaxProblem] = []
        self.last_line = -1
        self.header_fixed = False

    def __call__(self, e: Any) -> bool:
        acc: frozenset[str] = frozenset()
        if getattr(e, "interactive_parser", None) is not None:
            try:
                acc = frozenset(e.interactive_parser.accepts())
            except Exception:
                acc = frozenset()
        line = _error_line(e)
        if isinstance(e, UnexpectedToken) and e.token.type == "$END":
            if line != self.last_line:
                self.errors.append(SyntaxProblem(e, acc, line))
            return False
        if line != self.last_line:
            self.errors.append(SyntaxProblem(e, acc, line))
            self.last_line = line
        if isinstance(e, UnexpectedToken):
            ip = e.interactive_parser
            if "STEER" in acc and not self.header_fixed:
                # Missing header: pretend `steer 1` was there and go on with this token, so a
                # file without a header gets exactly one error.
                self.header_fixed = True
                for t in ("STEER", "INT", "_NL"):
                    ip.feed_token(Token(t, ""))
                if e.token.type != "_NL":
                    try:
                        ip.feed_token(e.token)
                    except UnexpectedInput:
                        pass
                    else:
                        self.last_line = -1
                return True
            if e.token.type == "_NL":
                _sync_to_newline(ip)
                ip.feed_token(e.token)
        return True


def parse(text: str, file: str | None = None) -> ParseResult:
    """Parse one file. Never raises for any input text."""
    src = text.replace("\ufeff", " ", 1) if text.startswith("\ufeff") else text
    src = src + "\n"
    recovery = _Recovery()
    recipe = None
    with parsing(file) as lark_parser:
        try:
            recipe = fast_parse(src, lark_parser)
        except Exception:
            recipe = None
        if recipe is None:
            try:
                recipe = lark_parser.parse(src, on_error=recovery)
            except (UnexpectedInput, RuntimeError):
                recipe = None
    if not isinstance(recipe, ast.Recipe):
        recipe = ast.Recipe(file, None, [])
    recipe.comments = find_comments(text)
    errors = recovery.errors
    diags: list[Diagnostic] = []
    if errors:
        index = LineIndex(src)
        diags = [syntax_diagnostic(err, src, index, file) for err in errors]
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
