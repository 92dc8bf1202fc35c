"""What the compiler's passes share: the options, the diagnostics, and what each pass found.

Each pass (listed in `steerlang/lang/compiler/__init__.py`) reads the fields earlier passes
filled and fills its own; the fields below are grouped by the pass that fills them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from steerlang.diagnostics import Diagnostic, Edit, SourceSpan
from steerlang.lang import ast
from steerlang.lang.compiler.sources import read_recipe_file
from steerlang.lang.incremental import ParseCache

ReadFile = Callable[[str], str]
# A recipe's dataset name -> the columns the bound dataset really has, or None to use the
# built-in columns of the known dataset names (steerlang/facts.py).
DatasetColumns = Callable[[str], "tuple[str, ...] | None"]

# Reads included files: regular files only, never a FIFO, device or directory (see sources.py).
default_read_file: ReadFile = read_recipe_file


@dataclass(frozen=True)
class CompileOptions:
    """What the caller asks for besides the text (see `steerlang.lang.api.compile_text`)."""

    n_layers: int | None = None  # overrides the model depth (`--layers N`)
    params: dict[str, str] = field(default_factory=dict)  # `--param NAME=VALUE`
    read_file: ReadFile = default_read_file  # reads included files
    parse_cache: ParseCache | None = None  # re-parses only changed lines of the root file
    # The folder tree includes must stay in (None: the root recipe's folder; the language
    # server passes the workspace folder), and whether includes may leave it anyway.
    include_root: str | None = None
    allow_include_outside: bool = False
    # The runtime commands pass the columns of the dataset the recipe is bound to (read from
    # its metadata header, steerlang/commands/dataset_columns.py), so extra columns of a known
    # format, and `table`/`hf_datasets` columns, are checked like the built-in ones. None (plain
    # `steer check`, the language server): the built-in columns of the dataset's name.
    dataset_columns: DatasetColumns | None = None


@dataclass
class Origin:
    """Where an included statement came from: the include chain, innermost last."""

    chain: tuple[tuple[str, SourceSpan], ...] = ()

    def notes(self) -> list[str]:
        return [
            f"included from {span.file or '<input>'}:{span.line}:{span.column}"
            for _file, span in reversed(self.chain)
        ]


@dataclass
class Item:
    """One statement of the expanded recipe (includes inlined where they stand)."""

    stmt: ast.Stmt
    origin: Origin


@dataclass
class Param:
    decl: ast.ParamDecl | None
    type: str  # float | int | bool | str | ?
    value: Any
    span: SourceSpan | None
    used: bool = False
    origin: Origin = field(default_factory=Origin)


@dataclass
class Concept:
    decl: ast.ConceptDecl | None
    span: SourceSpan | None
    ir: dict | None = None
    state: str = "new"  # new | busy | done
    used: bool = False
    origin: Origin = field(default_factory=Origin)


@dataclass
class CompileState:
    text: str  # the root file's text
    root: str | None  # the root file's path (None for text without a file)
    options: CompileOptions
    diags: list[Diagnostic] = field(default_factory=list)
    _counted: int = 0  # diagnostics `error_count` has looked at
    _errors: int = 0  # errors among them
    # -- load: every file read, in the order read (the root first), and the expanded statements
    include_root: str = ""  # the resolved folder tree includes must stay in
    sources: dict[str | None, str] = field(default_factory=dict)
    recipes: dict[str | None, ast.Recipe] = field(default_factory=dict)
    file_order: list[str | None] = field(default_factory=list)
    origin_of_file: dict[str | None, Origin] = field(default_factory=dict)
    # every file read, by its path with symbolic links resolved: `a.steer` and `self/a.steer`
    # through a link `self -> .` are one file (cycles and repeats are found by these)
    real_paths: set[str] = field(default_factory=set)
    items: list[Item] = field(default_factory=list)
    syntax_errors: bool = False  # also set by statements nested too deeply (lints are skipped)
    # -- declarations
    singles: dict[str, ast.Stmt] = field(default_factory=dict)  # recipe, model, dataset, ...
    params: dict[str, Param] = field(default_factory=dict)
    concepts: dict[str, Concept] = field(default_factory=dict)
    concept_depth: int = 0  # concepts being resolved, one inside the other (E118)
    concept_depth_reported: bool = False
    concept_size_reported: bool = False
    concept_nodes: int = 0  # terms of all concept IRs written out so far (E118)
    ir_sizes: dict[int, tuple[Any, int, int]] = field(default_factory=dict)  # id -> (node, n, d)
    settings: dict[str, Any] = field(default_factory=dict)
    rules: list[tuple[int, ast.RuleDecl]] = field(default_factory=list)  # (index, rule)
    listed_values: int = 0  # values all accepted lists of layers, tokens and ids name (E116)
    # -- context: the model and dataset the names and layers are checked against
    model_ref: str = "default"
    n_layers: int | None = None
    dataset: str | None = None
    columns: tuple[str, ...] | None = None
    # -- saes, task, rules: the IR pieces (rules with errors are left out)
    saes: dict[str, str] = field(default_factory=dict)
    task: dict | None = None
    groups: list[str] = field(default_factory=list)
    rule_irs: list[tuple[int, ast.RuleDecl, dict]] = field(default_factory=list)
    span_map: dict[tuple, SourceSpan | None] = field(default_factory=dict)  # IR path -> span
    # -- lower
    ir: Any = None  # steerlang.plan.RecipeIR, None while there is an error

    def emit(
        self,
        code: str,
        message: str,
        span: SourceSpan | None,
        *,
        label: str = "",
        help: str | None = None,
        notes: list[str] | None = None,
        fix: Edit | None = None,
        secondary: list[tuple[SourceSpan, str]] | None = None,
    ) -> None:
        """Report a problem; a span in an included file gets notes naming the include chain."""
        severity = "warning" if code.startswith("W") else "error"
        notes = list(notes or [])
        if span is not None:
            origin = self.origin_of_file.get(span.file)
            if origin is not None:
                notes.extend(origin.notes())
        self.diags.append(
            Diagnostic(
                code,
                severity,  # type: ignore[arg-type]
                message,
                span,
                label=label,
                help=help,
                notes=notes,
                fix=fix,
                secondary=[(s, lab) for s, lab in (secondary or []) if s is not None],
            )
        )

    def error_count(self) -> int:
        """Errors reported so far. Counted on from where the last call stopped (diagnostics are
        only ever appended): each rule asks before and after it is checked, and counting the
        whole list each time made 2,000 rules with an error each cost 8 million steps."""
        for d in self.diags[self._counted :]:
            if d.is_error:
                self._errors += 1
        self._counted = len(self.diags)
        return self._errors

    def text_of(self, span: SourceSpan | None) -> str:
        if span is None:
            return ""
        return self.sources.get(span.file, "")[span.start : span.end]

    def sorted_diagnostics(self) -> list[Diagnostic]:
        """Files in the order read, then by position in the file, errors before warnings."""
        order = self.file_order

        def key(d: Diagnostic) -> tuple:
            if d.span is None:
                return (len(order) + 1, 0, 0)
            try:
                fi = order.index(d.span.file)
            except ValueError:
                fi = len(order)
            return (fi, d.span.start, 0 if d.severity == "error" else 1)

        return sorted(self.diags, key=key)


def ir_span(span: SourceSpan | None) -> dict | None:
    """A span as the IR stores it."""
    if span is None:
        return None
    return {
        "file": span.file,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
        "start_pos": span.start,
        "end_pos": span.end,
    }
