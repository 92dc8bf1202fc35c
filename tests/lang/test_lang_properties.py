"""Property tests of the language front end (Hypothesis).

CI runs each property with a small, derandomised example budget; the fuzz profile
(`STEER_HYPOTHESIS_PROFILE=fuzz python -m pytest -m fuzzing tests/lang`) runs 100,000 examples
per property.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lang_strategies import (
    TEXT_ALPHABET,
    exprs,
    lang_settings,
    recipes,
    scoped_recipes,
    show_recipe,
)

from steerlang.lang import ast, parser
from steerlang.lang.api import FormatError, compile_text, format_text, parse_text
from steerlang.lang.completion import accepted_at
from steerlang.lang.fast_parse import fast_parse
from steerlang.lang.lexer import KEYWORDS
from steerlang.lang.printer import show_expr
from steerlang.lang.tree import TreeBuilder
from steerlang.plan import RecipeIR

REPO = Path(__file__).resolve().parents[2]
SEEDS = [p.read_text() for p in sorted((REPO / "recipes").glob("*.steer"))] + [
    p.read_text() for p in sorted((REPO / "tests/lang/bad").glob("*.steer"))
]


def _reparse(text: str) -> ast.Recipe:
    recipe, diags = parse_text(text)
    assert diags == [], (text, [d.message for d in diags])
    return recipe


# ---- 1. tree -> text -> tree -------------------------------------------------------------


@lang_settings()
@given(recipes())
def test_print_parse_round_trip(tree: ast.Recipe) -> None:
    text = show_recipe(tree)
    again = _reparse(text)
    assert again.header == tree.header
    assert again.statements == tree.statements


@lang_settings()
@given(exprs())
def test_expression_round_trip_with_minimal_parentheses(e: ast.Expr) -> None:
    text = f"steer 1\nconcept c = {show_expr(e)}\n"
    (decl,) = _reparse(text).statements
    assert decl.expr == e


@lang_settings()
@given(recipes())
def test_fast_parser_equals_lark_parser(tree: ast.Recipe) -> None:
    text = show_recipe(tree) + "\n"
    with parser.parsing(None) as lark_parser:
        fast = fast_parse(text, lark_parser)
    assert fast is not None
    assert fast == _strict_parser().parse(text)


_STRICT = None


def _strict_parser():
    global _STRICT
    if _STRICT is None:
        _STRICT = parser.build_parser(
            strict=True, lexer="contextual", cache=False, transformer=TreeBuilder(None)
        )
    return _STRICT


# ---- 2. names mixed with keywords ----------------------------------------------------------


@lang_settings(ci_examples=80)
@given(scoped_recipes())
def test_keywords_as_names_are_rejected_never_reinterpreted(text: str) -> None:
    res = compile_text(text)
    recipe, diags = parse_text(text)
    declared = [
        s.name.name
        for s in recipe.statements
        if isinstance(s, ast.ParamDecl | ast.ConceptDecl | ast.RuleDecl) and s.name is not None
    ]
    if any(n in KEYWORDS for n in declared):
        assert not res.ok
        codes = {d.code for d in res.diagnostics}
        assert "E110" in codes or any(c.startswith("E0") for c in codes)
    if res.ok:
        assert diags == []
        assert show_recipe(recipe) == text  # the text means exactly what was generated


# ---- 3. formatting -------------------------------------------------------------------------


@st.composite
def commented_texts(draw: st.DrawFn) -> str:
    tree = draw(recipes())
    lines = show_recipe(tree).split("\n")[:-1]
    out = []
    for line in lines:
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(["", "   ", "\t"])) + "# " + draw(_comment_text))
        if draw(st.integers(0, 3)) == 0:
            out.append("")
        sep = draw(st.sampled_from([" ", "  ", "\t", "    "]))
        body = line.replace(" ", sep) if draw(st.booleans()) and '"' not in line else line
        if draw(st.booleans()):
            body += draw(st.sampled_from(["  ", " ", "\t"])) + "#" + draw(_comment_text)
        out.append(body)
    return "\n".join(out) + draw(st.sampled_from(["", "\n", "\n\n"]))


_comment_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
    max_size=15,
)


@lang_settings(ci_examples=60)
@given(commented_texts())
def test_fmt_is_idempotent_and_keeps_comments(text: str) -> None:
    out = format_text(text)
    assert format_text(out) == out
    before = [c.text for c in parse_text(text)[0].comments]
    after = [c.text for c in parse_text(out)[0].comments]
    assert after == before
    assert _reparse(out).statements == _reparse(text).statements


# ---- 4. IR JSON round trip ------------------------------------------------------------------


@lang_settings(ci_examples=80)
@given(scoped_recipes())
def test_ir_json_round_trip(text: str) -> None:
    res = compile_text(text)
    if res.ir is not None:
        assert RecipeIR.model_validate_json(res.ir.model_dump_json()) == res.ir


# ---- 5. any text gives diagnostics, never an exception ---------------------------------------


def _check_never_raises(text: str) -> None:
    res = compile_text(text, "fuzz.steer")
    assert all(d.code != "E499" for d in res.diagnostics), res.render()
    assert (res.ir is None) == (not res.ok)
    for d in res.diagnostics:
        if d.span is not None:
            assert 0 <= d.span.start <= d.span.end <= len(text) + 1
    try:
        format_text(text)
    except FormatError as e:
        assert all(d.code != "E499" for d in e.diagnostics)
    accepted_at(text, len(text) // 2)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 4))):
        i = rnd.randrange(len(text) + 1)
        j = min(len(text), i + rnd.randrange(12))
        kind = rnd.randrange(4)
        if kind == 0:
            text = text[:i] + text[j:]
        elif kind == 1:
            text = (
                text[:i]
                + "".join(rnd.choice(TEXT_ALPHABET) for _ in range(rnd.randrange(1, 6)))
                + text[i:]
            )
        elif kind == 2:
            text = text[:i] + rnd.choice(sorted(KEYWORDS)) + " " + text[i:]
        else:
            text = text[:i] + text[i:j] + text[i:j] + text[j:]
    return text


@lang_settings()
@given(mutated())
def test_mutated_recipes_give_diagnostics_never_exceptions(text: str) -> None:
    _check_never_raises(text)


@lang_settings()
@given(st.text(alphabet=TEXT_ALPHABET, max_size=120) | st.text(max_size=60))
def test_random_text_gives_diagnostics_never_exceptions(text: str) -> None:
    _check_never_raises(text)
    _check_never_raises("steer 1\n" + text)


def test_deep_nesting_is_a_diagnostic() -> None:
    for depth in (101, 5000):
        text = "steer 1\nat layer 1 suppress features where " + "not " * depth + "freq() > 0\n"
        res = compile_text(text)
        assert [d.code for d in res.diagnostics] == ["E213"], res.render()
        with pytest.raises(FormatError) as err:
            format_text(text)
        assert [d.code for d in err.value.diagnostics] == ["E213"]
    ok = "steer 1\nat layer 1 suppress features where " + "not " * 90 + "freq() > 0\n"
    assert compile_text(ok).ok and format_text(ok) == ok


# ---- the long runs -----------------------------------------------------------------------------


@pytest.mark.fuzzing
@lang_settings()
@given(mutated() | st.text(alphabet=TEXT_ALPHABET, max_size=300))
def test_fuzz_compile_never_raises(text: str) -> None:
    _check_never_raises(text)


@pytest.mark.fuzzing
@lang_settings()
@given(recipes())
def test_fuzz_round_trip(tree: ast.Recipe) -> None:
    text = show_recipe(tree)
    assert _reparse(text).statements == tree.statements
    assert format_text(text) == text
