"""The public, torch-free API of the language layer.

The CLI (`steer check/fmt/compile`), the language server and the run pipeline all call these
functions, so every front end reports the same diagnostics. None of them raises for any recipe
text: problems come back as `Diagnostic`s (an unexpected internal failure becomes E499).

    res = compile_text(text, "recipes/waterbirds.steer")
    if res.ok:
        ir = res.ir                      # steerlang.plan.RecipeIR
    print(render_diagnostics(res.diagnostics, res.sources, color=False))
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from steerlang.diagnostics import Diagnostic, SourceSpan
from steerlang.lang import ast, limits
from steerlang.lang.collector import collector_paused
from steerlang.lang.compiler.sources import read_recipe_file
from steerlang.lang.completion import accepted_at
from steerlang.lang.incremental import ParseCache
from steerlang.lang.known import (
    ACTIONS,
    FUNCTIONS,
    SETTING_DOCS,
    SITE_DOCS,
    STAT_FUNCTIONS,
    TOKEN_SCOPES,
)
from steerlang.lang.lexer import KEYWORDS
from steerlang.lang.parser import parse
from steerlang.lang.render import diagnostics_to_json, render_diagnostics

__all__ = [
    "ACTIONS",
    "FUNCTIONS",
    "KEYWORDS",
    "SETTING_DOCS",
    "SITE_DOCS",
    "STAT_FUNCTIONS",
    "TOKEN_SCOPES",
    "CompileResult",
    "FormatError",
    "ParseCache",
    "Symbol",
    "accepted_at",
    "compile_file",
    "compile_text",
    "diagnostics_to_json",
    "format_text",
    "parse_text",
    "read_recipe_file",
    "render_diagnostics",
    "symbols",
]


@dataclass
class CompileResult:
    ir: Any  # steerlang.plan.RecipeIR | None (None iff there is an error)
    diagnostics: list[Diagnostic]
    sources: dict[str | None, str] = field(default_factory=dict)  # file -> text, for rendering
    recipe: ast.Recipe | None = None  # syntax tree of the root file

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def render(self, *, color: bool = False) -> str:
        return render_diagnostics(self.diagnostics, self.sources, color=color)


def _internal_error(exc: BaseException, path: str | None) -> Diagnostic:
    notes = [f"while compiling {path or '<input>'}"]
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    ours = [f for f in frames if "/steerlang/" in f.filename.replace("\\", "/")]
    if ours:
        where = ours[-1].filename.replace("\\", "/").rsplit("/steerlang/", 1)[-1]
        notes.append(f"raised in steerlang/{where} ({ours[-1].name})")
    return Diagnostic(
        "E499",
        "error",
        f"internal compiler error ({type(exc).__name__})",
        None,
        help="please report this bug with the recipe and the output of `steer --debug check`",
        notes=notes,
    )


def compile_text(
    text: str,
    path: str | None = None,
    *,
    n_layers: int | None = None,
    params: dict[str, str] | None = None,
    read_file: Callable[[str], str] | None = None,
    parse_cache: ParseCache | None = None,
    include_root: str | None = None,
    allow_include_outside: bool = False,
    dataset_columns: Callable[[str], tuple[str, ...] | None] | None = None,
) -> CompileResult:
    """Parse, resolve (includes relative to `path`), check and lower one recipe.

    `n_layers` overrides the model depth used for layer range checks (`--layers N`); `params`
    are `--param NAME=VALUE` overrides, type-checked against each param's declaration;
    `read_file` reads included files (the language server passes one that sees unsaved
    editor buffers); `parse_cache` (a `ParseCache`, one per document) makes a
    re-check after a small edit re-parse only the changed lines, with identical results.
    Includes must stay inside `include_root` (default: the folder of `path`, else the working
    folder), symbolic links resolved, unless `allow_include_outside` (`--allow-include-outside`).
    `dataset_columns` maps the recipe's dataset name to the bound dataset's real columns (None:
    the built-in columns of that name), for the column checks (E105).
    """
    from steerlang.lang.compiler import compile_source
    from steerlang.lang.compiler.state import CompileOptions, default_read_file

    options = CompileOptions(
        n_layers=n_layers,
        params=dict(params or {}),
        read_file=read_file or default_read_file,
        parse_cache=parse_cache,
        include_root=include_root,
        allow_include_outside=allow_include_outside,
        dataset_columns=dataset_columns,
    )
    if len(text) > limits.MAX_TEXT_CHARS:
        d = Diagnostic(
            "E115",
            "error",
            f"recipe is {len(text):,} characters long, more than {limits.MAX_TEXT_CHARS:,}",
            None,
            help="split it into several recipes (a recipe is a few kilobytes)",
            notes=[f"in {path or '<input>'}"],
        )
        return CompileResult(None, [d], {path: ""})
    try:
        with collector_paused():  # steerlang/lang/collector.py: why
            out = compile_source(text, path, options)
    except RecursionError:
        d = Diagnostic(
            "E119",
            "error",
            "recipe is nested too deeply to compile",
            None,
            help="split deeply nested expressions and chains of concepts",
            notes=[f"while compiling {path or '<input>'}"],
        )
        return CompileResult(None, [d], {path: text})
    except Exception as e:  # the compiler must never raise for user input
        if os.environ.get("STEERLANG_DEBUG"):
            raise
        return CompileResult(None, [_internal_error(e, path)], {path: text})
    return CompileResult(out.ir, out.diagnostics, out.sources, out.recipes.get(path))


def compile_file(
    path: str,
    *,
    n_layers: int | None = None,
    params: dict[str, str] | None = None,
    read_file: Callable[[str], str] | None = None,
    parse_cache: ParseCache | None = None,
    include_root: str | None = None,
    allow_include_outside: bool = False,
    dataset_columns: Callable[[str], tuple[str, ...] | None] | None = None,
) -> CompileResult:
    """`compile_text` on a file read from disk (UTF-8). Raises `SteerError` if it cannot be read."""
    from steerlang.errors import SteerError
    from steerlang.lang.compiler.sources import NotARecipeFile

    try:
        # regular files only, at most `sources.MAX_BYTES`: a FIFO would block, /dev/zero fill
        # the memory
        text = read_recipe_file(path)
    except NotARecipeFile as e:
        raise SteerError(
            f"cannot check {path}: it is {e.what}", help="pass a recipe file (.steer)"
        ) from None
    except FileNotFoundError:
        raise SteerError(f"no such file: {path}", help="check the path") from None
    except IsADirectoryError:
        raise SteerError(f"{path} is a directory", help="pass a .steer file") from None
    except UnicodeDecodeError:
        raise SteerError(f"{path} is not UTF-8 text", help="save the recipe as UTF-8") from None
    except OSError as e:
        raise SteerError(f"cannot read {path}: {e.strerror}") from None
    return compile_text(
        text,
        path,
        n_layers=n_layers,
        params=params,
        read_file=read_file,
        parse_cache=parse_cache,
        include_root=include_root,
        allow_include_outside=allow_include_outside,
        dataset_columns=dataset_columns,
    )


def parse_text(text: str, path: str | None = None) -> tuple[ast.Recipe, list[Diagnostic]]:
    """The syntax tree of one file and its syntax errors (no name resolution)."""
    try:
        res = parse(text, path)
    except Exception as e:
        return ast.Recipe(path, None, []), [_internal_error(e, path)]
    return res.recipe, res.diagnostics


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


class FormatError(Exception):
    """The text cannot be formatted safely; `diagnostics` says why (syntax errors, or a failed
    safety check, reported as E499 since it would be a formatter bug)."""

    def __init__(self, message: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


def _strip(recipe: ast.Recipe) -> tuple:
    return (recipe.header, recipe.statements)


def format_text(text: str, path: str | None = None) -> str:
    """The canonical form of `text`. Before returning, checks (as gdtoolkit does) that the
    result parses to the same tree, that formatting it again changes nothing, and that every
    comment survives; raises `FormatError` otherwise or when `text` has syntax errors."""
    with collector_paused():  # steerlang/lang/collector.py: why
        return _format_text(text, path)


def _format_text(text: str, path: str | None) -> str:
    from steerlang.lang.printer import format_source

    recipe, diags = parse_text(text, path)
    if diags:
        raise FormatError(f"{path or '<input>'} has syntax errors", diags)
    for s in recipe.statements:
        for e in ast.stmt_exprs(s):
            if ast.expr_depth(e) > ast.MAX_DEPTH:
                d = Diagnostic(
                    "E213",
                    "error",
                    f"expression is nested more than {ast.MAX_DEPTH} levels deep",
                    e.span,
                    label="too deeply nested",
                    help="split the condition into simpler parts or several rules",
                )
                raise FormatError("expression nested too deeply", [d])
    try:
        out = format_source(text, recipe)
        again, diags2 = parse_text(out, path)
        problem = None
        if diags2:
            problem = "the formatted text does not parse"
        elif _strip(again) != _strip(recipe):
            problem = "formatting would change the meaning of the recipe"
        elif format_source(out, again) != out:
            problem = "formatting is not idempotent on this input"
        elif [c.text for c in again.comments] != [c.text for c in recipe.comments]:
            problem = "formatting would lose or change a comment"
    except Exception as e:
        raise FormatError("formatter failed", [_internal_error(e, path)]) from None
    if problem:
        d = Diagnostic(
            "E499",
            "error",
            f"internal formatter error: {problem}",
            None,
            help="the file was left unchanged; please report this bug with the recipe",
        )
        raise FormatError(problem, [d])
    return out


# --------------------------------------------------------------------------------------------
# Symbols (document outline, go-to-definition, find references)
# --------------------------------------------------------------------------------------------


@dataclass
class Symbol:
    kind: str  # rule | param | concept | include | recipe
    name: str
    span: SourceSpan  # the name (or include path) at its definition
    references: list[SourceSpan] = field(default_factory=list)
    detail: str = ""  # one line: a param's value, a concept's definition, a rule's action
    statement: SourceSpan | None = None  # the whole defining statement


def _names_in(e: ast.Expr | None) -> list[ast.Name]:
    return [x for x in ast.walk(e) if isinstance(x, ast.Name)]


def symbols(text: str, path: str | None = None) -> list[Symbol]:
    """Definitions in one file with their references in the same file (includes are not
    followed). Works on text with syntax errors: intact statements still count."""
    from steerlang.lang.printer import show_action, show_expr, show_scope

    recipe, _ = parse_text(text, path)
    syms: list[Symbol] = []
    by_name: dict[str, Symbol] = {}
    rule_index = 0
    for s in recipe.statements:
        try:
            if isinstance(s, ast.RecipeDecl) and s.name.span:
                syms.append(Symbol("recipe", s.name.name, s.name.span, statement=s.span))
            elif isinstance(s, ast.ParamDecl) and s.name.span:
                sym = Symbol(
                    "param", s.name.name, s.name.span, detail=show_expr(s.value), statement=s.span
                )
                syms.append(sym)
                by_name.setdefault(s.name.name, sym)
            elif isinstance(s, ast.ConceptDecl) and s.name.span:
                sym = Symbol(
                    "concept", s.name.name, s.name.span, detail=show_expr(s.expr), statement=s.span
                )
                syms.append(sym)
                by_name.setdefault(s.name.name, sym)
            elif isinstance(s, ast.IncludeDecl) and s.path.span:
                syms.append(Symbol("include", s.path.value, s.path.span, statement=s.span))
            elif isinstance(s, ast.RuleDecl):
                rule_index += 1
                name = s.name.name if s.name else f"rule_{rule_index}"
                span = s.name.span if s.name and s.name.span else s.span
                if span is not None:
                    detail = f"{show_scope(s.scope)} {show_action(s.action)}"
                    syms.append(Symbol("rule", name, span, detail=detail, statement=s.span))
        except Exception:  # a statement half-built by error recovery: skip it
            continue
    for s in recipe.statements:
        exprs: list[ast.Expr | None] = []
        if isinstance(s, ast.ConceptDecl):
            exprs.append(s.expr)
        elif isinstance(s, ast.RuleDecl):
            a = s.action
            exprs.append(a.value)
            sel = a.selector
            if isinstance(sel, ast.WhereSel):
                exprs.append(sel.where)
            elif isinstance(sel, ast.TopSel):
                exprs.extend((sel.k, sel.by, sel.where))
            elif isinstance(sel, ast.RandomSel):
                exprs.extend((sel.k, sel.where))
        for e in exprs:
            for n in _names_in(e):
                sym = by_name.get(n.name)
                if sym is not None and n.span is not None:
                    sym.references.append(n.span)
    return syms
