"""The recovering LALR driver: text with syntax errors -> syntax tree + one problem per line,
in time linear in the text.

Why it exists: the parser used to recover through Lark's `on_error` hook, finding the tokens
that end a broken statement by a breadth-first search over copies of Lark's interactive parser.
That search grows exponentially with the number of open brackets (seven unclosed `(` took
39 s), and every error copied the whole parser state several times, so 50,000 broken lines or
a megabyte of garbage took minutes. This driver runs on the same tables and tree callbacks as
`steerlang/lang/fast_parse.py` and keeps the recovery rules of the old hook:

- the first error on a line is recorded (a `SyntaxProblem`, with the terminals the parser would
  have accepted, computed on the tables); later tokens on that line are fed if they fit and
  dropped if they do not, and a character no token starts with is skipped;
- a file without a `steer 1` header gets one invented header and parsing goes on;
- at the end of a broken line, the statement is finished with invented (empty, position-less)
  tokens, then the newline is fed. The invented tokens come from the LR(0) items of the parser
  states (`_Completer`): in the state on top of the stack, take the item with the shortest
  rest, feed the shortest terminal string its rest derives, repeat. Every item of the top
  state is valid for the stack (the viable-prefix property of LR automata), so the sequence is
  one the parser accepts, and its length is linear in the stack height, not exponential.

Each token costs the table steps it takes; each recorded error costs the height of the stack
on its line; so a file costs time linear in its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lark.exceptions import UnexpectedCharacters
from lark.lexer import Token

from steerlang.lang import ast, limits
from steerlang.lang.fast_parse import Stopped, _tables
from steerlang.lang.lexer import INT_RE, KEYWORD_BY_WORD, PUNCT_BY_TEXT, TOKEN_RE, keeps_keyword
from steerlang.lang.syntax_errors import LimitProblem, SyntaxProblem

_NO_LINE = 10**9


@dataclass
class TokenError:
    """A token the grammar does not accept where it stands (what `syntax_errors` reads from
    Lark's `UnexpectedToken`: the token)."""

    token: Any


class _Completer:
    """For each parser state, the LR(0) kernel item with the shortest rest, and for each
    nonterminal the shortest terminal string it derives.

    The items are rebuilt from the grammar's rules (`lark_parser.rules`) and matched to Lark's
    numbered states by walking both automata in step from the start state; where they do not
    match (a Lark change), `ok` is False and the caller falls back to dropping the line."""

    def __init__(self, lark_parser: Any) -> None:
        actions, gotos, start, _end = _tables(lark_parser)
        rules = list(lark_parser.rules)
        by_origin: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for r in rules:
            key = (str(r.origin.name), tuple(str(s.name) for s in r.expansion))
            by_origin.setdefault(key[0], []).append(key)
        # the shortest terminal string each nonterminal derives (fixpoint)
        short: dict[str, tuple[str, ...]] = {}
        changed = True
        while changed:
            changed = False
            for origin, alts in by_origin.items():
                for _o, exp in alts:
                    parts: list[str] = []
                    for s in exp:
                        if s in by_origin:
                            if s not in short:
                                break
                            parts.extend(short[s])
                        else:
                            parts.append(s)
                    else:
                        cur = short.get(origin)
                        if cur is None or len(parts) < len(cur):
                            short[origin] = tuple(parts)
                            changed = True
        self.short = short
        self.nonterminals = set(by_origin)

        def closure(kernel: frozenset) -> set:
            items = set(kernel)
            todo = list(kernel)
            while todo:
                origin, exp, dot = todo.pop()
                if dot < len(exp) and exp[dot] in by_origin:
                    for _o, e in by_origin[exp[dot]]:
                        it = (exp[dot], e, 0)
                        if it not in items:
                            items.add(it)
                            todo.append(it)
            return items

        def goto(items: set, sym: str) -> frozenset:
            return frozenset((o, e, d + 1) for o, e, d in items if d < len(e) and e[d] == sym)

        root = ("$root_start", ("start", "$END"), 0)
        kernels: dict[int, frozenset] = {start: frozenset({root})}
        todo = [start]
        self.ok = True
        while todo and self.ok:
            st = todo.pop()
            items = closure(kernels[st])
            moves = [(s, a[1]) for s, a in actions[st].items() if a[0]]
            moves += list(gotos[st].items())
            for sym, target in moves:
                k = goto(items, sym)
                old = kernels.get(target)
                if old is None:
                    kernels[target] = k
                    todo.append(target)
                elif old != k:
                    self.ok = False
                    break
        # per state: (rest of the best kernel item as symbols, size of its rule, its origin)
        self.best: dict[int, tuple[tuple[str, ...], int, str]] = {}
        for st, kernel in kernels.items():
            cands = []
            for origin, exp, dot in kernel:
                rest = exp[dot:]
                cost = sum(len(short.get(s, (s,))) for s in rest)
                # prefer short rests; among equals, a name over other tokens (a missing operand
                # reads as a missing name), then a fixed order
                cands.append((cost, "NAME" not in rest[:1], rest, len(exp), origin))
            if cands:
                cost, _n, rest, size, origin = min(cands)
                self.best[st] = (rest, size, origin)
        self.actions, self.gotos = actions, gotos


_COMPLETERS: dict[int, _Completer] = {}


def _completer(lark_parser: Any) -> _Completer:
    c = _COMPLETERS.get(id(lark_parser))
    if c is None:
        c = _COMPLETERS[id(lark_parser)] = _Completer(lark_parser)
    return c


def _shifts(actions: Any, gotos: Any, stack: list[int], ttype: str, end_state: int) -> bool:
    """Would `ttype` be shifted (after the reductions it triggers) on `stack`? The stack is
    not changed: reductions pop into an index and push onto a small overlay."""
    i = len(stack)
    over: list[int] = []
    while True:
        top = over[-1] if over else stack[i - 1]
        act = actions[top].get(ttype)
        if act is None:
            return False
        if act[0]:
            return True
        size, origin, _cb = act[1]
        k = min(size, len(over))
        if k:
            del over[-k:]
        i -= size - k
        top = over[-1] if over else stack[i - 1]
        over.append(gotos[top][origin])
        if ttype == "$END" and over[-1] == end_state:
            return True


def accepted(actions: Any, gotos: Any, stack: list[int], end_state: int) -> frozenset[str]:
    """The terminals the parser accepts on `stack` (what Lark's `InteractiveParser.accepts`
    computes by copying the parser once per terminal)."""
    return frozenset(t for t in actions[stack[-1]] if _shifts(actions, gotos, stack, t, end_state))


def completion(
    comp: _Completer, stack: list[int], end_state: int, opens: int = 0
) -> list[str] | None:
    """Invented terminals after which a newline is accepted on `stack` (None if none found).

    `opens` is how many brackets are open on the stack: no newline is accepted inside a bracket,
    so the (costlier) newline test is skipped until the invented tokens closed them all."""
    actions, gotos = comp.actions, comp.gotos
    sim = list(stack)
    out: list[str] = []

    def feed(t: str) -> bool:
        while True:
            act = actions[sim[-1]].get(t)
            if act is None:
                return False
            if act[0]:
                sim.append(act[1])
                return True
            size, origin, _cb = act[1]
            if size:
                del sim[-size:]
            sim.append(gotos[sim[-1]][origin])

    for _ in range(4 * len(stack) + 64):
        if (
            opens <= 0
            and "_NL" in actions[sim[-1]]
            and _shifts(actions, gotos, sim, "_NL", end_state)
        ):
            return out
        best = comp.best.get(sim[-1])
        if best is None:
            return None
        rest, size, origin = best
        if not rest:
            # a complete item: reduce it by hand (its lookahead comes from what follows)
            if size >= len(sim):
                return None
            del sim[len(sim) - size :]
            nxt = gotos[sim[-1]].get(origin)
            if nxt is None:
                return None
            sim.append(nxt)
            continue
        sym = rest[0]
        for t in comp.short.get(sym, (sym,)) if sym in comp.nonterminals else (sym,):
            if t == "$END" or not feed(t):
                return None
            out.append(t)
            if t in _CLOSE:
                opens -= 1
            elif t in _OPEN:
                opens += 1
    return None


_OPEN = frozenset({"LPAR", "LSQB"})
_CLOSE = frozenset({"RPAR", "RSQB"})


def _open_brackets(values: list[Any]) -> int:
    """Brackets opened and not yet closed among the shifted tokens (a matched pair is reduced
    to a node, or still stands as both its tokens)."""
    n = 0
    for v in values:
        t = getattr(v, "type", None)
        if t in _OPEN:
            n += 1
        elif t in _CLOSE:
            n -= 1
    return n


def recovering_parse(
    src: str, lark_parser: Any, resume: Stopped | None = None
) -> tuple[ast.Recipe | None, list[SyntaxProblem]]:
    """The syntax tree of any text (None when not even a header could be found) and its
    syntax problems, one per line at most. Same lexing rules as `SteerLexer`, same tables and
    callbacks as `fast_parse` (the embedded tree builder must already name the file).

    `resume`: where `fast_parse.parse_until_error` stopped on the same `src`; the text before
    it had no error, so this driver would have reached the same state there, and goes on from
    it (a file whose only error is on its last line is parsed once, not twice)."""
    actions, gotos, start, end_state = _tables(lark_parser)
    comp = _completer(lark_parser)
    state_stack = [start]
    value_stack: list[Any] = []
    errors: list[SyntaxProblem] = []
    last_line = -1
    header_fixed = False
    line_base = 1  # stack height at the start of the current line's statement
    match = TOKEN_RE.match
    kw = KEYWORD_BY_WORD
    punct = PUNCT_BY_TEXT
    pos, line, line_start, n = 0, 1, 0, len(src)
    tok_line = 1  # the line of the last token (where Lark puts the end marker)
    depth = 0  # brackets open on this line
    prev_type: str | None = None  # the last token's type (see lexer.keeps_keyword)
    if resume is not None:
        state_stack, value_stack = resume.state_stack, resume.value_stack
        pos, line, line_start = resume.pos, resume.line, resume.line_start
        depth, prev_type, line_base = resume.depth, resume.prev_type, resume.line_base
        # a token read from `pos` on sets it; at the end, the last token was the newline the
        # parser adds after every text (steerlang/lang/parser.py)
        tok_line = line - 1 if pos >= n else line

    def limit(problem: LimitProblem) -> None:
        nonlocal last_line
        if line != last_line:
            errors.append(SyntaxProblem(problem, frozenset(), line))
            last_line = line

    def feed(tok: Any, ttype: str) -> Any:
        """Feed one token. Returns the recipe when `$END` completes it, False when the token
        is not accepted (reductions done before the error stay done), True when shifted."""
        while True:
            act = actions[state_stack[-1]].get(ttype)
            if act is None:
                return False
            if act[0]:
                if ttype == "$END":
                    return False
                state_stack.append(act[1])
                value_stack.append(tok)
                return True
            size, origin, cb = act[1]
            if size:
                args = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                args = []
            value_stack.append(cb(args))
            state_stack.append(gotos[state_stack[-1]][origin])
            if ttype == "$END" and state_stack[-1] == end_state:
                return value_stack[-1]

    def invent(ttype: str) -> bool:
        return feed(Token(ttype, ""), ttype) is True

    while True:
        if pos >= n:
            tok = Token("$END", "")
            res = feed(tok, "$END")
            if res is not True and res is not False:
                return (res if isinstance(res, ast.Recipe) else None), errors
            if tok_line != last_line:
                acc = accepted(actions, gotos, state_stack, end_state)
                errors.append(SyntaxProblem(TokenError(tok), acc, tok_line))
            return None, errors
        m = match(src, pos)
        if m is None:
            # a character no token starts with: record it (first error of the line), skip it
            if line != last_line:
                col = pos - line_start + 1
                exc = UnexpectedCharacters(src, pos, line, col)
                errors.append(SyntaxProblem(exc, frozenset(), line))
                last_line = line
            pos += 1
            continue
        kind = m.lastgroup
        value = m.group()
        if kind == "WS" or kind == "COMMENT":
            pos = m.end()
            continue
        col = pos - line_start + 1
        acts = actions[state_stack[-1]]
        width = 0
        if kind == "NL":
            ttype = prev_type = "_NL"
            tok = Token(ttype, value, pos, line, col, line + 1, 1, pos + 1)
            tok_line = line
            line += 1
            line_start = pos + 1
            pos += 1
            depth = 0
        else:
            if kind == "WORD":
                ttype = kw.get(value)
                if ttype is None or (
                    ttype not in acts and "NAME" in acts and not keeps_keyword(acts, prev_type)
                ):
                    ttype = "NAME"
                if ttype == "NAME" and "-" in value:  # `mean-ablate` where no action fits
                    value = "mean"
            elif kind == "NUM":
                if len(value) > limits.MAX_NUMBER_CHARS:
                    limit(
                        LimitProblem(
                            "E012",
                            f"number literal is {len(value):,} characters long",
                            f"longer than {limits.MAX_NUMBER_CHARS} characters",
                            "write a shorter number (exponent notation: `1e6`)",
                            pos,
                            pos + len(value),
                        )
                    )
                    width = len(value)  # the token keeps its place; its value is a stand-in
                    value = "0"
                if "INT" in acts and "NUMBER" not in acts:
                    value = INT_RE.match(value).group()  # type: ignore[union-attr]
                    ttype = "INT"
                else:
                    ttype = "NUMBER"
            elif kind == "STR":
                ttype = "STRING"
            else:
                ttype = punct[value]
                if ttype == "LPAR" or ttype == "LSQB":
                    depth += 1
                    if depth > limits.MAX_BRACKETS:
                        limit(
                            LimitProblem(
                                "E011",
                                f"brackets nested more than {limits.MAX_BRACKETS} deep",
                                f"bracket {depth} opened while {depth - 1} are open",
                                "split the expression into concepts or several rules",
                                pos,
                                pos + 1,
                            )
                        )
                        # the rest of the line is not read: the newline ends the statement
                        nl = src.find("\n", pos)
                        pos = n - 1 if nl < 0 else nl
                        continue
                elif ttype == "RPAR" or ttype == "RSQB":
                    depth -= 1
            stop = pos + (width or len(value))
            tok = Token(ttype, value, pos, line, col, line, stop - line_start + 1, stop)
            prev_type = ttype  # the lexer's keyword rule looks one token back
            tok_line = line
            pos = stop
        if feed(tok, ttype):
            if ttype == "_NL":
                line_base = len(state_stack)
            continue
        # -- a token the grammar does not accept here
        if tok_line != last_line:
            acc = accepted(actions, gotos, state_stack, end_state)
            errors.append(SyntaxProblem(TokenError(tok), acc, tok_line))
            last_line = tok_line
        else:
            acc = None
        if not header_fixed:
            if acc is None:
                has_steer = _shifts(actions, gotos, state_stack, "STEER", end_state)
            else:
                has_steer = "STEER" in acc
            if has_steer:
                # Missing header: pretend `steer 1` was there and go on with this token, so a
                # file without a header gets exactly one error.
                header_fixed = True
                for t in ("STEER", "INT", "_NL"):
                    invent(t)
                line_base = len(state_stack)
                if ttype != "_NL" and feed(tok, ttype):
                    last_line = -1
                continue
        if ttype != "_NL":
            continue  # drop the token; the line is already reported
        opens = _open_brackets(value_stack[max(0, line_base - 1) :])
        steps = completion(comp, state_stack, end_state, opens) if comp.ok else None
        ok = steps is not None and all(invent(t) for t in steps)
        if not ok:
            # cannot finish the statement: drop what the line built and start afresh
            if len(state_stack) < line_base:
                return None, errors
            del state_stack[line_base:]
            del value_stack[line_base - 1 :]
        if feed(tok, "_NL"):
            line_base = len(state_stack)
        else:
            return None, errors
