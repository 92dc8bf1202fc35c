"""Hypothesis strategies that build recipe syntax trees (not text), so properties can compare
trees: generated tree -> canonical text -> parsed tree."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from steerlang.lang import ast
from steerlang.lang.lexer import KEYWORDS
from steerlang.lang.printer import show_stmt


def show_recipe(r: ast.Recipe) -> str:
    """A file with no comments or blank lines (the printer half of the round-trip property)."""
    lines = [show_stmt(r.header if r.header is not None else ast.Header(1))]
    lines.extend(show_stmt(s) for s in r.statements)
    return "\n".join(lines) + "\n"


# Names that look like keywords, statistics, sites and columns but are ordinary names.
NEAR_KEYWORDS = [
    "notx",
    "and_",
    "or1",
    "top_k",
    "features2",
    "layer_",
    "at0",
    "nota",
    "truex",
    "all",
    "cls",
    "patches",
    "default",
    "corr",
    "mean",
    "freq",
    "max",
    "id",
    "y",
    "place",
    "Blond_Hair",
    "water",
    "thr",
    "k",
    "_",
    "mean_ablate",
]
_FRESH = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)
NAMES = st.one_of(st.sampled_from(NEAR_KEYWORDS), _FRESH).filter(lambda n: n not in KEYWORDS)
NAMES_WITH_KEYWORDS = st.one_of(NAMES, st.sampled_from(sorted(KEYWORDS - {"mean-ablate"})))

STRINGS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),
    max_size=12,
)
FUNCS = (
    st.sampled_from(
        [
            "corr",
            "mean",
            "freq",
            "max",
            "steerability",
            "promotes",
            "top_concept",
            "id",
            "abs",
            "min",
            "log",
            "quantile",
            "rank",
        ]
    )
    | NAMES
)
NUMBERS = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(lambda v: ast.Num(v)),
    st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False)
    .filter(lambda v: str(v)[0] != "-")
    .map(lambda v: ast.Num(v)),
)
BINARY_OPS = st.sampled_from(["or", "and", "<", "<=", ">", ">=", "==", "!=", "+", "-", "*", "/"])


def exprs(names: st.SearchStrategy[str] = NAMES) -> st.SearchStrategy[ast.Expr]:
    base = st.one_of(
        NUMBERS,
        STRINGS.map(ast.Str),
        st.booleans().map(ast.Bool),
        names.map(ast.Name),
    )

    def extend(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
        return st.one_of(
            st.builds(ast.Unary, st.sampled_from(["-", "not"]), children),
            st.builds(ast.Binary, BINARY_OPS, children, children),
            st.builds(ast.Call, FUNCS, st.lists(children, max_size=2)),
        )

    return st.recursive(base, extend, max_leaves=12)


# A bound is a whole number or an int param's name (`at layer L`, `layers 0..last`).
INT_BOUNDS = st.integers(min_value=0, max_value=10**6) | NAMES.map(ast.Name)
INT_ITEMS = st.builds(ast.IntItem, INT_BOUNDS, st.none() | INT_BOUNDS)


def _idents(names: st.SearchStrategy[str]) -> st.SearchStrategy[ast.Ident]:
    return names.map(ast.Ident)


def _value(names: st.SearchStrategy[str]) -> st.SearchStrategy[ast.Expr]:
    return st.one_of(
        NUMBERS,
        NUMBERS.map(lambda n: ast.Unary("-", n)),
        names.map(ast.Name),
        # a per-feature target: `to mean(c)`, `to mean(not c)`, `to mean()`
        st.builds(ast.Call, FUNCS, st.lists(exprs(names), max_size=1)),
    )


def selectors(names: st.SearchStrategy[str] = NAMES) -> st.SearchStrategy:
    e = exprs(names)
    return st.one_of(
        st.builds(ast.WhereSel, e),
        st.builds(
            ast.TopSel,
            st.sampled_from(["desc", "asc"]),
            st.one_of(st.integers(0, 10**6).map(ast.Num), names.map(ast.Name)),
            e,
            st.none() | e,
        ),
        st.builds(ast.IdsSel, st.lists(INT_ITEMS, min_size=1, max_size=4)),
        st.builds(
            ast.RandomSel,
            st.one_of(st.integers(0, 10**6).map(ast.Num), names.map(ast.Name)),
            st.none() | e,
        ),
    )


@st.composite
def actions(draw: st.DrawFn, names: st.SearchStrategy[str] = NAMES) -> ast.Action:
    op = draw(st.sampled_from(["suppress", "clamp", "scale", "add", "mean_ablate"]))
    sel = draw(selectors(names))
    value = draw(_value(names)) if op in ("clamp", "scale", "add") else None
    word = draw(st.sampled_from(["clamp", "set"])) if op == "clamp" else ""
    return ast.Action(op, sel, value, word=word)


def scopes(names: st.SearchStrategy[str] = NAMES) -> st.SearchStrategy[ast.Scope]:
    mod = st.one_of(
        st.builds(ast.SiteMod, _idents(names)),
        st.builds(ast.TokensMod, _idents(names), st.none()),
        st.builds(ast.TokensMod, st.none(), st.lists(INT_ITEMS, min_size=1, max_size=3)),
    )
    return st.builds(
        ast.Scope, st.lists(INT_ITEMS, min_size=1, max_size=3), st.lists(mod, max_size=2)
    )


def statements(names: st.SearchStrategy[str] = NAMES) -> st.SearchStrategy[ast.Stmt]:
    strs = STRINGS.map(ast.Str)
    lit = st.one_of(
        NUMBERS, NUMBERS.map(lambda n: ast.Unary("-", n)), strs, st.booleans().map(ast.Bool)
    )
    return st.one_of(
        st.builds(ast.RecipeDecl, _idents(names), st.none() | strs),
        st.builds(ast.ModelDecl, strs),
        st.builds(ast.DatasetDecl, strs),
        st.builds(
            ast.TaskDecl,
            _idents(names),
            st.lists(strs, min_size=1, max_size=3),
            st.lists(strs, max_size=2),
        ),
        st.builds(ast.GroupsDecl, st.lists(_idents(names), min_size=1, max_size=3)),
        st.builds(ast.ConceptDecl, _idents(names), exprs(names)),
        st.builds(ast.ParamDecl, _idents(names), lit),
        st.builds(ast.SetDecl, _idents(names), lit),
        st.builds(ast.IncludeDecl, strs),
        st.builds(
            ast.SaeDecl,
            st.lists(INT_ITEMS, min_size=1, max_size=3),
            st.none() | _idents(names),
            strs,
        ),
        st.builds(ast.RuleDecl, st.none() | _idents(names), scopes(names), actions(names)),
    )


def recipes(names: st.SearchStrategy[str] = NAMES) -> st.SearchStrategy[ast.Recipe]:
    return st.builds(
        ast.Recipe,
        st.none(),
        st.builds(ast.Header, st.integers(0, 10**6)),
        st.lists(statements(names), max_size=6),
    )


# ---- well-scoped recipes: every used name is declared (for the keyword-collision property)


@st.composite
def scoped_recipes(draw: st.DrawFn, names: st.SearchStrategy[str] = NAMES_WITH_KEYWORDS) -> str:
    """Canonical text of a recipe whose rules use only declared params and concepts."""
    pnames = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    cnames = draw(
        st.lists(names.filter(lambda n: n not in pnames), min_size=1, max_size=3, unique=True)
    )
    stmts: list[ast.Stmt] = []
    for p in pnames:
        stmts.append(
            ast.ParamDecl(ast.Ident(p), ast.Num(draw(st.floats(0, 1).map(lambda v: round(v, 3)))))
        )
    for c in cnames:
        stmts.append(
            ast.ConceptDecl(
                ast.Ident(c), ast.Binary("==", ast.Name("place"), ast.Num(draw(st.integers(0, 1))))
            )
        )
    base_stat = st.one_of(
        st.sampled_from(cnames).map(lambda c: ast.Call("corr", [ast.Name(c)])),
        st.sampled_from(cnames).map(lambda c: ast.Call("corr", [ast.Unary("not", ast.Name(c))])),
        st.sampled_from(cnames).map(lambda c: ast.Call("mean", [ast.Unary("not", ast.Name(c))])),
        st.just(ast.Call("freq", [])),
    )
    level = st.floats(0, 1).map(lambda v: ast.Num(round(v, 2)))
    stat = st.one_of(
        base_stat,
        base_stat.map(lambda s: ast.Call("abs", [s])),
        base_stat.map(lambda s: ast.Call("log", [s])),
        base_stat.map(lambda s: ast.Call("rank", [s])),
        st.builds(lambda a, b: ast.Call("min", [a, b]), base_stat, base_stat),
        st.builds(lambda a, b: ast.Call("max", [a, b]), base_stat, base_stat),
        st.builds(lambda a, q: ast.Call("quantile", [a, q]), base_stat, level),
    )
    target = st.one_of(
        st.just(ast.Call("mean", [])),
        st.just(ast.Call("max", [])),
        st.sampled_from(cnames).map(lambda c: ast.Call("mean", [ast.Name(c)])),
        st.sampled_from(cnames).map(lambda c: ast.Call("mean", [ast.Unary("not", ast.Name(c))])),
    )
    threshold = st.one_of(
        st.sampled_from(pnames).map(ast.Name),
        st.floats(0, 1).map(lambda v: ast.Num(round(v, 2))),
    )
    cmp = st.builds(ast.Binary, st.sampled_from([">", "<", ">=", "<="]), stat, threshold)
    pred = st.recursive(
        cmp,
        lambda c: st.one_of(
            st.builds(ast.Binary, st.sampled_from(["and", "or"]), c, c),
            st.builds(ast.Unary, st.just("not"), c),
        ),
        max_leaves=4,
    )
    for i in range(draw(st.integers(1, 3))):
        rule_name = draw(st.none() | names)
        kind = draw(st.sampled_from(["where", "random", "target"]))
        if kind == "random":
            k = draw(st.integers(1, 50).map(ast.Num))
            action = ast.Action("suppress", ast.RandomSel(k, draw(pred)))
        elif kind == "target":
            action = ast.Action("clamp", ast.WhereSel(draw(pred)), draw(target), word="clamp")
        else:
            action = ast.Action("suppress", ast.WhereSel(draw(pred)))
        stmts.append(
            ast.RuleDecl(
                ast.Ident(f"{rule_name}") if rule_name else None,
                ast.Scope([ast.IntItem(i)], []),
                action,
            )
        )
    return show_recipe(ast.Recipe(None, ast.Header(1), stmts))


TEXT_ALPHABET = string.ascii_letters + string.digits + ' _"#().,:=<>!+-*/[]\n\t\\&@{}'


# ---- settings profiles
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

PROFILE = os.environ.get("STEER_HYPOTHESIS_PROFILE", "ci")

CI = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
FUZZ = settings(
    max_examples=100_000,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


NIGHTLY = settings(FUZZ, max_examples=5_000)


def lang_settings(ci_examples: int | None = None) -> settings:
    """Settings for one property: the CI profile (optionally fewer examples), `nightly`
    (5,000 examples) or `fuzz` (100,000)."""
    if PROFILE == "fuzz":
        return FUZZ
    if PROFILE == "nightly":
        return NIGHTLY
    if ci_examples is not None:
        return settings(CI, max_examples=ci_examples)
    return CI
