"""Diagnostics as text (rustc-like, coloured with rich on a terminal) and as JSON.

    error[E101]: unknown concept `blnd`
     --> recipes/celeba.steer:7:41
      |
    7 | at layer 7 suppress features where corr(blnd) > thr
      |                                         ^^^^ not a known concept
      |
      = help: did you mean `blond`?

Columns count characters; tabs and wide (CJK, emoji) characters are measured in terminal cells
so the carets line up under exactly the offending token.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from steerlang.diagnostics import Diagnostic, SourceSpan

DEFAULT_LIMIT = 50

_STYLES = {
    "error": "bold red",
    "warning": "bold yellow",
    "note": "bold cyan",
    "help": "bold green",
    "gutter": "bold blue",
    "secondary": "bold blue",
    "title": "bold",
}


def _cells(ch: str) -> int:
    if ch == "\t":
        return 4
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _expand(line: str) -> str:
    return line.replace("\t", "    ")


def _width(text: str) -> int:
    return sum(_cells(c) for c in text)


class _Out:
    """Accumulates (text, style) segments per line; rendered plain or through rich."""

    def __init__(self) -> None:
        self.lines: list[list[tuple[str, str | None]]] = [[]]

    def add(self, text: str, style: str | None = None) -> None:
        self.lines[-1].append((text, style))

    def nl(self) -> None:
        self.lines.append([])

    def plain(self) -> str:
        return "\n".join("".join(t for t, _ in ln).rstrip() for ln in self.lines)

    def rich(self) -> str:
        import io

        from rich.console import Console
        from rich.text import Text

        buf = io.StringIO()
        console = Console(
            file=buf, force_terminal=True, color_system="standard", width=10_000, soft_wrap=True
        )
        for ln in self.lines:
            t = Text()
            for text, style in ln:
                t.append(text, style=style or "")
            t.rstrip()
            console.print(t, highlight=False, markup=False, emoji=False)
        return buf.getvalue().rstrip("\n")


def _line_text(source: str, line: int) -> str:
    lines = source.split("\n")
    if 1 <= line <= len(lines):
        return lines[line - 1].rstrip("\r")
    return ""


def _caret_cols(text: str, start_col: int, end_col: int) -> tuple[int, int]:
    """Cell offset and cell width of columns [start_col, end_col) on one line (1-based)."""
    pre = text[: max(0, start_col - 1)]
    body = text[max(0, start_col - 1) : max(0, end_col - 1)]
    return _width(pre), max(1, _width(body))


def _render_one(out: _Out, d: Diagnostic, sources: dict[str | None, str], *, color: bool) -> None:
    sev = d.severity
    out.add(f"{sev}[{d.code}]", _STYLES.get(sev))
    out.add(f": {d.message}", _STYLES["title"])
    out.nl()
    span = d.span
    marks: list[tuple[SourceSpan, str, bool]] = []
    if span is not None:
        marks.append((span, d.label, True))
    marks.extend((s, lab, False) for s, lab in d.secondary if s is not None)
    files: list[str | None] = []
    for s, _, _ in marks:
        if s.file not in files:
            files.append(s.file)
    all_lines = [s.line for s, _, _ in marks]
    gw = len(str(max(all_lines))) if all_lines else 1
    pad = " " * gw
    for fi, f in enumerate(files):
        fmarks = [m for m in marks if m[0].file == f]
        first = fmarks[0][0]
        arrow = "-->" if fi == 0 else ":::"
        out.add(f"{pad}{arrow} ", _STYLES["gutter"])
        out.add(f"{f or '<input>'}:{first.line}:{first.column}")
        out.nl()
        out.add(f"{pad} |", _STYLES["gutter"])
        out.nl()
        src = sources.get(f)
        lines = sorted({s.line for s, _, _ in fmarks})
        prev_line = None
        for ln in lines:
            if prev_line is not None and ln > prev_line + 1:
                out.add("...", _STYLES["gutter"])
                out.nl()
            prev_line = ln
            text = _line_text(src, ln) if src is not None else ""
            out.add(f"{str(ln).rjust(gw)} | ", _STYLES["gutter"])
            out.add(_expand(text))
            out.nl()
            here = sorted(
                (m for m in fmarks if m[0].line == ln), key=lambda m: (m[0].column, not m[2])
            )
            for s, label, primary in here:
                end_col = s.end_column if s.end_line == s.line else len(text) + 1
                off, w = _caret_cols(text, s.column, end_col)
                out.add(f"{pad} | ", _STYLES["gutter"])
                out.add(" " * off)
                style = _STYLES.get(sev) if primary else _STYLES["secondary"]
                out.add(("^" if primary else "-") * w + (f" {label}" if label else ""), style)
                out.nl()
        if fi == len(files) - 1 and (d.help or d.notes):
            out.add(f"{pad} |", _STYLES["gutter"])
            out.nl()
    if d.help:
        out.add(f"{pad} = ", _STYLES["gutter"])
        out.add("help", _STYLES["help"])
        out.add(f": {d.help}")
        out.nl()
    for n in d.notes:
        out.add(f"{pad} = ", _STYLES["gutter"])
        out.add("note", _STYLES["note"])
        out.add(f": {n}")
        out.nl()
    _ = color


def render_diagnostics(
    diags: list[Diagnostic],
    sources: dict[Any, str],
    *,
    color: bool = False,
    limit: int | None = DEFAULT_LIMIT,
) -> str:
    """All diagnostics, blank-line separated, capped at `limit` with "… and N more"."""
    out = _Out()
    shown = diags if limit is None else diags[:limit]
    for i, d in enumerate(shown):
        if i:
            out.nl()
        _render_one(out, d, sources, color=color)
    rest = len(diags) - len(shown)
    if rest > 0:
        if shown:
            out.nl()
        n_err = sum(1 for d in diags[len(shown) :] if d.is_error)
        n_warn = rest - n_err
        parts = []
        if n_err:
            parts.append(f"{n_err} error{'s' if n_err != 1 else ''}")
        if n_warn:
            parts.append(f"{n_warn} warning{'s' if n_warn != 1 else ''}")
        out.add(f"… and {rest} more ({', '.join(parts)})", _STYLES["title"])
        out.nl()
    text = out.rich() if color else out.plain()
    return text.rstrip("\n")


def summary_line(diags: list[Diagnostic]) -> str:
    n_err = sum(1 for d in diags if d.is_error)
    n_warn = sum(1 for d in diags if d.severity == "warning")
    parts = []
    if n_err:
        parts.append(f"{n_err} error{'s' if n_err != 1 else ''}")
    if n_warn:
        parts.append(f"{n_warn} warning{'s' if n_warn != 1 else ''}")
    return ", ".join(parts) if parts else "no problems"


def diagnostics_to_json(diags: list[Diagnostic]) -> list[dict]:
    out = []
    for d in diags:
        j = d.to_json()
        j["explain"] = f"steer explain-code {d.code}"
        out.append(j)
    return out
