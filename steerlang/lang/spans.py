"""Source positions: building `SourceSpan`s from offsets, Lark tokens and syntax-tree nodes.

Lark reports 1-based lines and columns in code points with an exclusive end column; so do we.
Offsets are code-point indices into the file text (the LSP converts to UTF-16 at its edge).
"""

from __future__ import annotations

import bisect
from typing import Any

from steerlang.diagnostics import SourceSpan

_new = object.__new__


def make_span(
    file: str | None, start: int, end: int, line: int, column: int, end_line: int, end_column: int
) -> SourceSpan:
    """A `SourceSpan` built without the frozen dataclass's __init__ (3x faster; the parser
    makes one per token, so this is most of the cost of positions)."""
    s = _new(SourceSpan)
    d = s.__dict__
    d["file"] = file
    d["start"] = start
    d["end"] = end
    d["line"] = line
    d["column"] = column
    d["end_line"] = end_line
    d["end_column"] = end_column
    return s


class LineIndex:
    """Maps code-point offsets to (line, column) for one text, in O(log lines)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        i = text.find("\n")
        while i >= 0:
            self.starts.append(i + 1)
            i = text.find("\n", i + 1)

    def position(self, offset: int) -> tuple[int, int]:
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def span(self, file: str | None, start: int, end: int) -> SourceSpan:
        line, col = self.position(start)
        end_line, end_col = self.position(max(start, end))
        return make_span(file, start, max(start, end), line, col, end_line, end_col)

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        if line < 1 or line > len(self.starts):
            return ""
        start = self.starts[line - 1]
        end = self.starts[line] - 1 if line < len(self.starts) else len(self.text)
        return self.text[start:end]

    def line_start(self, line: int) -> int:
        return self.starts[max(0, min(line, len(self.starts)) - 1)]


def token_span(file: str | None, tok: Any) -> SourceSpan | None:
    """The span of a Lark token, or None for a token invented by error recovery.

    Copies of tokens (Lark deep-copies parser states) keep only the start position, so the end
    is recomputed from the text when it is missing (tokens other than newlines are one line).
    """
    start = getattr(tok, "start_pos", None)
    line = getattr(tok, "line", None)
    if start is None or line is None:
        return None
    end = tok.end_pos
    if end is None:
        end = start + len(tok)
    end_line = tok.end_line if tok.end_line is not None else line
    end_col = tok.end_column if tok.end_column is not None else tok.column + (end - start)
    return make_span(file, start, end, line, tok.column, end_line, end_col)


def join(a: SourceSpan | None, b: SourceSpan | None) -> SourceSpan | None:
    """The smallest span covering both (either may be missing)."""
    if a is None:
        return b
    if b is None:
        return a
    first, last = (a, b) if a.start <= b.start else (b, a)
    end = last if last.end >= first.end else first
    return make_span(
        first.file, first.start, end.end, first.line, first.column, end.end_line, end.end_column
    )
