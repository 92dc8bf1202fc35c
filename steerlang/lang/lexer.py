"""The tokens of the language: keywords, punctuation, the one token pattern, and the lexer.

One regular expression (`TOKEN_RE`) defines what a token is. The parser's lexer (`SteerLexer`),
the fast parse loop (`steerlang/lang/fast_parse.py`) and the syntax-error messages
(`line_tokens`) all read tokens with it, so a message never sees a line differently from the
parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lark.exceptions import UnexpectedCharacters
from lark.lexer import Lexer, Token

from steerlang.lang import ast

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
    "RANDOM": "random",
    "WHERE": "where",
    "AND": "and",
    "OR": "or",
    "NOT": "not",
    "TRUE": "true",
    "FALSE": "false",
}
KEYWORDS: frozenset[str] = frozenset(KEYWORD_TERMINALS.values())

PUNCTUATION: dict[str, str] = {
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
    **{t: f"`{p}`" for t, p in PUNCTUATION.items()},
    "NAME": "a name",
    "INT": "a whole number",
    "NUMBER": "a number",
    "STRING": "a string",
    "_NL": "end of line",
    "$END": "end of file",
    "COMMENT": "a comment",
    "WS": "whitespace",
}

KEYWORD_BY_WORD: dict[str, str] = {w: t for t, w in KEYWORD_TERMINALS.items()}
PUNCT_BY_TEXT: dict[str, str] = {p: t for t, p in PUNCTUATION.items()}
TOKEN_RE = re.compile(
    r"""(?P<WS>[ \t\f\r]+)
    |(?P<NL>\n)
    |(?P<COMMENT>\#[^\n]*)
    |(?P<WORD>mean-ablate(?![A-Za-z0-9_])|[A-Za-z_][A-Za-z0-9_]*)
    |(?P<NUM>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    |(?P<STR>"(?:[^"\\\n]|\\[^\n])*")
    |(?P<P>\.\.|==|!=|<=|>=|[,:()\[\]=<>+\-*/])""",
    re.X,
)
INT_RE = re.compile(r"[0-9]+")
# The rest of a line after a `"` that is never closed.
_OPEN_STRING_RE = re.compile(r'"(?:[^"\\\n]|\\[^\n])*')
_SPACE_RE = re.compile(r"\s")


def keeps_keyword(accepts: Any, prev_type: str | None) -> bool:
    """Where an int list accepts a whole number or an int param (`at layer L`), a keyword stays
    a keyword, so `at layer suppress` is a missing layer (E004) rather than a param named
    `suppress`; a `top K` count still reads a keyword as a name (E110 says it is reserved)."""
    return "INT" in accepts and prev_type not in ("TOP", "BOTTOM")


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

    def lex(self, lexer_state: Any, parser_state: Any) -> Iterator[Token]:
        text = lexer_state.text.text
        end = lexer_state.text.end
        ctr = lexer_state.line_ctr
        states = parser_state.parse_conf.parse_table.states
        match = TOKEN_RE.match
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
                ttype = KEYWORD_BY_WORD.get(value)
                if ttype is None:
                    ttype = "NAME"
                elif ttype not in accepts and "NAME" in accepts:
                    last = lexer_state.last_token
                    if not keeps_keyword(accepts, last.type if last is not None else None):
                        ttype = "NAME"
                if ttype == "NAME" and "-" in value:  # `mean-ablate` where no action fits
                    value = "mean"
            elif kind == "NUM":
                if "INT" in accepts and "NUMBER" not in accepts:
                    value = INT_RE.match(value).group()  # type: ignore[union-attr]
                    ttype = "INT"
                else:
                    ttype = "NUMBER"
            elif kind == "STR":
                ttype = "STRING"
            else:
                ttype = PUNCT_BY_TEXT[value]
            stop = pos + len(value)
            ctr.char_pos = stop
            ctr.column = stop - ctr.line_start_pos + 1
            tok = Token(ttype, value, pos, line, col, line, ctr.column, stop)
            lexer_state.last_token = tok
            yield tok


def line_tokens(line: str) -> list[tuple[int, str]]:
    """(offset, text) of the tokens of one line up to its comment, for syntax-error messages.

    Tokens as `TOKEN_RE` reads them, and two things the parser's lexer stops at: a string that
    is never closed runs to the end of the line, and any other visible character no token starts
    with is a token of its own.
    """
    out: list[tuple[int, str]] = []
    pos, n = 0, len(line)
    while pos < n:
        m = TOKEN_RE.match(line, pos) or _OPEN_STRING_RE.match(line, pos)
        if m is None:
            if not _SPACE_RE.match(line, pos):
                out.append((pos, line[pos]))
            pos += 1
            continue
        kind = m.lastgroup
        if kind == "COMMENT":
            break
        if kind != "WS" and kind != "NL":
            out.append((pos, m.group()))
        pos = m.end()
    return out


def find_comments(text: str) -> list[ast.Comment]:
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
