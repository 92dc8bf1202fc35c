"""Syntax errors in words: one `Diagnostic` (E001-E010) for each error the parser recovered from.

A lexer error (a character no token starts with, a string never closed) has its own message.
A token the grammar does not accept at that point goes through `_CHECKS` in order; the first
check that recognises the situation (a missing header, an unclosed bracket, a line that is not
a statement, ...) writes the diagnostic, and `_unexpected` (E009) covers the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark.exceptions import UnexpectedCharacters

from steerlang.diagnostics import Diagnostic, Edit, SourceSpan
from steerlang.errors import did_you_mean
from steerlang.lang.lexer import KEYWORD_TERMINALS, TERMINAL_DESCRIPTIONS, line_tokens
from steerlang.lang.spans import LineIndex, token_span

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
_EXAMPLES = {"=": "= 0.3", "to": "to 20", "by": "by 0.5", "where": "where corr(water) > 0.3"}

# Two characters from other languages, and single ones, with the fix for each.
_PAIR_HELP = {
    "&&": "write `and` instead of `&&`",
    "||": "write `or` instead of `||`",
}
_CHAR_HELP = {
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


@dataclass
class SyntaxProblem:
    """One error the parser recovered from: Lark's exception, the terminals the parser would
    have accepted there, and the 1-based line (10**9 when unknown)."""

    exc: Any
    accepts: frozenset[str]
    line: int


@dataclass
class LimitProblem:
    """A line past one of the parser's limits (`steerlang/lang/limits.py`): the diagnostic in
    full, with the code-point offsets of what it points at."""

    code: str
    message: str
    label: str
    help: str
    start: int
    end: int


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


def syntax_diagnostic(
    err: SyntaxProblem, src: str, index: LineIndex, file: str | None
) -> Diagnostic:
    if isinstance(err.exc, LimitProblem):
        x = err.exc
        span = index.span(file, x.start, x.end)
        return Diagnostic(x.code, "error", x.message, span, label=x.label, help=x.help)
    if isinstance(err.exc, UnexpectedCharacters):
        return _bad_character(err.exc, src, index, file)
    at = _At.of(err, src, index, file)
    for check in _CHECKS:
        d = check(at)
        if d is not None:
            return d
    return _unexpected(at)


def _bad_character(
    e: UnexpectedCharacters, src: str, index: LineIndex, file: str | None
) -> Diagnostic:
    """E008 for a string never closed, E007 for any other character no token starts with."""
    pos = e.pos_in_stream
    ch = src[pos] if pos < len(src) else ""
    line, _col = index.position(pos)
    if ch == '"':
        line_text = index.line_text(line)
        end = index.line_start(line) + len(line_text.rstrip())
        return Diagnostic(
            "E008",
            "error",
            "unterminated string",
            index.span(file, pos, end),
            label="this string is never closed",
            help='add the closing `"`',
            fix=Edit(index.span(file, end, end), '"'),
        )
    span = index.span(file, pos, pos + 1)
    nxt = src[pos : pos + 2]
    help_ = _PAIR_HELP.get(nxt) or _CHAR_HELP.get(ch)
    if nxt in _PAIR_HELP:
        span = index.span(file, pos, pos + 2)
    shown = nxt if nxt in _PAIR_HELP else (ch if ch.isprintable() else repr(ch))
    return Diagnostic(
        "E007",
        "error",
        f"unexpected character{'s' if len(shown) > 1 else ''} `{shown}`",
        span,
        label="not part of the language",
        help=help_,
    )


@dataclass
class _At:
    """Where an unexpected token stands: what was found, and what came before it on its line."""

    acc: frozenset[str]
    tok: Any
    span: SourceSpan  # the token, or the point just after the line's last token at its end
    file: str | None
    index: LineIndex
    line_start: int
    before: list[tuple[int, str]]  # the line's tokens before this one: (offset in line, text)
    prev: str | None  # the text of the last of them
    word: str
    found: str  # the token in words
    is_eol: bool  # the token is the end of the line (or of the file)

    @classmethod
    def of(cls, err: SyntaxProblem, src: str, index: LineIndex, file: str | None) -> _At:
        tok = err.exc.token
        tspan = token_span(file, tok)
        if tspan is None or tok.type == "$END":
            at = len(src) - 1
            tspan = index.span(file, at, at)
        line_text = index.line_text(tspan.line)
        line_start = index.line_start(tspan.line)
        before = [t for t in line_tokens(line_text) if line_start + t[0] < tspan.start]
        is_eol = tok.type in ("_NL", "$END")
        if is_eol:
            # Point just after the last thing on the line, not at the comment or trailing spaces.
            if before:
                last_off, last_text = before[-1]
                at = line_start + last_off + len(last_text)
            else:
                at = line_start + len(line_text.rstrip())
            tspan = index.span(file, at, at)
        return cls(
            acc=err.accepts,
            tok=tok,
            span=tspan,
            file=file,
            index=index,
            line_start=line_start,
            before=before,
            prev=before[-1][1] if before else None,
            word=str(tok),
            found=_found(tok),
            is_eol=is_eol,
        )


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


def _header(at: _At) -> Diagnostic | None:
    """E001: the file does not start with `steer 1`, or `steer` comes later."""
    if "STEER" in at.acc:
        start = at.index.line_start(at.span.line)
        return Diagnostic(
            "E001",
            "error",
            "missing version header",
            at.span if not at.is_eol else at.index.span(at.file, start, start),
            label="expected `steer 1` before this",
            help="add `steer 1` as the first line",
            fix=Edit(at.index.span(at.file, start, start), "steer 1\n"),
        )
    if at.tok.type == "STEER":
        return Diagnostic(
            "E001",
            "error",
            "the version header must come first",
            at.span,
            label="found after other statements",
            help="move `steer 1` to the first line",
        )
    return None


def _unclosed_bracket(at: _At) -> Diagnostic | None:
    """E006: an unclosed bracket at the end of the line."""
    if not at.is_eol:
        return None
    depth: list[tuple[int, str]] = []
    for off, t in at.before:
        if t in ("(", "["):
            depth.append((off, t))
        elif t in (")", "]") and depth:
            depth.pop()
    if not depth or not ("RPAR" in at.acc or "RSQB" in at.acc):
        return None
    off, t = depth[-1]
    close = ")" if t == "(" else "]"
    span = at.index.span(at.file, at.line_start + off, at.line_start + off + 1)
    return Diagnostic(
        "E006",
        "error",
        f"unclosed `{t}`",
        span,
        label=f"this `{t}` is never closed",
        help=f"add `{close}` before the end of the line",
        secondary=[(at.span, f"expected `{close}` here")],
    )


def _not_a_statement(at: _At) -> Diagnostic | None:
    """E002: a line that does not start a statement."""
    if not (at.acc & STATEMENT_STARTS) or "SUPPRESS" in at.acc:
        return None
    word = at.word
    if at.tok.type in ACTION_TERMINALS:
        return Diagnostic(
            "E002",
            "error",
            f"a rule must start with its scope, found `{word}`",
            at.span,
            label="expected `at layer N` before the action",
            help=f"write `at layer N {word} …`",
        )
    is_name = at.tok.type == "NAME"
    guess = (
        did_you_mean(word, [KEYWORD_TERMINALS[t] for t in STATEMENT_STARTS]) if is_name else None
    )
    return Diagnostic(
        "E002",
        "error",
        f"unknown statement `{word}`" if is_name else f"expected a statement, found {at.found}",
        at.span,
        label="not a statement",
        help=f"did you mean `{guess}`?"
        if guess
        else "statements start with `recipe`, `model`, `dataset`, `task`, `groups`, "
        "`concept`, `param`, `set`, `include`, `sae`, `rule` or `at`",
        fix=Edit(at.span, guess) if guess else None,
    )


def _bad_action(at: _At) -> Diagnostic | None:
    """E003: the action word after a rule's scope."""
    if "SUPPRESS" not in at.acc:
        return None
    if at.is_eol:
        return Diagnostic(
            "E003",
            "error",
            "missing action",
            at.span,
            label="expected an action here",
            help="add an action: `suppress`, `clamp … to V`, `scale … by K`, `add V to …` "
            "or `mean-ablate`",
        )
    action_words = {"suppress", "clamp", "set", "scale", "add", "mean-ablate"}
    others = {KEYWORD_TERMINALS[t] for t in at.acc if t in KEYWORD_TERMINALS}
    is_name = at.tok.type == "NAME"
    guess = did_you_mean(at.word, action_words | others) if is_name else None
    return Diagnostic(
        "E003",
        "error",
        f"unknown action `{at.word}`" if is_name else f"expected an action, found {at.found}",
        at.span,
        label="not an action",
        help=f"did you mean `{guess}`?"
        if guess
        else "actions are `suppress`, `clamp`, `set`, `scale`, `add` and `mean-ablate`",
        fix=Edit(at.span, guess) if guess else None,
    )


def _missing_layer(at: _At) -> Diagnostic | None:
    """E004: `at layer` without a number."""
    if not (at.acc <= {"INT", "NAME"} and at.prev in ("layer", "layers", ",", "..")):
        return None
    return Diagnostic(
        "E004",
        "error",
        f"missing layer number after `{at.prev}`",
        at.span,
        label="expected a layer number" + ("" if at.is_eol else f", found {at.found}"),
        help="write a 0-based block index such as `7`, a range `5..8`, a list `3..5, 9`, "
        "or an int param (`param L = 7` … `at layer L`)",
    )


def _missing_selector(at: _At) -> Diagnostic | None:
    """E010: an action without a selector."""
    if not {"FEATURES", "TOP", "FEATURE"} <= at.acc:
        return None
    return Diagnostic(
        "E010",
        "error",
        f"missing feature selector after `{at.prev}`" if at.prev else "missing feature selector",
        at.span,
        label="expected a selector" + ("" if at.is_eol else f", found {at.found}"),
        help="write `features where …`, `top K features by …`, `random K features` or `feature N`",
    )


def _missing_value(at: _At) -> Diagnostic | None:
    """E005: nothing after an operator, `=`, `to`, `by`, `where`, ..."""
    if not (at.is_eol and at.acc & _EXPR_STARTS and at.prev is not None):
        return None
    prev = at.prev
    return Diagnostic(
        "E005",
        "error",
        f"missing value after `{prev}`",
        at.span,
        label=f"expected {describe(at.acc - {'LPAR', 'MINUS', 'NOT'})}",
        help=f"write the value on the same line, e.g. `{_EXAMPLES.get(prev, prev + ' 0.3')}`",
    )


def _unexpected(at: _At) -> Diagnostic:
    """E009: everything else."""
    acc, ttype = at.acc, at.tok.type
    help_ = None
    kw = [KEYWORD_TERMINALS[t] for t in acc if t in KEYWORD_TERMINALS]
    if ttype == "NAME" and kw:
        guess = did_you_mean(at.word, kw)
        if guess:
            help_ = f"did you mean `{guess}`?"
    if ttype in ("LT", "LE", "GT", "GE", "EQEQ", "NE") and "AND" in acc:
        help_ = "comparisons cannot be chained; join them with `and`"
    if ttype == "EQ" and "EQEQ" in acc:
        help_ = "write `==` to compare"
    if help_ is None and ttype in KEYWORD_TERMINALS and "NAME" in acc:
        help_ = f"`{at.word}` is a reserved word; choose another name"
    return Diagnostic(
        "E009",
        "error",
        "unexpected end of line" if at.is_eol else f"unexpected {at.found}",
        at.span,
        label=f"expected {describe(acc)}",
        help=help_,
    )


_CHECKS: tuple[Callable[[_At], Diagnostic | None], ...] = (
    _header,
    _unclosed_bracket,
    _not_a_statement,
    _bad_action,
    _missing_layer,
    _missing_selector,
    _missing_value,
)
