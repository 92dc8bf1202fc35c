"""The one diagnostic value type every stage emits (parser, resolver, checker, plan validation,
runtime binding), so the CLI, the JSON output and the language server render the same content.

Positions are stored as code-point offsets into the file text; line/column (1-based, code points)
are derived, and the LSP converts to UTF-16 at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class SourceSpan:
    file: str | None
    start: int  # code-point offset, inclusive
    end: int  # code-point offset, exclusive
    line: int  # 1-based
    column: int  # 1-based, code points
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Edit:
    """A machine-applicable fix: replace `span` with `replacement`."""

    span: SourceSpan
    replacement: str


@dataclass
class Diagnostic:
    code: str  # E0xx syntax, E1xx names, E2xx types/ranges, W3xx lints, E4xx plan validation
    severity: Severity
    message: str  # lowercase, no trailing period, one idea
    span: SourceSpan | None
    label: str = ""  # text printed after the carets
    help: str | None = None  # at most one, phrased as an action
    notes: list[str] = field(default_factory=list)
    fix: Edit | None = None
    secondary: list[tuple[SourceSpan, str]] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict:
        def sp(s: SourceSpan | None) -> dict | None:
            if s is None:
                return None
            return {
                "file": s.file,
                "start": s.start,
                "end": s.end,
                "line": s.line,
                "column": s.column,
                "end_line": s.end_line,
                "end_column": s.end_column,
            }

        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "span": sp(self.span),
            "label": self.label,
            "help": self.help,
            "notes": list(self.notes),
            "fix": None
            if self.fix is None
            else {"span": sp(self.fix.span), "replacement": self.fix.replacement},
            "secondary": [{"span": sp(s), "label": lab} for s, lab in self.secondary],
        }
