"""A tight LALR driver loop for text without syntax errors: the one speed-up over plain Lark.

Why it exists: `steer check` must take at most 50 ms for a 200-rule recipe after start-up
(`benchmarks/check_speed.py`). Lark's own parse loop, with its lexer-thread and parser-state
objects, makes a check of that recipe about 1.3-1.8x slower than this loop and misses the
target; most recipes have no syntax errors, so `steerlang.lang.parser.parse` tries this loop
first. At the first error it stops and hands its state to the recovering driver
(`steerlang/lang/recovery.py`), which goes on from there: the text before the error is parsed
once, not once by each driver (a 900 KB file whose only error was on its last line used to be
parsed twice).

What it relies on (private Lark API, checked by the tests in tests/lang/test_lang_grammar.py
and tests/lang/test_lang_properties.py that compare its trees with Lark's own):
- `Lark.parser.parser.parser` is the LALR parser, with `.parse_table` (`states`,
  `start_states`, `end_states`) and `.callbacks` (rule -> tree callback);
- `lark.parsers.lalr_analysis.Shift` marks shift actions; a reduce action's argument is the
  rule, with `.expansion` and `.origin.name`;
- `Token._future_new` builds a token with every position field in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lark.lexer import Token

from steerlang.lang import ast, limits
from steerlang.lang.lexer import KEYWORD_BY_WORD, PUNCT_BY_TEXT, TOKEN_RE, keeps_keyword

# (the Lark parser the tables were read from, the tables)
_TABLES: tuple[Any, Any] | None = None


def _tables(lark_parser: Any) -> Any:
    """Lark's LALR tables re-indexed for a tight driver loop, with the same tree callbacks."""
    global _TABLES
    if _TABLES is None or _TABLES[0] is not lark_parser:
        from lark.parsers.lalr_analysis import Shift

        inner = lark_parser.parser.parser.parser
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
        tables = (actions, gotos, pt.start_states["start"], pt.end_states["start"])
        _TABLES = (lark_parser, tables)
    return _TABLES[1]


@dataclass
class Stopped:
    """Where `parse_until_error` met the first syntax error: the parser's stacks and the
    lexer's position just before the token it could not take, which is exactly the state
    `steerlang.lang.recovery.recovering_parse` reaches at that token (same tables, lexing
    rules and tree callbacks, and no error before it), so recovery resumes here instead of
    parsing the text again from its start."""

    state_stack: list[int]
    value_stack: list[Any]
    pos: int  # where the token starts (`len(src)` at the end of the text)
    line: int
    line_start: int
    depth: int  # brackets open on the line before the token
    prev_type: str | None  # the last shifted token's type
    line_base: int  # stack height after the last newline was shifted


def fast_parse(src: str, lark_parser: Any) -> ast.Recipe | None:
    """The syntax tree of text with no syntax errors, or None on the first error."""
    res = parse_until_error(src, lark_parser)
    return res if isinstance(res, ast.Recipe) else None


def parse_until_error(src: str, lark_parser: Any) -> ast.Recipe | Stopped | None:
    """The syntax tree of text with no syntax errors; else where the first error stands (a
    `Stopped` for `recovering_parse` to resume from), or None when it cannot say.

    Same lexing rules as `SteerLexer`, same tables and tree callbacks as `lark_parser` (whose
    embedded tree builder must already name the file), so the tree is identical to Lark's.
    The loop is written out in one function on purpose: it runs once per token and per
    reduction, and calls cost more here than anything else it does.
    """
    actions, gotos, start, end_state = _tables(lark_parser)
    new_token = Token._future_new
    state_stack = [start]
    value_stack: list[Any] = []
    match = TOKEN_RE.match
    kw = KEYWORD_BY_WORD
    punct = PUNCT_BY_TEXT
    pos, line, line_start, n = 0, 1, 0, len(src)
    prev_type: str | None = None  # the last token's type (see lexer.keeps_keyword)
    depth = 0  # brackets open on this line (past `limits.MAX_BRACKETS`: E011, see recovery)
    line_base = 1  # stack height after the last newline (recovery's start of a statement)

    def stopped(at: int, depth_before: int) -> Stopped:
        return Stopped(
            state_stack, value_stack, at, line, line_start, depth_before, prev_type, line_base
        )

    while True:
        # -- the next token (`$END` after the last one)
        tok: Any = None
        if pos >= n:
            ttype = "$END"
        else:
            m = match(src, pos)
            if m is None:
                return stopped(pos, depth)
            kind = m.lastgroup
            value = m.group()
            if kind == "WS" or kind == "COMMENT":
                pos = m.end()
                continue
            col = pos - line_start + 1
            acts = actions[state_stack[-1]]
            if kind == "NL":
                # line, line_start and depth move on once the newline is shifted (below)
                ttype = "_NL"
                tok = new_token(ttype, value, pos, line, col, line + 1, 1, pos + 1)
                pos += 1
            else:
                if kind == "WORD":
                    ttype = kw.get(value)
                    if ttype is None or (
                        ttype not in acts and "NAME" in acts and not keeps_keyword(acts, prev_type)
                    ):
                        ttype = "NAME"
                        if "-" in value:
                            return stopped(pos, depth)
                elif kind == "NUM":
                    if len(value) > limits.MAX_NUMBER_CHARS:
                        return stopped(pos, depth)
                    if "INT" in acts and "NUMBER" not in acts:
                        if not value.isdigit():
                            return stopped(pos, depth)
                        ttype = "INT"
                    else:
                        ttype = "NUMBER"
                elif kind == "STR":
                    ttype = "STRING"
                else:
                    ttype = punct[value]
                    if ttype == "LPAR" or ttype == "LSQB":
                        if depth >= limits.MAX_BRACKETS:
                            return stopped(pos, depth)
                        depth += 1
                    elif ttype == "RPAR" or ttype == "RSQB":
                        depth -= 1
                stop = pos + len(value)
                tok = new_token(ttype, value, pos, line, col, line, stop - line_start + 1, stop)
                pos = stop
        # -- reduce as the tables say, then shift the token
        while True:
            act = actions[state_stack[-1]].get(ttype)
            if act is None:
                if tok is None:
                    return stopped(n, depth)
                # the token is not taken: recovery reads it again from its start
                if ttype == "LPAR" or ttype == "LSQB":
                    depth -= 1
                elif ttype == "RPAR" or ttype == "RSQB":
                    depth += 1
                return stopped(tok.start_pos, depth)
            if act[0]:
                if tok is None:  # the end marker is never shifted
                    return None
                state_stack.append(act[1])
                value_stack.append(tok)
                prev_type = ttype
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
            if tok is None and state_stack[-1] == end_state:
                result = value_stack[-1]
                return result if isinstance(result, ast.Recipe) else None
        if ttype == "_NL":
            line += 1
            line_start = pos
            depth = 0
            line_base = len(state_stack)
