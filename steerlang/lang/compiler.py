"""Syntax tree -> resolved, checked `steerlang.plan.RecipeIR`.

One pass over the expanded statement list (includes inlined in place) collects declarations;
a second resolves and type-checks concepts and rules while lowering them to IR dictionaries;
lints run last. The IR is then validated by the pydantic models the runtime reads, and every
validation error is mapped back to the span that produced the value (E4xx).

Cascades are avoided on purpose: an expression that already failed has type "?", which every
check accepts silently; names declared by statements with syntax errors are still known; and
lints are skipped when the recipe has syntax errors.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from steerlang.diagnostics import Diagnostic, Edit, SourceSpan
from steerlang.errors import did_you_mean
from steerlang.facts import SITE_KINDS
from steerlang.lang import ast
from steerlang.lang.incremental import ParseCache
from steerlang.lang.known import (
    ATTACK_COLUMNS,
    SETTING_CHOICES,
    SETTING_MIN,
    SPLIT_NAMES,
    SPLIT_SETTINGS,
    STAT_FUNCTIONS,
    dataset_columns,
    model_depth,
)
from steerlang.lang.parser import KEYWORDS, parse
from steerlang.lang.spans import join

ReadFile = Callable[[str], str]

_STAT_ARITY: dict[str, tuple[int, int]] = {
    "corr": (1, 1),
    "mean": (0, 1),
    "freq": (0, 0),
    "max": (0, 0),
    "steerability": (0, 0),
    "promotes": (1, 1),
    "top_concept": (0, 0),
    "id": (0, 0),
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_TYPE_WORDS = {
    "num": "a number",
    "bool": "a condition",
    "str": "a string",
    "col": "a dataset column",
}


def default_read_file(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


@dataclass
class _Origin:
    """Where an included statement came from: the include chain, innermost last."""

    chain: tuple[tuple[str, SourceSpan], ...] = ()

    def notes(self) -> list[str]:
        out = []
        for file, span in reversed(self.chain):
            out.append(f"included from {span.file or '<input>'}:{span.line}:{span.column}")
            _ = file
        return out


@dataclass
class _Item:
    stmt: ast.Stmt
    origin: _Origin


@dataclass
class _Param:
    decl: ast.ParamDecl | None
    type: str  # float | int | bool | str | ?
    value: Any
    span: SourceSpan | None
    used: bool = False
    origin: _Origin = field(default_factory=_Origin)


@dataclass
class _Concept:
    decl: ast.ConceptDecl | None
    span: SourceSpan | None
    ir: dict | None = None
    state: str = "new"  # new | busy | done
    used: bool = False
    origin: _Origin = field(default_factory=_Origin)


@dataclass
class CompileOutput:
    ir: Any  # RecipeIR | None
    diagnostics: list[Diagnostic]
    sources: dict[str | None, str]
    recipes: dict[str | None, ast.Recipe]


class Compiler:
    def __init__(
        self,
        *,
        n_layers: int | None = None,
        params: dict[str, str] | None = None,
        read_file: ReadFile | None = None,
        parse_cache: ParseCache | None = None,
    ) -> None:
        self.n_layers_override = n_layers
        self.parse_cache = parse_cache
        self.param_overrides = dict(params or {})
        self.read_file = read_file or default_read_file
        self.diags: list[Diagnostic] = []
        self.sources: dict[str | None, str] = {}
        self.recipes: dict[str | None, ast.Recipe] = {}
        self.file_order: list[str | None] = []
        self.syntax_errors = False
        self.origin_of_file: dict[str | None, _Origin] = {}
        self.span_map: dict[tuple, SourceSpan] = {}

    # ------------------------------------------------------------------ diagnostics
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

    def text_of(self, span: SourceSpan | None) -> str:
        if span is None:
            return ""
        return self.sources.get(span.file, "")[span.start : span.end]

    # ------------------------------------------------------------------ loading
    def load(self, text: str, path: str | None) -> list[_Item]:
        self.root = path
        return self._load_file(text, path, _Origin(), ())

    def _load_file(
        self, text: str, path: str | None, origin: _Origin, stack: tuple[str | None, ...]
    ) -> list[_Item]:
        self.sources[path] = text
        self.file_order.append(path)
        self.origin_of_file[path] = origin
        if self.parse_cache is not None and not stack:  # the root file only
            res = self.parse_cache.parse(text, path)
        else:
            res = parse(text, path)
        self.recipes[path] = res.recipe
        for d in res.diagnostics:
            d.notes.extend(origin.notes())
            self.diags.append(d)
        if res.diagnostics:
            self.syntax_errors = True
        header = res.recipe.header
        if header is not None and not header.broken and header.version not in (1,):
            self.emit(
                "E207",
                f"unsupported language version `{header.version}`",
                header.span,
                label="this steerlang understands version 1",
                help="write `steer 1`",
            )
        items: list[_Item] = []
        for stmt in res.recipe.statements:
            items.append(_Item(stmt, origin))
            if isinstance(stmt, ast.IncludeDecl) and not stmt.broken:
                items.extend(self._include(stmt, path, origin, (*stack, path)))
        return items

    def _include(
        self,
        stmt: ast.IncludeDecl,
        path: str | None,
        origin: _Origin,
        stack: tuple[str | None, ...],
    ) -> list[_Item]:
        rel = stmt.path.value
        base = os.path.dirname(path) if path else ""
        target = os.path.normpath(os.path.join(base, rel)) if rel else ""
        span = stmt.path.span
        if not rel:
            self.emit("E106", "include path is empty", span, label="expected a file name")
            return []
        if target in stack or (path is not None and target == os.path.normpath(path)):
            chain = [p for p in stack if p is not None] + [target]
            start = chain.index(target) if target in chain else 0
            self.emit(
                "E107",
                f"include cycle: `{rel}` includes itself",
                span,
                label="this include starts the cycle again",
                help="move what both files need into a third file that includes neither",
                notes=["include chain: " + " -> ".join(chain[start:])],
            )
            return []
        if target in self.sources:
            self.emit(
                "W308",
                f"`{rel}` is already included",
                span,
                label="this include is ignored",
                help="delete this `include`",
            )
            return []
        try:
            text = self.read_file(target)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            why = "is not UTF-8 text" if isinstance(e, UnicodeDecodeError) else "does not exist"
            if isinstance(e, IsADirectoryError):
                why = "is a directory"
            help_ = None
            try:
                folder = os.path.dirname(target) or "."
                options = [f for f in os.listdir(folder) if f.endswith(".steer")]
                guess = did_you_mean(os.path.basename(rel), options)
                if guess:
                    help_ = f"did you mean `{os.path.join(os.path.dirname(rel), guess)}`?"
            except OSError:
                pass
            self.emit(
                "E106",
                f"cannot include `{rel}`",
                span,
                label=f"`{target}` {why}",
                help=help_ or "include paths are relative to the file that contains the `include`",
            )
            return []
        inc_origin = _Origin((*origin.chain, (target, stmt.span or span)))
        return self._load_file(text, target, inc_origin, stack)

    # ------------------------------------------------------------------ compile
    def compile(self, text: str, path: str | None) -> CompileOutput:
        items = self.load(text, path)
        ir = self._compile_items(items)
        self.diags.sort(key=self._diag_key)
        return CompileOutput(ir, self.diags, self.sources, self.recipes)

    def _diag_key(self, d: Diagnostic) -> tuple:
        if d.span is None:
            return (len(self.file_order) + 1, 0, 0)
        try:
            fi = self.file_order.index(d.span.file)
        except ValueError:
            fi = len(self.file_order)
        return (fi, d.span.start, 0 if d.severity == "error" else 1)

    def _compile_items(self, items: list[_Item]) -> Any:
        self.params: dict[str, _Param] = {}
        self.concepts: dict[str, _Concept] = {}
        singles: dict[str, ast.Stmt] = {}
        settings: dict[str, Any] = {}
        setting_spans: dict[str, SourceSpan | None] = {}
        saes: dict[str, str] = {}
        sae_spans: dict[str, SourceSpan | None] = {}
        rules: list[tuple[int, ast.RuleDecl, _Origin]] = []
        rule_names: dict[str, SourceSpan | None] = {}
        sae_decls: list[ast.SaeDecl] = []
        includes: list[str] = [f for f in self.file_order[1:] if f is not None]

        # ---- expressions nested beyond MAX_DEPTH are reported once and their statement skipped
        for item in items:
            s = item.stmt
            if s.broken:
                continue
            for e in ast.stmt_exprs(s):
                if ast.expr_depth(e) > ast.MAX_DEPTH:
                    self.emit(
                        "E213",
                        f"expression is nested more than {ast.MAX_DEPTH} levels deep",
                        e.span,
                        label="too deeply nested",
                        help="split the condition into simpler parts or several rules",
                    )
                    s.broken = True
                    self.syntax_errors = True
                    break

        # ---- pass 1: declarations
        for item in items:
            s = item.stmt
            kind = type(s).__name__
            if isinstance(
                s, ast.RecipeDecl | ast.ModelDecl | ast.DatasetDecl | ast.TaskDecl | ast.GroupsDecl
            ):
                word = {
                    "RecipeDecl": "recipe",
                    "ModelDecl": "model",
                    "DatasetDecl": "dataset",
                    "TaskDecl": "task",
                    "GroupsDecl": "groups",
                }[kind]
                if word in singles:
                    first = singles[word]
                    if not s.broken:
                        self.emit(
                            "E111",
                            f"`{word}` is declared twice",
                            self._first_token(s),
                            label=f"second `{word}`",
                            help=f"keep one `{word}` line",
                            secondary=[(self._first_token(first), "first declared here")],
                        )
                    continue
                singles[word] = s
                if isinstance(s, ast.RecipeDecl) and not s.broken:
                    self._check_reserved(s.name, "recipe")
            elif isinstance(s, ast.ParamDecl):
                self._declare_param(s, item.origin)
            elif isinstance(s, ast.ConceptDecl):
                self._declare_concept(s, item.origin)
            elif isinstance(s, ast.SetDecl) and not s.broken:
                self._setting(s, settings, setting_spans)
            elif isinstance(s, ast.SaeDecl) and not s.broken:
                sae_decls.append(s)  # checked once the model depth is known
            elif isinstance(s, ast.RuleDecl):
                index = len(rules)
                rules.append((index, s, item.origin))
                if s.name is not None and not s.broken:
                    self._check_reserved(s.name, "rule")
                    nm = s.name.name
                    if nm in rule_names:
                        self.emit(
                            "E108",
                            f"rule `{nm}` is defined twice",
                            s.name.span,
                            label="second rule with this name",
                            help="give each rule its own name",
                            secondary=[(rule_names[nm], "first defined here")]
                            if rule_names[nm]
                            else [],
                        )
                    else:
                        rule_names[nm] = s.name.span
        for index, s, _ in rules:
            auto = f"rule_{index + 1}"
            if s.name is None and auto in rule_names:
                self.emit(
                    "E108",
                    f"rule name `{auto}` clashes with an unnamed rule",
                    rule_names[auto],
                    label=f"the {self._ordinal(index + 1)} rule is called `{auto}`",
                    help="choose a name that does not look like `rule_N`",
                    notes=["unnamed rules are called rule_1, rule_2, ... by position"],
                )

        # ---- dataset / model facts
        model_stmt = singles.get("model")
        model_ref = (
            model_stmt.ref.value
            if isinstance(model_stmt, ast.ModelDecl) and not model_stmt.broken
            else "default"
        )
        self.model_ref = model_ref
        self.n_layers = (
            self.n_layers_override if self.n_layers_override is not None else model_depth(model_ref)
        )
        ds_stmt = singles.get("dataset")
        self.dataset = (
            ds_stmt.ref.value
            if isinstance(ds_stmt, ast.DatasetDecl) and not ds_stmt.broken
            else None
        )
        self.columns = dataset_columns(self.dataset)
        if self.columns is not None and settings.get("stats_images", "clean") != "clean":
            self.columns = (*self.columns, *ATTACK_COLUMNS)

        for sd in sae_decls:
            self._sae(sd, saes, sae_spans)

        # ---- param overrides from the command line
        self._apply_overrides()

        # ---- task and groups
        task_ir = None
        task = singles.get("task")
        if isinstance(task, ast.TaskDecl) and not task.broken:
            task_ir = self._task(task)
        groups: list[str] = []
        g = singles.get("groups")
        if isinstance(g, ast.GroupsDecl) and not g.broken:
            seen: set[str] = set()
            for n in g.names:
                self._check_column(n.name, n.span, "group")
                if n.name in seen:
                    self.emit(
                        "W310",
                        f"group column `{n.name}` is listed twice",
                        n.span,
                        label="listed again here",
                        help=f"remove the second `{n.name}`",
                    )
                else:
                    groups.append(n.name)
                seen.add(n.name)

        # ---- concepts (resolved lazily so they may refer to each other in any order)
        for name in list(self.concepts):
            self._resolve_concept(name)

        # ---- rules
        rule_irs: list[dict] = []
        checked: list[tuple[int, ast.RuleDecl, dict]] = []
        for index, s, _origin in rules:
            if s.broken:
                self._mark_used_in_broken(s)
                continue
            r = self._rule(index, s)
            if r is not None:
                rule_irs.append(r)
                checked.append((index, s, r))

        # ---- lints
        if not any(d.is_error for d in self.diags):
            # Usage is only complete when every statement resolved; otherwise a typo'd
            # reference would cascade into an "unused" warning for the name it meant.
            self._lint_unused()
        if not self.syntax_errors:
            self._lint_overlaps(checked)

        if any(d.is_error for d in self.diags):
            return None

        # ---- IR
        recipe_stmt = singles.get("recipe")
        name = (
            recipe_stmt.name.name
            if isinstance(recipe_stmt, ast.RecipeDecl)
            else (os.path.splitext(os.path.basename(self.root))[0] if self.root else "recipe")
        )
        desc = (
            recipe_stmt.description.value
            if isinstance(recipe_stmt, ast.RecipeDecl) and recipe_stmt.description
            else ""
        )
        h = hashlib.sha256()
        for f in self.file_order:
            h.update(hashlib.sha256(self.sources[f].encode("utf-8")).digest())
        header = self.recipes[self.root].header
        data = {
            "language_version": header.version if header and header.version else 1,
            "name": name,
            "description": desc,
            "source": self.root,
            "source_hash": h.hexdigest(),
            "model": model_ref,
            "dataset": self.dataset,
            "task": task_ir,
            "groups": groups,
            "concepts": {
                n: {"name": n, "expr": c.ir, "span": self._ir_span(c.span)}
                for n, c in self.concepts.items()
                if c.ir is not None
            },
            "params": {
                n: {"name": n, "type": p.type, "value": p.value, "span": self._ir_span(p.span)}
                for n, p in self.params.items()
            },
            "saes": saes,
            "settings": settings,
            "includes": includes,
            "rules": rule_irs,
        }
        return self._validate(data)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _ordinal(n: int) -> str:
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{n}{suffix}"

    def _first_token(self, s: ast.Stmt) -> SourceSpan | None:
        """The span of a statement's first word (`model`, `task`, ...)."""
        if s.span is None:
            return None
        text = self.text_of(s.span)
        word = text.split(None, 1)[0] if text.strip() else ""
        return SourceSpan(
            s.span.file,
            s.span.start,
            s.span.start + len(word),
            s.span.line,
            s.span.column,
            s.span.line,
            s.span.column + len(word),
        )

    @staticmethod
    def _ir_span(span: SourceSpan | None) -> dict | None:
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

    def _check_reserved(self, ident: ast.Ident, what: str) -> bool:
        if ident.name in KEYWORDS:
            self.emit(
                "E110",
                f"`{ident.name}` is a reserved word",
                ident.span,
                label=f"cannot name a {what}",
                help=f"choose another name, e.g. `{ident.name}_{what}`",
                notes=["keywords are reserved everywhere; the list is in docs/language.md"],
            )
            return True
        return False

    # ------------------------------------------------------------------ params
    @staticmethod
    def _literal(e: ast.Expr) -> tuple[str, Any] | None:
        """(type, value) of a literal expression, or None."""
        if isinstance(e, ast.Num):
            return ("int", e.value) if isinstance(e.value, int) else ("float", e.value)
        if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.arg, ast.Num):
            v = -e.arg.value
            return ("int", v) if isinstance(v, int) else ("float", v)
        if isinstance(e, ast.Str):
            return ("str", e.value)
        if isinstance(e, ast.Bool):
            return ("bool", e.value)
        if isinstance(e, ast.Name):
            return ("word", e.name)
        return None

    def _declare_name(self, ident: ast.Ident, what: str) -> bool:
        """Shared namespace of params and concepts; returns False for a duplicate."""
        name = ident.name
        prev = self.params.get(name) or self.concepts.get(name)
        if prev is not None:
            kind = "param" if name in self.params else "concept"
            self.emit(
                "E109",
                f"`{name}` is already defined",
                ident.span,
                label=f"second definition (as a {what})",
                help=f"rename or delete one of the two definitions of `{name}`",
                secondary=[(prev.span, f"first defined here (as a {kind})")] if prev.span else [],
            )
            return False
        return True

    def _declare_param(self, s: ast.ParamDecl, origin: _Origin) -> None:
        if not s.broken:
            self._check_reserved(s.name, "param")  # still declared: uses must not cascade
        if not self._declare_name(s.name, "param"):
            return
        lit = None if s.broken else self._literal(s.value)
        if lit is None or lit[0] == "word":
            self.params[s.name.name] = _Param(s, "?", None, s.name.span, origin=origin)
            return
        t, v = lit
        if t == "float" and not math.isfinite(v):
            self.emit(
                "E204",
                "number is too large",
                s.value.span,
                label="not a finite number",
                help="use a smaller number",
            )
            self.params[s.name.name] = _Param(s, "?", None, s.name.span, origin=origin)
            return
        self.params[s.name.name] = _Param(s, t, v, s.name.span, origin=origin)

    def _apply_overrides(self) -> None:
        for name, raw_value in self.param_overrides.items():
            raw = str(raw_value)
            p = self.params.get(name)
            if p is None:
                guess = did_you_mean(name, list(self.params))
                self.emit(
                    "E103",
                    f"unknown param `{name}` in `--param {name}={raw}`",
                    None,
                    help=f"did you mean `{guess}`?"
                    if guess
                    else (
                        "declared params: " + ", ".join(f"`{n}`" for n in self.params)
                        if self.params
                        else "declare it in the recipe with `param NAME = value` first"
                    ),
                )
                continue
            if p.type == "?":
                continue
            value, err = _parse_override(raw, p.type)
            if err is not None:
                span = p.decl.value.span if p.decl is not None else p.span
                self.emit(
                    "E209",
                    f"`--param {name}={raw}`: {err}",
                    span,
                    label=f"`{name}` is declared as {_type_phrase(p.type)} here",
                    help=f"pass {_type_phrase(p.type)}, e.g. `--param {name}={_example(p.type)}`",
                )
                continue
            p.value = value

    # ------------------------------------------------------------------ concepts
    def _declare_concept(self, s: ast.ConceptDecl, origin: _Origin) -> None:
        if not s.broken:
            self._check_reserved(s.name, "concept")
        if not self._declare_name(s.name, "concept"):
            return
        self.concepts[s.name.name] = _Concept(
            None if s.broken else s, s.name.span, state="done" if s.broken else "new", origin=origin
        )

    def _resolve_concept(self, name: str) -> dict | None:
        c = self.concepts[name]
        if c.state == "done":
            return c.ir
        if c.state == "busy":
            return None
        c.state = "busy"
        assert c.decl is not None
        ir, t = self._concept_expr(c.decl.expr, name)
        if t not in ("bool", "?"):
            e = c.decl.expr
            hint = ""
            if isinstance(e, ast.Name):
                hint = f"write a condition such as `{e.name} == 1`"
            self.emit(
                "E204",
                f"concept `{name}` must be a condition, found {_TYPE_WORDS.get(t, t)}",
                e.span,
                label="expected a true/false condition",
                help=hint or "compare a column with a value, e.g. `place == 1`",
            )
            ir = None
        c.ir = ir
        c.state = "done"
        return ir

    def _concept_expr(self, e: ast.Expr, owner: str) -> tuple[dict | None, str]:
        if isinstance(e, ast.Num | ast.Str | ast.Bool):
            return _literal_ir(e)
        if isinstance(e, ast.Name):
            n = e.name
            if n in self.concepts:
                c = self.concepts[n]
                if c.state == "busy":
                    self.emit(
                        "E204",
                        f"concept `{n}` refers to itself",
                        e.span,
                        label="used inside its own definition",
                        help="define the concept from dataset columns only",
                    )
                    return None, "?"
                c.used = True
                ir = self._resolve_concept(n)
                return ir, ("bool" if ir is not None else "?")
            if n in self.params:
                p = self.params[n]
                p.used = True
                return {"kind": "param", "name": n}, _ptype(p.type)
            if self._check_column(n, e.span, "column"):
                return {"kind": "column", "name": n}, "col"
            return None, "?"
        if isinstance(e, ast.Call):
            self.emit(
                "E204",
                f"statistic `{e.func}()` cannot be used in a concept definition",
                e.span,
                label="concepts are defined from dataset columns",
                help="use statistics in rule predicates; define the concept from columns, "
                "e.g. `concept water = place == 1`",
            )
            return None, "?"
        if isinstance(e, ast.Unary):
            arg, t = self._concept_expr(e.arg, owner)
            if e.op == "not":
                if t not in ("bool", "?"):
                    self._type_error(e.arg, t, "bool", "`not` needs a condition")
                    return None, "?"
                return ({"kind": "not", "arg": arg} if arg else None), ("bool" if arg else "?")
            if t not in ("num", "col", "?"):
                self._type_error(e.arg, t, "num", "`-` needs a number")
                return None, "?"
            if arg and arg.get("kind") == "num":
                return {"kind": "num", "value": -arg["value"]}, "num"
            return ({"kind": "neg", "arg": arg} if arg else None), (t if arg else "?")
        if isinstance(e, ast.Binary):
            return self._binary(e, lambda x: self._concept_expr(x, owner), concept=True)
        return None, "?"

    def _check_column(self, name: str, span: SourceSpan | None, what: str) -> bool:
        if self.columns is None or name in self.columns:
            return True
        guess = did_you_mean(name, self.columns)
        hint = f"did you mean `{guess}`?" if guess else None
        if name in ATTACK_COLUMNS:
            hint = (
                f"`{name}` exists on attacked copies of the statistics images: add `set attack = "
                '"typographic"` and `set stats_images = "both"`'
            )
        self.emit(
            "E105",
            f"unknown column `{name}`",
            span,
            label=f"not a column of dataset `{self.dataset}`",
            help=hint,
            notes=[f"columns of `{self.dataset}`: " + ", ".join(self.columns)],
        )
        return False

    # ------------------------------------------------------------------ expressions
    def _type_error(self, e: ast.Expr, found: str, want: str, label: str) -> None:
        if found == "?":
            return
        self.emit(
            "E204",
            f"expected {_TYPE_WORDS[want]}, found {_TYPE_WORDS.get(found, found)}",
            e.span,
            label=label,
        )

    def _binary(self, e: ast.Binary, sub: Callable, *, concept: bool = False) -> tuple:
        op = e.op
        if op in ("and", "or"):
            parts = _flatten(e, op)
            irs = []
            ok = True
            for p in parts:
                ir, t = sub(p)
                if t not in ("bool", "?"):
                    hint = (
                        f"compare it, e.g. `{self.text_of(p.span)} == 1`"
                        if t == "col"
                        else f"compare it with a threshold, e.g. `{self.text_of(p.span)} > 0.3`"
                        if t == "num"
                        else None
                    )
                    self.emit(
                        "E204",
                        f"`{op}` needs conditions, found {_TYPE_WORDS.get(t, t)}",
                        p.span,
                        label="not a true/false condition",
                        help=hint,
                    )
                    ok = False
                if ir is None:
                    ok = False
                irs.append(ir)
            if op == "and" and not concept:
                self._check_contradiction(parts)
            if not ok:
                return None, "?"
            return {"kind": op, "args": irs}, "bool"
        left, lt = sub(e.left)
        right, rt = sub(e.right)
        if op in ("+", "-", "*", "/"):
            bad = [(x, t) for x, t in ((e.left, lt), (e.right, rt)) if t not in ("num", "col", "?")]
            for x, t in bad:
                self._type_error(x, t, "num", f"`{op}` needs numbers")
            if bad or left is None or right is None:
                return None, "?"
            return {"kind": "arith", "op": op, "left": left, "right": right}, "num"
        # comparison
        if left is None or right is None:
            return None, "bool" if (lt != "?" and rt != "?") else "?"
        ok = True
        if "col" in (lt, rt):
            pass
        elif lt != rt:
            self.emit(
                "E204",
                f"cannot compare {_TYPE_WORDS.get(lt, lt)} with {_TYPE_WORDS.get(rt, rt)}",
                e.op_span,
                label="cannot compare these",
                help='compare strings with strings (`top_concept() == "text"`) and numbers '
                "with numbers",
                secondary=[
                    (e.left.span, _TYPE_WORDS.get(lt, lt)),
                    (e.right.span, _TYPE_WORDS.get(rt, rt)),
                ]
                if e.left.span and e.right.span
                else None,
            )
            ok = False
        elif lt in ("str", "bool") and op not in ("==", "!="):
            self.emit(
                "E204",
                f"`{op}` compares numbers, found {_TYPE_WORDS[lt]}s",
                e.op_span,
                label=f"{_TYPE_WORDS[lt]}s can only be compared with `==` and `!=`",
                help="use `==` or `!=`",
            )
            ok = False
        if not ok:
            return None, "?"
        if not concept:
            self._check_range(e)
        return {"kind": "compare", "op": op, "left": left, "right": right}, "bool"

    def _pred(self, e: ast.Expr) -> tuple[dict | None, str]:
        """Resolve a rule expression (predicate, `by` expression): names are params, calls
        are statistics."""
        if isinstance(e, ast.Num | ast.Str | ast.Bool):
            return _literal_ir(e)
        if isinstance(e, ast.Name):
            return self._name_value(e)
        if isinstance(e, ast.Call):
            return self._call(e)
        if isinstance(e, ast.Unary):
            arg, t = self._pred(e.arg)
            if e.op == "not":
                if t not in ("bool", "?"):
                    self._type_error(e.arg, t, "bool", "`not` needs a condition")
                    return None, "?"
                return ({"kind": "not", "arg": arg} if arg else None), ("bool" if arg else "?")
            if t not in ("num", "?"):
                self._type_error(e.arg, t, "num", "`-` needs a number")
                return None, "?"
            if arg is None:
                return None, "?"
            if arg.get("kind") == "num":
                return {"kind": "num", "value": -arg["value"]}, "num"
            return {"kind": "neg", "arg": arg}, "num"
        if isinstance(e, ast.Binary):
            return self._binary(e, self._pred)
        return None, "?"

    def _name_value(self, e: ast.Name) -> tuple[dict | None, str]:
        n = e.name
        if n in self.params:
            p = self.params[n]
            p.used = True
            return {"kind": "param", "name": n}, _ptype(p.type)
        if n in self.concepts:
            self.concepts[n].used = True
            self.emit(
                "E204",
                f"concept `{n}` is not a value",
                e.span,
                label="concepts are used through statistics",
                help=f"use a statistic of the concept, e.g. `corr({n}) > 0.3`",
            )
            return None, "?"
        if self.columns is not None and n in self.columns:
            self.emit(
                "E204",
                f"column `{n}` can only be used in a concept definition",
                e.span,
                label="dataset columns are not per-feature values",
                help=f"declare `concept NAME = {n} == 1` and use `corr(NAME)`",
            )
            return None, "?"
        guess = did_you_mean(n, list(self.params) + list(self.concepts))
        if guess in self.concepts:
            help_ = f"did you mean `corr({guess})`?"
        elif guess:
            help_ = f"did you mean `{guess}`?"
        else:
            help_ = f"declare it with `param {n} = …`"
        fix = None
        if guess in self.params and e.span is not None:
            fix = Edit(e.span, guess)
        if n in KEYWORDS:
            help_, fix = f"`{n}` is a reserved word; it cannot name a param", None
        self.emit(
            "E103",
            f"unknown name `{n}`",
            e.span,
            label="not a declared param",
            help=help_,
            fix=fix,
        )
        return None, "?"

    def _call(self, e: ast.Call) -> tuple[dict | None, str]:
        fn = e.func
        if fn not in STAT_FUNCTIONS:
            guess = None if fn in KEYWORDS else did_you_mean(fn, list(STAT_FUNCTIONS))
            self.emit(
                "E102",
                f"unknown function `{fn}`",
                e.func_span,
                label="not a statistic",
                help=f"did you mean `{guess}`?"
                if guess
                else f"`{fn}` is a reserved word, not a function"
                if fn in KEYWORDS
                else "statistics are " + ", ".join(f"`{f}`" for f in STAT_FUNCTIONS),
                fix=Edit(e.func_span, guess) if guess and e.func_span else None,
            )
            for a in e.args:  # still resolve arguments so their names count as used
                self._touch(a)
            return None, "?"
        lo, hi = _STAT_ARITY[fn]
        n = len(e.args)
        if not lo <= n <= hi:
            want = {
                (1, 1): "one argument",
                (0, 1): "at most one argument",
                (0, 0): "no arguments",
            }[(lo, hi)]
            self.emit(
                "E205",
                f"`{fn}` takes {want}, found {n}",
                e.span,
                label=f"{n} argument{'s' if n != 1 else ''}",
                help=_call_help(fn, self.concepts),
            )
            for a in e.args:
                self._touch(a)
            return None, "?"
        t = "str" if fn == "top_concept" else "num"
        if fn in ("corr", "mean"):
            if n == 0:
                return {"kind": "stat", "fn": fn}, t
            a = e.args[0]
            negated = False
            if fn == "mean" and isinstance(a, ast.Unary) and a.op == "not":
                negated = True
                a = a.arg
            concept = self._concept_arg(fn, a)
            if concept is None:
                return None, "?"
            return {"kind": "stat", "fn": fn, "concept": concept, "negated": negated}, t
        if fn == "promotes":
            a = e.args[0]
            word = None
            if isinstance(a, ast.Str):
                word = a.value
            elif isinstance(a, ast.Name) and a.name in self.params:
                p = self.params[a.name]
                p.used = True
                if p.type == "str":
                    word = p.value
                elif p.type == "?":
                    return None, "?"
            if word is None:
                shown = self.text_of(a.span) or "…"
                self.emit(
                    "E206",
                    "`promotes` takes a word as a string",
                    a.span,
                    label="not a string",
                    help=f'write `promotes("{shown.strip(chr(34))}")`',
                    fix=Edit(a.span, f'"{shown}"') if isinstance(a, ast.Name) and a.span else None,
                )
                return None, "?"
            return {"kind": "stat", "fn": fn, "word": word}, t
        return {"kind": "stat", "fn": fn}, t

    def _concept_arg(self, fn: str, a: ast.Expr) -> str | None:
        if not isinstance(a, ast.Name):
            what = "`not CONCEPT`" if fn == "mean" else "a concept"
            self.emit(
                "E206",
                f"`{fn}` takes a concept name",
                a.span,
                label="not a concept name",
                help=f"pass {what} declared with `concept NAME = …`",
            )
            self._touch(a)
            return None
        n = a.name
        if n in self.concepts:
            self.concepts[n].used = True
            return n
        if n in self.params:
            self.params[n].used = True
            self.emit(
                "E206",
                f"`{fn}` takes a concept, but `{n}` is a param",
                a.span,
                label="a param, not a concept",
                help="pass a concept declared with `concept NAME = …`",
            )
            return None
        guess = did_you_mean(n, list(self.concepts))
        notes = []
        if self.concepts:
            notes.append("declared concepts: " + ", ".join(f"`{c}`" for c in self.concepts))
        if self.columns is not None and n in self.columns:
            help_ = f"declare it first, e.g. `concept {n.lower()} = {n} == 1`"
        elif guess:
            help_ = f"did you mean `{guess}`?"
        else:
            help_ = f"declare it with `concept {n} = <condition over dataset columns>`"
        self.emit(
            "E101",
            f"unknown concept `{n}`",
            a.span,
            label="not a known concept",
            help=help_,
            notes=notes,
            fix=Edit(a.span, guess)
            if guess and a.span and not (self.columns and n in self.columns)
            else None,
        )
        return None

    def _touch(self, e: ast.Expr) -> None:
        """Mark names in an expression as used without reporting anything (error paths)."""
        for sub in ast.walk(e):
            if isinstance(sub, ast.Name):
                if sub.name in self.params:
                    self.params[sub.name].used = True
                if sub.name in self.concepts:
                    self.concepts[sub.name].used = True

    def _mark_used_in_broken(self, s: ast.Stmt) -> None:
        for e in ast.stmt_exprs(s):
            self._touch(e)

    # ------------------------------------------------------------------ constants and ranges
    def _const(self, e: ast.Expr) -> tuple[Any, str | None] | None:
        """(value, param name) of a constant numeric/string expression, else None."""
        if isinstance(e, ast.Num):
            return float(e.value), None
        if isinstance(e, ast.Str):
            return e.value, None
        if isinstance(e, ast.Name) and e.name in self.params:
            p = self.params[e.name]
            if p.type in ("int", "float"):
                return float(p.value), e.name
            if p.type == "str":
                return p.value, e.name
            return None
        if isinstance(e, ast.Unary) and e.op == "-":
            c = self._const(e.arg)
            if c is not None and isinstance(c[0], float):
                return -c[0], c[1]
            return None
        if isinstance(e, ast.Binary) and e.op in ("+", "-", "*", "/"):
            a, b = self._const(e.left), self._const(e.right)
            if a is None or b is None or not isinstance(a[0], float) or not isinstance(b[0], float):
                return None
            try:
                v = {"+": a[0] + b[0], "-": a[0] - b[0], "*": a[0] * b[0]}.get(e.op)
                if e.op == "/":
                    v = a[0] / b[0]
            except ZeroDivisionError:
                return None
            return v, a[1] or b[1]
        return None

    def _stat_of(self, e: ast.Expr) -> tuple[str, str] | None:
        """(fn, column key) when `e` is a valid statistic call."""
        if not isinstance(e, ast.Call) or e.func not in STAT_FUNCTIONS:
            return None
        fn = e.func
        lo, hi = _STAT_ARITY[fn]
        if not lo <= len(e.args) <= hi:
            return None
        if not e.args:
            return fn, fn
        a = e.args[0]
        if fn == "promotes":
            if isinstance(a, ast.Str):
                return fn, f"promotes:{a.value}"
            c = self._const(a)
            return (fn, f"promotes:{c[0]}") if c else None
        neg = ""
        if isinstance(a, ast.Unary) and a.op == "not":
            neg, a = "_not", a.arg
        if isinstance(a, ast.Name):
            return fn, f"{fn}{neg}:{a.name}"
        return None

    def _bound(self, e: ast.Expr) -> tuple[str, str, str, Any, ast.Binary] | None:
        """`stat OP const` (either order) as (fn, key, op, value, node)."""
        if not isinstance(e, ast.Binary) or e.op not in ast.COMPARE_OPS:
            return None
        for stat_side, const_side, op in ((e.left, e.right, e.op), (e.right, e.left, _FLIP[e.op])):
            st = self._stat_of(stat_side)
            if st is None:
                continue
            c = self._const(const_side)
            if c is None:
                return None
            return st[0], st[1], op, c[0], e
        return None

    def _check_range(self, e: ast.Binary) -> None:
        from steerlang.plan import STAT_RANGES

        b = self._bound(e)
        if b is None:
            return
        fn, _key, op, value, _node = b
        rng = STAT_RANGES.get(fn)
        if rng is None or not isinstance(value, float):
            return
        lo, hi = rng
        stat_side = e.left if self._stat_of(e.left) else e.right
        const_side = e.right if stat_side is e.left else e.left
        c = self._const(const_side)
        pname = c[1] if c else None
        notes = [f"`{pname}` is {_fmt(value)}"] if pname else []
        rng_text = f"[{_fmt(lo)}, {_fmt(hi)}]" if math.isfinite(hi) else f"[{_fmt(lo)}, ∞)"
        if value < lo or value > hi:
            self.emit(
                "E202",
                f"threshold {_fmt(value)} is outside the range of `{fn}`, {rng_text}",
                const_side.span,
                label=f"`{fn}` is never {'above' if value > hi else 'below'} "
                f"{_fmt(hi if value > hi else lo)}",
                help=f"use a threshold between {_fmt(lo)} and "
                f"{_fmt(hi) if math.isfinite(hi) else 'any larger value'}",
                notes=notes,
            )
            return
        always = (op == ">=" and value <= lo) or (op == "<=" and value >= hi)
        always = always or (op == ">" and value <= lo and lo != 0) or (op == "<" and value >= hi)
        never = (op == ">" and value >= hi) or (op == "<" and value <= lo)
        if always:
            self.emit(
                "W304",
                f"`{self.text_of(e.span)}` is always true",
                e.span,
                label=f"`{fn}` is always in {rng_text}",
                help="remove the comparison or pick a threshold inside the range",
                notes=notes,
            )
        elif never:
            self.emit(
                "W305",
                f"`{self.text_of(e.span)}` is never true",
                e.span,
                label=f"`{fn}` is always in {rng_text}",
                help="pick a threshold inside the range",
                notes=notes,
            )

    def _constraints(self, conjuncts: list[ast.Expr]) -> tuple[int, int] | None:
        """Index (j, i) of a conjunct j that contradicts an earlier conjunct i, if any."""
        return _contradiction([self._bound(c) for c in conjuncts])

    def _check_contradiction(self, conjuncts: list[ast.Expr]) -> None:
        hit = self._constraints(conjuncts)
        if hit is None:
            return
        j, i = hit
        a, b = conjuncts[i], conjuncts[j]
        self.emit(
            "W306",
            f"`{self.text_of(b.span)}` contradicts `{self.text_of(a.span)}`",
            b.span,
            label="no feature can satisfy both",
            help="did you mean `or`?",
            secondary=[(a.span, "contradicted condition")] if a.span and i != j else None,
        )

    # ------------------------------------------------------------------ settings and SAEs
    def _setting(self, s: ast.SetDecl, settings: dict, spans: dict) -> None:
        from steerlang.plan import SETTING_DEFAULTS

        name = s.name.name
        if name not in SETTING_DEFAULTS:
            guess = did_you_mean(name, list(SETTING_DEFAULTS))
            self.emit(
                "E104",
                f"unknown setting `{name}`",
                s.name.span,
                label="not a setting",
                help=f"did you mean `{guess}`?"
                if guess
                else "settings are listed in docs/language.md",
                fix=Edit(s.name.span, guess) if guess and s.name.span else None,
            )
            return
        default = SETTING_DEFAULTS[name]
        lit = self._literal(s.value)
        want = (
            "bool"
            if isinstance(default, bool)
            else "int"
            if isinstance(default, int)
            else "float"
            if isinstance(default, float)
            else "str"
        )
        value: Any = None
        if lit is not None:
            t, v = lit
            if t == "word":
                t = "str"
            if t == want or (want == "float" and t == "int"):
                value = float(v) if want == "float" else v
        if value is None:
            found = (
                "a bare word"
                if isinstance(s.value, ast.Name)
                else _type_phrase(lit[0])
                if lit
                else "an expression"
            )
            self.emit(
                "E208",
                f"setting `{name}` takes {_type_phrase(want)}, found {found}",
                s.value.span,
                label=f"expected {_type_phrase(want)}",
                help=f"write e.g. `set {name} = {_render_value(default)}` (the default)",
            )
            return
        if want == "float" and not math.isfinite(value):
            self.emit("E208", f"setting `{name}` must be finite", s.value.span, label="too large")
            return
        choices = SETTING_CHOICES.get(name) or (SPLIT_NAMES if name in SPLIT_SETTINGS else None)
        if choices is not None and value not in choices:
            guess = did_you_mean(str(value), choices)
            shown = choices if name not in SPLIT_SETTINGS else ("train", "val", "test")
            self.emit(
                "E208",
                f"invalid value {_render_value(value)} for setting `{name}`",
                s.value.span,
                label="not one of " + ", ".join(_render_value(c) for c in shown),
                help=f"did you mean {_render_value(guess)}?" if guess else None,
                fix=Edit(s.value.span, _render_value(guess)) if guess and s.value.span else None,
            )
            return
        if name in SETTING_MIN and value < SETTING_MIN[name]:
            self.emit(
                "E208",
                f"setting `{name}` must be at least {_fmt(SETTING_MIN[name])}",
                s.value.span,
                label=f"{_fmt(value)} is too small",
                help=f"use a value of at least {_fmt(SETTING_MIN[name])}",
            )
            return
        if name in settings:
            self.emit(
                "W307",
                f"setting `{name}` is set twice",
                s.name.span,
                label="this value wins",
                help="delete one of the two `set` lines",
                secondary=[(spans[name], "earlier value")] if spans.get(name) else None,
            )
        settings[name] = value
        spans[name] = s.name.span

    def _sae(self, s: ast.SaeDecl, saes: dict, spans: dict) -> None:
        layers = self._layers(s.layers)
        site = s.site.name if s.site else "resid_post"
        if s.site is not None and not self._valid_site(s.site):
            return
        for layer in layers:
            key = f"{layer}:{site}"
            ref = s.ref.value.replace("{layer}", str(layer)).replace("{site}", site)
            if key in saes:
                self.emit(
                    "W307",
                    f"the SAE for layer {layer} ({site}) is set twice",
                    s.span,
                    label="this reference wins",
                    help="delete one of the two `sae` lines",
                    secondary=[(spans[key], "earlier reference")] if spans.get(key) else None,
                )
            saes[key] = ref
            spans[key] = s.span

    def _valid_site(self, ident: ast.Ident) -> bool:
        """Validate a site name through the plan's own model (mapped to E401)."""
        from pydantic import ValidationError

        from steerlang.plan import SiteRef

        try:
            SiteRef(layer=0, site=ident.name)  # type: ignore[arg-type]
        except ValidationError as err:
            self._pydantic_errors(err, {(): ident.span, ("site",): ident.span})
            return False
        return True

    # ------------------------------------------------------------------ rules
    def _layers(self, items: list[ast.IntItem], what: str = "layer") -> list[int]:
        out: list[int] = []
        seen: set[int] = set()
        for it in items:
            if it.hi is not None and it.hi < it.lo:
                self.emit(
                    "E210",
                    f"range `{it.lo}..{it.hi}` is reversed",
                    it.span,
                    label="the start is after the end",
                    help=f"write `{it.hi}..{it.lo}`",
                    fix=Edit(it.span, f"{it.hi}..{it.lo}") if it.span else None,
                )
                continue
            vals = it.values()
            if what == "layer" and self.n_layers is not None and vals[-1] >= self.n_layers:
                last = self.n_layers - 1
                source = (
                    f"`--layers {self.n_layers}`"
                    if self.n_layers_override is not None
                    else f"model `{self.model_ref}`"
                )
                msg = (
                    f"layer {it.lo} is out of range"
                    if it.hi is None
                    else f"layer range `{it.lo}..{it.hi}` goes past the last layer"
                )
                self.emit(
                    "E201",
                    msg,
                    it.span,
                    label=f"{source} has {self.n_layers} layers",
                    help=f"layers for this model are 0..{last}",
                )
                continue
            dup = [v for v in vals if v in seen]
            if dup:
                self.emit(
                    "W310",
                    f"{what} {dup[0]} is listed twice",
                    it.span,
                    label="already listed",
                    help="remove the repetition",
                )
            for v in vals:
                if v not in seen:
                    seen.add(v)
                    out.append(v)
        return out

    def _given_twice(self, what: str, span: Any, first: Any) -> None:
        self.emit(
            "E211",
            f"`{what}` is given twice",
            span,
            label=f"second `{what}`",
            help=f"keep one `{what}`",
            secondary=[(first, f"first `{what}`")],
        )

    def _rule(self, index: int, s: ast.RuleDecl) -> dict | None:
        name = s.name.name if s.name else f"rule_{index + 1}"
        loc = ("rules", index)
        errors_before = sum(1 for d in self.diags if d.is_error)
        layers = self._layers(s.scope.layers)
        site: str | None = None
        tokens: Any = "all"
        seen_site = seen_tokens = None
        for m in s.scope.mods:
            if isinstance(m, ast.SiteMod):
                if seen_site is not None:
                    self._given_twice("site", m.span, seen_site)
                    continue
                seen_site = m.span
                site = m.site.name
                self.span_map[(*loc, "scope", "site")] = m.site.span  # type: ignore[assignment]
            else:
                if seen_tokens is not None:
                    self._given_twice("tokens", m.span, seen_tokens)
                    continue
                seen_tokens = m.span
                if m.kind is not None:
                    tokens = m.kind.name
                    self.span_map[(*loc, "scope", "tokens")] = m.kind.span  # type: ignore[assignment]
                else:
                    tokens = self._layers(m.indices or [], "token index")
                    self.span_map[(*loc, "scope", "tokens")] = m.span  # type: ignore[assignment]
        scope: dict[str, Any] = {"layers": layers, "tokens": tokens}
        if site is not None:
            scope["site"] = site
        self.span_map[loc] = s.span  # type: ignore[assignment]
        self.span_map[(*loc, "scope")] = s.scope.span  # type: ignore[assignment]

        # action value
        act = s.action
        value_ir = None
        if act.value is not None:
            value_ir = self._action_value(act)
        # selector
        sel = act.selector
        sel_ir: dict | None = None
        if isinstance(sel, ast.WhereSel):
            w, t = self._pred(sel.where)
            if t not in ("bool", "?"):
                self._not_condition(sel.where, t)
            sel_ir = {"kind": "where", "where": w}
        elif isinstance(sel, ast.TopSel):
            k_ir = self._count(sel.k)
            by, t = self._pred(sel.by)
            if t not in ("num", "?"):
                self.emit(
                    "E204",
                    f"`by` needs a number to rank features, found {_TYPE_WORDS.get(t, t)}",
                    sel.by.span,
                    label="not a number",
                    help="rank by a statistic, e.g. `by corr(water)`",
                )
            where = None
            if sel.where is not None:
                where, wt = self._pred(sel.where)
                if wt not in ("bool", "?"):
                    self._not_condition(sel.where, wt)
            sel_ir = {"kind": "top", "k": k_ir, "by": by, "where": where, "order": sel.order}
        else:
            ids = self._layers(sel.items, "feature")
            sel_ir = {"kind": "ids", "ids": ids}
        self.span_map[(*loc, "selector")] = sel.span  # type: ignore[assignment]
        self.span_map[(*loc, "action")] = act.span  # type: ignore[assignment]
        if sum(1 for d in self.diags if d.is_error) > errors_before:
            return None
        return {
            "name": name,
            "index": index,
            "scope": scope,
            "action": {"op": act.op, "value": value_ir},
            "selector": sel_ir,
            "span": self._ir_span(s.span),
        }

    def _not_condition(self, e: ast.Expr, t: str) -> None:
        shown = self.text_of(e.span)
        self.emit(
            "E204",
            f"a `where` predicate must be a condition, found {_TYPE_WORDS.get(t, t)}",
            e.span,
            label="not a true/false condition",
            help=f"compare it with a threshold, e.g. `{shown} > 0.3`"
            if t == "num"
            else "write a comparison such as `corr(water) > 0.3`",
        )

    def _action_value(self, act: ast.Action) -> dict | None:
        v = act.value
        assert v is not None
        if isinstance(v, ast.Name):
            if v.name not in self.params:
                self._name_value(v)
                return None
            p = self.params[v.name]
            p.used = True
            if p.type not in ("int", "float", "?"):
                self.emit(
                    "E204",
                    f"`{act.word}` needs a number, but `{v.name}` is {_type_phrase(p.type)}",
                    v.span,
                    label=f"{_type_phrase(p.type)} param",
                    help="use a numeric param or a number",
                )
                return None
            return {"kind": "param", "name": v.name}
        lit = self._literal(v)
        if lit is None or lit[0] not in ("int", "float"):
            return None
        if not math.isfinite(float(lit[1])):
            self.emit("E204", "number is too large", v.span, label="not a finite number")
            return None
        return {"kind": "num", "value": float(lit[1])}

    def _count(self, k: ast.Expr) -> Any:
        if isinstance(k, ast.Name):
            if k.name not in self.params:
                self._name_value(k)
                return None
            p = self.params[k.name]
            p.used = True
            if p.type == "?":
                return {"kind": "param", "name": k.name}
            if p.type != "int":
                self.emit(
                    "E204",
                    f"`top` needs a whole number, but `{k.name}` is {_type_phrase(p.type)}",
                    k.span,
                    label=f"{_type_phrase(p.type)} param",
                    help=f"declare it as a whole number, e.g. `param {k.name} = 10`",
                )
                return None
            if p.value < 1:
                self.emit(
                    "E203",
                    f"`top {k.name}` selects no features",
                    k.span,
                    label=f"`{k.name}` is {p.value}",
                    help=f"set `{k.name}` to at least 1",
                )
                return None
            return {"kind": "param", "name": k.name}
        if isinstance(k, ast.Num):
            if k.value < 1:
                self.emit(
                    "E203",
                    f"`top {k.value}` selects no features",
                    k.span,
                    label="must be at least 1",
                    help="select at least one feature, e.g. `top 10`",
                )
                return None
            return int(k.value)
        return None

    # ------------------------------------------------------------------ task
    def _task(self, t: ast.TaskDecl) -> dict | None:
        self._check_column(t.label.name, t.label.span, "label")
        classes = [c.value for c in t.classes]
        ok = True
        if len(classes) < 2:
            self.emit(
                "E212",
                "a classification task needs at least two classes",
                join(t.classes[0].span, t.classes[-1].span) if t.classes else t.span,
                label=f"{len(classes)} class{'es' if len(classes) != 1 else ''}",
                help="list every class name in label order",
            )
            ok = False
        seen: dict[str, SourceSpan | None] = {}
        for c in t.classes:
            if not c.value.strip():
                self.emit("E212", "class name is empty", c.span, label="empty class name")
                ok = False
            elif c.value in seen:
                self.emit(
                    "E212",
                    f'class "{c.value}" is listed twice',
                    c.span,
                    label="repeated class",
                    help="class names must be distinct",
                    secondary=[(seen[c.value], "first listed here")] if seen[c.value] else None,
                )
                ok = False
            seen[c.value] = c.span
        prompts = [p.value for p in t.prompts]
        for p in t.prompts:
            if not p.value.strip():
                self.emit("E212", "prompt is empty", p.span, label="empty prompt")
                ok = False
            elif "{}" not in p.value:
                self.emit(
                    "W309",
                    "prompt has no `{}` placeholder",
                    p.span,
                    label="every class gets the same text",
                    help='add `{}` where the class name goes, e.g. "a photo of a {}."',
                )
        if not ok:
            return None
        out: dict[str, Any] = {"kind": "classify", "label": t.label.name, "classes": classes}
        if prompts:
            out["prompts"] = prompts
        return out

    # ------------------------------------------------------------------ lints
    def _lint_unused(self) -> None:
        for n, p in self.params.items():
            if not p.used and p.decl is not None:
                self.emit(
                    "W301",
                    f"param `{n}` is never used",
                    p.span,
                    label="declared here",
                    help=f"use `{n}` in a rule or delete it",
                )
        for n, c in self.concepts.items():
            if not c.used and c.decl is not None:
                self.emit(
                    "W302",
                    f"concept `{n}` is never used",
                    c.span,
                    label="declared here",
                    help=f"use it in a statistic such as `corr({n})` or delete it",
                )

    def _lint_overlaps(self, rules: list[tuple[int, ast.RuleDecl, dict]]) -> None:
        # Each rule's selector facts are computed once, not once per pair: the pairwise
        # disjointness test is the hot loop of a large recipe's check.
        facts = [self._selector_facts(s) for _i, s, _r in rules]
        memo: dict[tuple, bool] = {}
        by_site: dict[tuple[int, str], list[int]] = {}
        for pos, (_i, _s, r) in enumerate(rules):
            site = r["scope"].get("site", "resid_post")
            overlaps: dict[int, int] = {}
            for layer in r["scope"]["layers"]:
                for other in by_site.get((layer, site), []):
                    overlaps.setdefault(other, layer)
            reported = False
            for other, layer in overlaps.items():
                if reported:
                    break
                if _disjoint_facts(facts[other], facts[pos], memo):
                    continue
                if _same_edit(rules[other][2], r):
                    continue  # overriding with the identical edit changes nothing
                _oi, os_, orr = rules[other]
                _ji, js, jr = rules[pos]
                span = next(
                    (it.span for it in js.scope.layers if layer in it.values()), js.scope.span
                )
                self.emit(
                    "W303",
                    f"rule `{jr['name']}` may override rule `{orr['name']}` on layer {layer} ({site})",
                    span,
                    label=f"`{orr['name']}` also acts on layer {layer}",
                    help="make the selections disjoint or merge the rules",
                    notes=[
                        "a later rule overrides an earlier one on the same (layer, site, "
                        "feature); `steer explain` shows the winner"
                    ],
                    secondary=[(os_.span, f"`{orr['name']}` defined here")] if os_.span else None,
                )
                reported = True
            for layer in r["scope"]["layers"]:
                by_site.setdefault((layer, site), []).append(pos)

    def _selector_facts(self, s: ast.RuleDecl) -> tuple[set[int] | None, list | None, tuple]:
        """(feature ids of an id selector, bounds of the `where` conjuncts, the bounds as a
        hashable key) for one rule."""
        sel = s.action.selector
        if isinstance(sel, ast.IdsSel):
            return {v for it in sel.items for v in it.values()}, None, ()
        w = _where_of(sel)
        if w is None:
            return None, None, ()
        bounds = [self._bound(c) for c in _flatten(w, "and")]
        return None, bounds, tuple(b[:4] if b is not None else None for b in bounds)

    # ------------------------------------------------------------------ pydantic
    def _validate(self, data: dict) -> Any:
        from pydantic import ValidationError

        from steerlang.plan import RecipeIR

        try:
            return RecipeIR.model_validate(data)
        except ValidationError as err:
            self._pydantic_errors(err, self.span_map)
            return None

    def _pydantic_errors(self, err: Any, span_map: dict) -> None:
        seen: set[tuple] = set()
        for e in err.errors():
            loc = tuple(e["loc"])
            # Union members repeat one problem per alternative; report the path once.
            key = tuple(x for x in loc if isinstance(x, int) or x in _IR_FIELDS)
            if key in seen:
                continue
            seen.add(key)
            span = None
            for n in range(len(loc), -1, -1):
                if loc[:n] in span_map:
                    span = span_map[loc[:n]]
                    break
            field_ = next((x for x in reversed(key) if isinstance(x, str)), "value")
            value = e.get("input")
            shown = self.text_of(span) or str(value)
            if field_ == "site":
                choices = SITE_KINDS
                guess = did_you_mean(str(value), choices)
                self.emit(
                    "E401",
                    f"invalid site `{shown}`",
                    span,
                    label="not a site",
                    help=f"did you mean `{guess}`?" if guess else None,
                    notes=["sites are " + ", ".join(f"`{c}`" for c in choices)],
                    fix=Edit(span, guess) if guess and span else None,
                )
            elif field_ == "tokens":
                choices = ("all", "cls", "patches")
                guess = did_you_mean(str(value), choices)
                self.emit(
                    "E401",
                    f"invalid token scope `{shown}`",
                    span,
                    label="not a token scope",
                    help=f"did you mean `{guess}`?" if guess else None,
                    notes=["token scopes are `all`, `cls`, `patches` or a list such as `[0, 3]`"],
                    fix=Edit(span, guess) if guess and span else None,
                )
            else:
                msg = str(e.get("msg", "invalid value"))
                msg = msg[0].lower() + msg[1:] if msg else "invalid value"
                self.emit(
                    "E401",
                    f"invalid `{field_}`: {msg.rstrip('.')}",
                    span,
                    label="rejected by the Recipe IR",
                    notes=[f"IR field: {'.'.join(str(x) for x in loc)}"],
                )


_IR_FIELDS = {
    "rules",
    "scope",
    "site",
    "tokens",
    "layers",
    "action",
    "selector",
    "params",
    "concepts",
    "task",
    "settings",
    "saes",
    "value",
    "k",
    "by",
    "where",
    "ids",
}


# ------------------------------------------------------------------ module helpers


def _literal_ir(e: ast.Num | ast.Str | ast.Bool) -> tuple[dict, str]:
    """A literal's IR node and type: the same in concept definitions and rule predicates."""
    if isinstance(e, ast.Num):
        return {"kind": "num", "value": float(e.value)}, "num"
    if isinstance(e, ast.Str):
        return {"kind": "str", "value": e.value}, "str"
    return {"kind": "bool", "value": e.value}, "bool"


def _contradiction(
    bounds: list[tuple[str, str, str, Any, ast.Binary] | None],
) -> tuple[int, int] | None:
    """Index (j, i) of a bound j that contradicts an earlier bound i, if any (`None` entries
    are conjuncts that constrain no statistic). Each statistic's allowed interval (or string
    value) only narrows, in order."""
    from steerlang.plan import STAT_RANGES

    state: dict[str, list] = {}
    for j, b in enumerate(bounds):
        if b is None:
            continue
        fn, key, op, value, _ = b
        if isinstance(value, str):
            if op != "==":
                continue
            prev = state.get(key)
            if prev and prev[0] == "str" and prev[1] != value:
                return j, prev[2]
            state.setdefault(key, ["str", value, j])
            continue
        st = state.get(key)
        if st is None:
            rng = STAT_RANGES.get(fn)
            lo, hi = rng if rng else (-math.inf, math.inf)
            st = state[key] = ["num", lo, True, hi, True, []]
        if st[0] != "num":
            continue
        _, lo, lo_in, hi, hi_in, who = st
        if op in (">", ">="):
            if value > lo or (value == lo and op == ">"):
                lo, lo_in = value, op == ">="
        elif op in ("<", "<="):
            if value < hi or (value == hi and op == "<"):
                hi, hi_in = value, op == "<="
        elif op == "==":
            if value > lo or (value == lo):
                lo, lo_in = value, lo_in if value == lo else True
            if value < hi or value == hi:
                hi, hi_in = value, hi_in if value == hi else True
        else:
            continue
        who = [*who, j]
        state[key] = ["num", lo, lo_in, hi, hi_in, who]
        if lo > hi or (lo == hi and not (lo_in and hi_in)):
            earlier = [i for i in who if i != j]
            return j, earlier[-1] if earlier else j
    return None


def _disjoint_facts(a: tuple, b: tuple, memo: dict[tuple, bool]) -> bool:
    """No feature can satisfy both selectors (facts from `Compiler._selector_facts`).

    Rules of a large recipe repeat a few condition shapes, so the verdict is memoised on the
    pair of bound lists (a bound's syntax node never changes the verdict)."""
    if a[0] is not None and b[0] is not None:
        return not (a[0] & b[0])
    if a[1] is None or b[1] is None:
        return False
    key = (a[2], b[2])
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = _contradiction(a[1] + b[1]) is not None
    return hit


def _flatten(e: ast.Expr, op: str) -> list[ast.Expr]:
    if isinstance(e, ast.Binary) and e.op == op:
        return _flatten(e.left, op) + _flatten(e.right, op)
    return [e]


def _same_edit(a: dict, b: dict) -> bool:
    """Two rules write the same edit (op, value, token scope) to any feature they share."""
    return a["action"] == b["action"] and a["scope"].get("tokens") == b["scope"].get("tokens")


def _where_of(sel: Any) -> ast.Expr | None:
    if isinstance(sel, ast.WhereSel):
        return sel.where
    if isinstance(sel, ast.TopSel):
        return sel.where
    return None


def _ptype(t: str) -> str:
    return {"int": "num", "float": "num", "str": "str", "bool": "bool"}.get(t, "?")


def _type_phrase(t: str) -> str:
    return {
        "int": "a whole number",
        "float": "a number",
        "bool": "`true` or `false`",
        "str": "a string",
        "word": "a bare word",
    }.get(t, t)


def _example(t: str) -> str:
    return {"int": "10", "float": "0.25", "bool": "true", "str": "text"}.get(t, "…")


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def _render_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _fmt(v)


def _call_help(fn: str, concepts: dict) -> str:
    example = next(iter(concepts), "water")
    return {
        "corr": f"write `corr({example})`",
        "mean": f"write `mean()`, `mean({example})` or `mean(not {example})`",
        "promotes": 'write `promotes("word")`',
    }.get(fn, f"write `{fn}()`")


def _parse_override(raw: str, t: str) -> tuple[Any, str | None]:
    s = raw.strip()
    if t == "int":
        try:
            return int(s), None
        except ValueError:
            return None, f"`{raw}` is not a whole number"
    if t == "float":
        try:
            v = float(s)
        except ValueError:
            return None, f"`{raw}` is not a number"
        if not math.isfinite(v):
            return None, f"`{raw}` is not a finite number"
        return v, None
    if t == "bool":
        low = s.lower()
        if low in ("true", "1", "yes", "on"):
            return True, None
        if low in ("false", "0", "no", "off"):
            return False, None
        return None, f"`{raw}` is not `true` or `false`"
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = s[1:-1]
    return s, None
