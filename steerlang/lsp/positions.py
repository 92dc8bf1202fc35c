"""Conversion between the language layer's positions and LSP positions.

The compiler stores code-point offsets into the text; LSP clients speak 0-based lines and
columns counted in UTF-16 code units unless they negotiate `utf-8` or `utf-32`
(`general.positionEncodings`). Getting this wrong shifts every squiggle after an emoji or a
CJK character, so all conversion goes through one `LineIndex` built once per text version.

Line breaks follow the LSP definition (`\\n`, `\\r\\n` and a lone `\\r`); a position past the
end of a line clamps to the line end and a line past the end of the text clamps to the text
end, as the specification asks servers to do.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["utf-16", "utf-8", "utf-32"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _units(ch: str, encoding: Encoding) -> int:
    o = ord(ch)
    if encoding == "utf-16":
        return 2 if o > 0xFFFF else 1
    if encoding == "utf-8":
        if o < 0x80:
            return 1
        if o < 0x800:
            return 2
        if o < 0x10000:
            return 3
        return 4
    return 1


def units_in(s: str, encoding: Encoding = "utf-16") -> int:
    """Length of `s` in the code units of `encoding`."""
    if encoding == "utf-32" or s.isascii():
        return len(s)
    if encoding == "utf-16":
        return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)
    return len(s.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class LspPosition:
    line: int  # 0-based
    character: int  # 0-based, in the negotiated code units


class LineIndex:
    """Line starts of one text, for offset <-> (line, character) conversion in O(log n)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: Sequence[int] = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]

    @property
    def n_lines(self) -> int:
        return len(self.starts)

    def line_end(self, line: int) -> int:
        """Code-point offset of the end of `line`'s content (before its line break)."""
        if line + 1 < len(self.starts):
            end = self.starts[line + 1] - 1
            if self.text[end] == "\n" and end > 0 and self.text[end - 1] == "\r":
                end -= 1
            return end
        return len(self.text)

    def line_text(self, line: int) -> str:
        return self.text[self.starts[line] : self.line_end(line)]

    def position_of(self, offset: int, encoding: Encoding = "utf-16") -> LspPosition:
        """The LSP position of code-point `offset` (clamped into the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        # An offset inside a \r\n pair belongs to the end of the line's content.
        offset = min(offset, self.line_end(line))
        return LspPosition(line, units_in(self.text[start:offset], encoding))

    def offset_of(self, line: int, character: int, encoding: Encoding = "utf-16") -> int:
        """The code-point offset of an LSP position; out-of-range values clamp.

        A column that falls inside a surrogate pair (or a UTF-8 sequence) rounds down to the
        start of that character, so a slightly wrong client never splits a code point.
        """
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        start = self.starts[line]
        end = self.line_end(line)
        if character <= 0:
            return start
        if encoding == "utf-32":
            return min(start + character, end)
        used = 0
        i = start
        while i < end:
            u = _units(self.text[i], encoding)
            if used + u > character:
                return i
            used += u
            i += 1
        return end

    def range_of(
        self, start: int, end: int, encoding: Encoding = "utf-16"
    ) -> tuple[LspPosition, LspPosition]:
        return self.position_of(start, encoding), self.position_of(end, encoding)


def apply_change(
    text: str,
    start: tuple[int, int] | None,
    end: tuple[int, int] | None,
    new_text: str,
    encoding: Encoding = "utf-16",
) -> str:
    """Apply one `didChange` content change (a full replacement when the range is None)."""
    if start is None or end is None:
        return new_text
    idx = LineIndex(text)
    a = idx.offset_of(start[0], start[1], encoding)
    b = idx.offset_of(end[0], end[1], encoding)
    if b < a:
        a, b = b, a
    return text[:a] + new_text + text[b:]
