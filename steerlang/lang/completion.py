"""What the grammar accepts at a cursor: the keywords the language server offers to complete."""

from __future__ import annotations

import re

from steerlang.lang.lexer import find_comments
from steerlang.lang.parser import parsing

_WORD_TAIL = re.compile(r"[A-Za-z0-9_-]*\Z")
_HEADER_LINE = re.compile(r"\s*steer(?![A-Za-z0-9_])")


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
    if find_comments(current):
        return set()
    has_header = any(_HEADER_LINE.match(ln) for ln in before_line.split("\n"))
    src = ("steer 1\n" + current) if has_header else prefix
    with parsing(None) as lark_parser:
        try:
            ip = lark_parser.parse_interactive(src)
            for _ in ip.iter_parse():
                pass
            return set(ip.accepts())
        except Exception:
            return set()
