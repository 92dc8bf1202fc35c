"""Passes: what the recipe declares (one-off statements, params, concepts, settings, rule
names), the model and dataset the rest is checked against, and `--param` overrides.

Names declared by statements with syntax errors are still known, so their uses do not
cascade into "unknown name" errors.
"""

from __future__ import annotations

import math

from steerlang.diagnostics import SourceSpan
from steerlang.errors import did_you_mean
from steerlang.lang import ast, limits
from steerlang.lang.compiler.settings import check_setting
from steerlang.lang.compiler.state import CompileState, Concept, Origin, Param
from steerlang.lang.compiler.values import literal, type_phrase
from steerlang.lang.known import ATTACK_COLUMNS, dataset_columns, model_depth
from steerlang.lang.lexer import KEYWORDS

# Statements a recipe has at most one of, and the word that starts each.
_SINGLE_WORDS: dict[type, str] = {
    ast.RecipeDecl: "recipe",
    ast.ModelDecl: "model",
    ast.DatasetDecl: "dataset",
    ast.TaskDecl: "task",
    ast.GroupsDecl: "groups",
}


def limit_nesting(st: CompileState) -> None:
    """E213: an expression nested beyond `ast.MAX_DEPTH` is reported once and its statement
    skipped (later passes recurse over expressions)."""
    for item in st.items:
        s = item.stmt
        if s.broken:
            continue
        for e in ast.stmt_exprs(s):
            if ast.expr_depth(e) > ast.MAX_DEPTH:
                st.emit(
                    "E213",
                    f"expression is nested more than {ast.MAX_DEPTH} levels deep",
                    e.span,
                    label="too deeply nested",
                    help="split the condition into simpler parts or several rules",
                )
                s.broken = True
                st.syntax_errors = True
                break


def declare(st: CompileState) -> None:
    """Collect declarations in order; report duplicates and reserved words."""
    setting_spans: dict[str, SourceSpan | None] = {}
    rule_names: dict[str, SourceSpan | None] = {}
    too_many = False  # E117 reported
    for item in st.items:
        s = item.stmt
        word = _SINGLE_WORDS.get(type(s))
        if word is not None:
            _declare_single(st, s, word)
        elif isinstance(s, ast.ParamDecl):
            _declare_param(st, s, item.origin)
        elif isinstance(s, ast.ConceptDecl):
            _declare_concept(st, s, item.origin)
        elif isinstance(s, ast.SetDecl) and not s.broken:
            check_setting(st, s, setting_spans)
        elif isinstance(s, ast.RuleDecl):
            index = len(st.rules)
            if index >= limits.MAX_RULES and not too_many:
                too_many = True
                st.emit(
                    "E117",
                    f"more than {limits.MAX_RULES:,} rules",
                    s.span,
                    label="this rule and the ones after it are not checked",
                    help="split the recipe into several recipes",
                )
            if index >= limits.MAX_RULES:
                s.broken = True
                continue
            st.rules.append((index, s))
            if s.name is not None and not s.broken:
                _declare_rule_name(st, s.name, rule_names)
    for index, s in st.rules:
        auto = f"rule_{index + 1}"
        if s.name is None and auto in rule_names:
            st.emit(
                "E108",
                f"rule name `{auto}` clashes with an unnamed rule",
                rule_names[auto],
                label=f"the {_ordinal(index + 1)} rule is called `{auto}`",
                help="choose a name that does not look like `rule_N`",
                notes=["unnamed rules are called rule_1, rule_2, ... by position"],
            )


def resolve_context(st: CompileState) -> None:
    """The model's depth and the dataset's columns (attacked-copy columns too when statistics
    see attacked images): the bound dataset's own columns when the caller passes them
    (`CompileOptions.dataset_columns`), else the built-in ones of the dataset's name."""
    model_stmt = st.singles.get("model")
    if isinstance(model_stmt, ast.ModelDecl) and not model_stmt.broken:
        st.model_ref = model_stmt.ref.value
    override = st.options.n_layers
    st.n_layers = override if override is not None else model_depth(st.model_ref)
    ds_stmt = st.singles.get("dataset")
    if isinstance(ds_stmt, ast.DatasetDecl) and not ds_stmt.broken:
        st.dataset = ds_stmt.ref.value
    bound = st.options.dataset_columns
    found = bound(st.dataset) if bound is not None and st.dataset is not None else None
    st.columns = tuple(found) if found is not None else dataset_columns(st.dataset)
    if st.columns is not None and st.settings.get("stats_images", "clean") != "clean":
        st.columns = (*st.columns, *ATTACK_COLUMNS)


def apply_overrides(st: CompileState) -> None:
    """`--param NAME=VALUE`: each must name a declared param and fit its type."""
    for name, raw_value in st.options.params.items():
        raw = str(raw_value)
        p = st.params.get(name)
        if p is None:
            guess = did_you_mean(name, list(st.params))
            st.emit(
                "E103",
                f"unknown param `{name}` in `--param {name}={raw}`",
                None,
                help=f"did you mean `{guess}`?"
                if guess
                else (
                    "declared params: " + ", ".join(f"`{n}`" for n in st.params)
                    if st.params
                    else "declare it in the recipe with `param NAME = value` first"
                ),
            )
            continue
        if p.type == "?":
            continue
        value, err = _parse_override(raw, p.type)
        if err is not None:
            span = p.decl.value.span if p.decl is not None else p.span
            st.emit(
                "E209",
                f"`--param {name}={raw}`: {err}",
                span,
                label=f"`{name}` is declared as {type_phrase(p.type)} here",
                help=f"pass {type_phrase(p.type)}, e.g. `--param {name}={_example(p.type)}`",
            )
            continue
        p.value = value


# ------------------------------------------------------------------ one-off statements and rules


def _declare_single(st: CompileState, s: ast.Stmt, word: str) -> None:
    if word in st.singles:
        if not s.broken:
            st.emit(
                "E111",
                f"`{word}` is declared twice",
                _first_token(st, s),
                label=f"second `{word}`",
                help=f"keep one `{word}` line",
                secondary=[(_first_token(st, st.singles[word]), "first declared here")],
            )
        return
    st.singles[word] = s
    if isinstance(s, ast.RecipeDecl) and not s.broken:
        check_reserved(st, s.name, "recipe")


def _declare_rule_name(
    st: CompileState, ident: ast.Ident, rule_names: dict[str, SourceSpan | None]
) -> None:
    check_reserved(st, ident, "rule")
    nm = ident.name
    if nm in rule_names:
        st.emit(
            "E108",
            f"rule `{nm}` is defined twice",
            ident.span,
            label="second rule with this name",
            help="give each rule its own name",
            secondary=[(rule_names[nm], "first defined here")] if rule_names[nm] else [],
        )
    else:
        rule_names[nm] = ident.span


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _first_token(st: CompileState, s: ast.Stmt) -> SourceSpan | None:
    """The span of a statement's first word (`model`, `task`, ...)."""
    if s.span is None:
        return None
    text = st.text_of(s.span)
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


def check_reserved(st: CompileState, ident: ast.Ident, what: str) -> bool:
    """E110 when a declared name is a keyword."""
    if ident.name in KEYWORDS:
        st.emit(
            "E110",
            f"`{ident.name}` is a reserved word",
            ident.span,
            label=f"cannot name a {what}",
            help=f"choose another name, e.g. `{ident.name}_{what}`",
            notes=["keywords are reserved everywhere; the list is in docs/language.md"],
        )
        return True
    return False


# ------------------------------------------------------------------ params and concepts


def _declare_name(st: CompileState, ident: ast.Ident, what: str) -> bool:
    """Params and concepts share one namespace; False (after E109) for a duplicate."""
    name = ident.name
    prev = st.params.get(name) or st.concepts.get(name)
    if prev is not None:
        kind = "param" if name in st.params else "concept"
        st.emit(
            "E109",
            f"`{name}` is already defined",
            ident.span,
            label=f"second definition (as a {what})",
            help=f"rename or delete one of the two definitions of `{name}`",
            secondary=[(prev.span, f"first defined here (as a {kind})")] if prev.span else [],
        )
        return False
    return True


def _declare_param(st: CompileState, s: ast.ParamDecl, origin: Origin) -> None:
    if not s.broken:
        check_reserved(st, s.name, "param")  # still declared: uses must not cascade
    if not _declare_name(st, s.name, "param"):
        return
    lit = None if s.broken else literal(s.value)
    if lit is None or lit[0] == "word":
        st.params[s.name.name] = Param(s, "?", None, s.name.span, origin=origin)
        return
    t, v = lit
    if t == "float" and not math.isfinite(v):
        st.emit(
            "E204",
            "number is too large",
            s.value.span,
            label="not a finite number",
            help="use a smaller number",
        )
        st.params[s.name.name] = Param(s, "?", None, s.name.span, origin=origin)
        return
    st.params[s.name.name] = Param(s, t, v, s.name.span, origin=origin)


def _declare_concept(st: CompileState, s: ast.ConceptDecl, origin: Origin) -> None:
    if not s.broken:
        check_reserved(st, s.name, "concept")
    if not _declare_name(st, s.name, "concept"):
        return
    st.concepts[s.name.name] = Concept(
        None if s.broken else s, s.name.span, state="done" if s.broken else "new", origin=origin
    )


# ------------------------------------------------------------------ overrides


def _example(t: str) -> str:
    return {"int": "10", "float": "0.25", "bool": "true", "str": "text"}.get(t, "…")


def _parse_override(raw: str, t: str) -> tuple[object, str | None]:
    """The value of `--param NAME=raw` for a param of type `t`, or an error in words."""
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
