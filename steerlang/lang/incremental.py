"""Incremental parsing for the language server: re-parse only the lines an edit touched.

Why this is exact: after the `steer N` header every statement is one line, and nothing the
parser does inside a line depends on the lines before it (strings and brackets never span a
newline; error recovery resynchronises at the end of the line; the LALR state at the start of
every body line has the same item core, so it accepts the same tokens). A body line therefore
parses to the same statement and the same syntax errors wherever it stands, up to a shift of
its positions. Each distinct line text is parsed once, on its own, behind a fixed header
(`steer 1`), and the result is moved to where the line stands now.

Anything outside that argument goes back to the ordinary whole-file parse: a missing or
unusual header, a line whose recovery fails (which empties the whole tree in a cold parse), a
diagnostic that does not lie on its own line. `tests/lang/test_lang_incremental.py` checks
cached results against cold ones over random edit sequences.

A `ParseCache` belongs to one document (the server keeps one per open file); its memory is
bounded by the distinct lines of the current text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from steerlang.diagnostics import Diagnostic, Edit, SourceSpan
from steerlang.lang import ast
from steerlang.lang.parser import ParseResult, parse
from steerlang.lang.spans import make_span

# The header every synthetic one-line document starts with; body lines then start at line 2.
_STUB = "steer 1\n"
_STUB_LINES = 1
_STUB_LEN = len(_STUB)

# A line the lexer sees no token in (whitespace and a comment at most), and a plain header.
_BLANK = re.compile(r"[ \t\f\r]*(?:#[^\n]*)?")
_HEADER = re.compile(r"[ \t\f\r]*steer[ \t\f\r]+[0-9]+[ \t\f\r]*(?:#[^\n]*)?")

_NODE_TYPES: frozenset[type] = frozenset(
    v for v in vars(ast).values() if isinstance(v, type) and hasattr(v, "__dataclass_fields__")
)
_new = object.__new__


def _shift_span(s: SourceSpan, dl: int, doff: int) -> SourceSpan:
    return make_span(
        s.file, s.start + doff, s.end + doff, s.line + dl, s.column, s.end_line + dl, s.end_column
    )


def _shift_node(node: object, dl: int, doff: int) -> object:
    """A copy of a syntax-tree node with every span moved by `dl` lines and `doff` offsets.

    Nodes are plain dataclasses whose attributes are spans, nodes, lists of nodes or plain
    values, so one generic copy covers them all and stays right when a node type is added.
    """
    t = type(node)
    new = _new(t)
    d = new.__dict__
    for k, v in node.__dict__.items():
        tv = type(v)
        if tv is SourceSpan:
            v = _shift_span(v, dl, doff)
        elif tv is list:
            v = [
                _shift_node(x, dl, doff)
                if type(x) in _NODE_TYPES
                else (_shift_span(x, dl, doff) if type(x) is SourceSpan else x)
                for x in v
            ]
        elif tv in _NODE_TYPES:
            v = _shift_node(v, dl, doff)
        d[k] = v
    return new


def _shift_diag(d: Diagnostic, dl: int, doff: int) -> Diagnostic:
    """A fresh copy (callers add notes to diagnostics) with its spans moved."""
    return Diagnostic(
        d.code,
        d.severity,
        d.message,
        _shift_span(d.span, dl, doff) if d.span is not None else None,
        label=d.label,
        help=d.help,
        notes=list(d.notes),
        fix=Edit(_shift_span(d.fix.span, dl, doff), d.fix.replacement) if d.fix else None,
        secondary=[(_shift_span(s, dl, doff), lab) for s, lab in d.secondary],
    )


def _on_line(s: SourceSpan | None, line: int) -> bool:
    return s is not None and s.line == line and s.end_line == line


@dataclass
class _Line:
    """One body line's parse. Its positions are those of the line standing at `at`
    (line, offset): the stub document's line 2 when it was parsed on its own, or where it
    stood in the whole-file parse that seeded it."""

    ok: bool  # False: this line needs the whole-file parse
    stmt: ast.Stmt | None = None
    broken: bool = False  # the statement's `broken` as the parser left it
    diags: list[Diagnostic] = field(default_factory=list)
    comments: list[ast.Comment] = field(default_factory=list)
    at: tuple[int, int] = (_STUB_LINES + 1, _STUB_LEN)
    # Copies of `stmt` moved to where the line stood in the last parse, keyed (line, offset):
    # an unchanged line at an unchanged place is reused as is.
    placed: dict[tuple[int, int], ast.Stmt] = field(default_factory=dict)


def _parse_line(line: str, file: str | None) -> _Line:
    res = parse(_STUB + line, file)
    rec = res.recipe
    here = _STUB_LINES + 1
    if (
        rec.header is None
        or rec.header.broken
        or rec.header.version != 1
        or len(rec.statements) > 1
        or any(s.span is not None and not _on_line(s.span, here) for s in rec.statements)
    ):
        return _Line(False)
    for d in res.diagnostics:
        if not all(_on_line(sp, here) for sp in _diag_spans(d)):
            return _Line(False)
    stmt = rec.statements[0] if rec.statements else None
    comments = [c for c in rec.comments if c.line == here]
    return _Line(True, stmt, stmt.broken if stmt else False, res.diagnostics, comments)


def _diag_spans(d: Diagnostic) -> list[SourceSpan | None]:
    spans = [d.span, *(sp for sp, _ in d.secondary)]
    if d.fix is not None:
        spans.append(d.fix.span)
    return spans


class ParseCache:
    """Per-document memo of parsed lines; `parse` gives exactly what `parser.parse` gives.

    `bulk` is how many unseen lines make one whole-file parse cheaper than parsing each on
    its own (on open, or after a paste); its result is returned as is and seeds the cache.
    """

    def __init__(self, bulk: int = 16) -> None:
        self.file: str | None = None
        self.bulk = bulk
        self._prefix: tuple[str, str, ast.Header, list[ast.Comment]] | None = None
        self._lines: dict[str, _Line] = {}
        self.hits = 0  # lines reused without parsing (for tests and benchmarks)
        self.misses = 0

    def clear(self) -> None:
        self._prefix = None
        self._lines = {}

    def _header(self, src_prefix: str, text_prefix: str, file: str | None) -> ast.Header | None:
        p = self._prefix
        if p is not None and p[0] == src_prefix and p[1] == text_prefix:
            return p[2]
        res = parse(text_prefix, file)
        rec = res.recipe
        if res.diagnostics or rec.statements or rec.header is None or rec.header.broken:
            return None
        self._prefix = (src_prefix, text_prefix, rec.header, rec.comments)
        return rec.header

    def parse(self, text: str, file: str | None = None) -> ParseResult:
        """`parser.parse(text, file)`, re-parsing only lines not seen in the last call."""
        if file != self.file:
            self.clear()
            self.file = file
        src = text.replace("\ufeff", " ", 1) if text.startswith("\ufeff") else text
        src += "\n"
        # The header region: blank and comment lines, then `steer N` on a line of its own.
        pos = 0
        line_no = 1
        n = len(src)
        while pos < n:
            eol = src.index("\n", pos)
            if _BLANK.fullmatch(src, pos, eol) is None:
                break
            pos = eol + 1
            line_no += 1
        else:
            return parse(text, file)
        if _HEADER.fullmatch(src, pos, eol) is None:
            return parse(text, file)
        k = eol + 1
        header = self._header(src[:k], text[:k], file)
        if header is None:
            return parse(text, file)
        assert self._prefix is not None
        lines = src[k:].split("\n")
        lines.pop()  # src ends with "\n": the last piece is empty
        old = self._lines
        if sum(1 for ln in lines if ln not in old) > self.bulk:
            res = parse(text, file)
            self._seed(res, lines, line_no + 1, k)
            return res

        comments = list(self._prefix[3])
        seen: dict[str, _Line] = {}
        placed: dict[str, dict[tuple[int, int], ast.Stmt]] = {}
        stmts: list[ast.Stmt] = []
        diags: list[Diagnostic] = []
        off = k
        line_no += 1
        for ln in lines:
            e = seen.get(ln)
            if e is None:
                e = old.get(ln)
                if e is None:
                    e = _parse_line(ln, file)
                    self.misses += 1
                else:
                    self.hits += 1
                if not e.ok:
                    return parse(text, file)
                seen[ln] = e
            else:
                self.hits += 1
            dl = line_no - e.at[0]
            doff = off - e.at[1]
            if e.stmt is not None:
                key = (line_no, off)
                s = e.placed.get(key)
                if s is None:
                    s = _shift_node(e.stmt, dl, doff)  # type: ignore[assignment]
                # The compiler may mark a statement broken (E213); start from the parser's view.
                s.broken = e.broken
                stmts.append(s)
                placed.setdefault(ln, {})[key] = s
            if e.diags:
                diags.extend(_shift_diag(d, dl, doff) for d in e.diags)
            if e.comments:
                comments.extend(
                    ast.Comment(c.text, c.line + dl, c.column, c.start + doff) for c in e.comments
                )
            off += len(ln) + 1
            line_no += 1
        for ln, e in seen.items():
            e.placed = placed.get(ln, {})
        self._lines = seen
        recipe = ast.Recipe(file, header, stmts)
        recipe.comments = comments
        return ParseResult(recipe, diags)

    def _seed(self, res: ParseResult, lines: list[str], first_line: int, first_off: int) -> None:
        """Remember the lines of a whole-file parse that no syntax error touched.

        A line's parse does not depend on the other lines, so each such line's statement is
        what parsing it alone gives. Lines an error touched are left out (the next parse does
        them one by one), and so is everything when the parse gave up (no header)."""
        rec = res.recipe
        seen: dict[str, _Line] = {}
        if rec.header is None or rec.header.broken:
            self._lines = seen
            return
        bad: set[int] = set()
        for d in res.diagnostics:
            for sp in _diag_spans(d):
                if sp is None:
                    self._lines = seen
                    return
                bad.update(range(sp.line, sp.end_line + 1))
        by_line: dict[int, ast.Stmt | None] = {}
        for st in rec.statements:
            sp = st.span
            if sp is None or sp.line != sp.end_line or sp.line in by_line:
                self._lines = seen
                return
            by_line[sp.line] = st if not st.broken else None
            if st.broken:
                bad.add(sp.line)
        notes: dict[int, list[ast.Comment]] = {}
        for c in rec.comments:
            notes.setdefault(c.line, []).append(c)
        line_no, off = first_line, first_off
        for ln in lines:
            if line_no not in bad:
                stmt = by_line.get(line_no)
                e = seen.get(ln)
                if e is None:
                    e = seen[ln] = _Line(
                        True, stmt, False, [], notes.get(line_no, []), at=(line_no, off)
                    )
                if stmt is not None:
                    e.placed[(line_no, off)] = stmt
            off += len(ln) + 1
            line_no += 1
        self._lines = seen
