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

from steerlang.diagnostics import Diagnostic
from steerlang.lang import ast, grammar_cache
from steerlang.lang.collector import collector_paused
from steerlang.lang.fast_parse import parse_until_error
from steerlang.lang.lexer import SteerLexer, find_comments
from steerlang.lang.recovery import recovering_parse
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


def parse(text: str, file: str | None = None) -> ParseResult:
    """Parse one file. Never raises for any input text."""
    src = text.replace("\ufeff", " ", 1) if text.startswith("\ufeff") else text
    src = src + "\n"
    errors: list[SyntaxProblem] = []
    recipe = None
    with parsing(file) as lark_parser, collector_paused():
        try:
            fast = parse_until_error(src, lark_parser)
        except Exception:
            fast = None
        if isinstance(fast, ast.Recipe):
            recipe = fast
        else:
            # from where the fast loop stopped (None: from the start)
            recipe, errors = recovering_parse(src, lark_parser, fast)
    if not isinstance(recipe, ast.Recipe):
        recipe = ast.Recipe(file, None, [])
    recipe.comments = find_comments(text)
    diags: list[Diagnostic] = []
    if errors:
        index = LineIndex(src)
        diags = [syntax_diagnostic(err, src, index, file) for err in errors]
    bad_lines = {err.line for err in errors}
    if bad_lines:
        for s in recipe.statements:
            if s.span is None or not bad_lines.isdisjoint(range(s.span.line, s.span.end_line + 1)):
                s.broken = True
        if recipe.header is not None and (
            recipe.header.span is None or recipe.header.span.line in bad_lines
        ):
            recipe.header.broken = True
    return ParseResult(recipe, diags)
