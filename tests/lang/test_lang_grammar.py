"""The grammar: LALR-clean under strict mode, named terminals, keywords, and the design sketch."""

from __future__ import annotations

import re

import pytest

from steerlang.lang import ast, lexer, parser
from steerlang.lang.api import compile_text, parse_text
from steerlang.lang.completion import accepted_at
from steerlang.lang.fast_parse import fast_parse
from steerlang.lang.tree import TreeBuilder

SKETCH = """steer 1
recipe waterbirds "remove the background shortcut"

model default                     # or e.g. "openclip:ViT-B-32@datacomp_xl_s13b_b90k"
dataset waterbirds
task classify y as ["landbird", "waterbird"] prompt "a photo of a {}."
groups y, place
concept water = place == 1
param thr = 0.3

at layer 7 suppress features where corr(water) > thr
at layers 5..8 tokens patches scale top 10 features by corr(water) by 0.5
at layer 11 clamp feature 1234 to 20
rule text_defense: at layer 9 suppress features where promotes("text") > 0.1
"""


@pytest.fixture(scope="module")
def strict_parser():
    """Lark's own contextual lexer over the grammar's terminals, strict mode, no cache."""
    return parser.build_parser(
        strict=True, lexer="contextual", cache=False, transformer=TreeBuilder(None)
    )


def test_grammar_is_clean_under_strict(strict_parser) -> None:
    # build_parser raised otherwise (shift/reduce conflicts and regex collisions are errors)
    assert strict_parser.options.strict
    assert strict_parser.options.parser == "lalr"


def test_every_terminal_has_a_description(strict_parser) -> None:
    names = {t.name for t in strict_parser.terminals} | {"$END"}
    assert not [n for n in names if n.startswith("__ANON")], "unnamed terminal in the grammar"
    assert names == set(lexer.TERMINAL_DESCRIPTIONS)
    for name, words in lexer.TERMINAL_DESCRIPTIONS.items():
        assert words and name not in words or name in ("NAME",), (name, words)


def test_keyword_table_matches_grammar(strict_parser) -> None:
    kws = {}
    for t in strict_parser.terminals:
        m = re.fullmatch(r"([a-z-]+)\(\?!\[A-Za-z0-9_\]\)", t.pattern.value)
        if m:
            kws[t.name] = m.group(1)
            assert t.priority == 2, t.name
    assert kws == lexer.KEYWORD_TERMINALS
    assert lexer.KEYWORDS == frozenset(kws.values())


def test_sketch_parses_and_compiles() -> None:
    recipe, diags = parse_text(SKETCH, "sketch.steer")
    assert diags == []
    assert len(recipe.statements) == 11
    res = compile_text(SKETCH, "sketch.steer")
    assert res.ok, res.render()
    ir = res.ir
    assert [r.name for r in ir.rules] == ["rule_1", "rule_2", "rule_3", "text_defense"]
    r2 = ir.rules[1]
    assert r2.scope.layers == [5, 6, 7, 8] and r2.scope.tokens == "patches"
    assert r2.action.op == "scale" and r2.action.value.value == 0.5
    assert r2.selector.kind == "top" and r2.selector.k == 10
    assert r2.selector.by.fn == "corr" and r2.selector.by.concept == "water"
    r3 = ir.rules[2]
    assert r3.selector.ids == [1234] and r3.action.op == "clamp" and r3.action.value.value == 20
    r4 = ir.rules[3]
    assert r4.selector.where.left.fn == "promotes" and r4.selector.where.left.word == "text"
    assert ir.task.prompts == ["a photo of a {}."]
    assert ir.concepts["water"].expr.left.name == "place"
    # The sketch itself overlaps at layer 7 (rule 2 may override rule 1): check says so.
    assert [d.code for d in res.diagnostics] == ["W303"]


def test_users_line_parses_exactly() -> None:
    line = "at layer 7 suppress features where corr(blond) > 0.3"
    recipe, diags = parse_text(f"steer 1\n{line}\n")
    assert diags == []
    (rule,) = recipe.statements
    want = ast.RuleDecl(
        None,
        ast.Scope([ast.IntItem(7)], []),
        ast.Action(
            "suppress",
            ast.WhereSel(ast.Binary(">", ast.Call("corr", [ast.Name("blond")]), ast.Num(0.3))),
        ),
    )
    assert rule == want
    assert rule.span.start == len("steer 1\n") and rule.span.end == len("steer 1\n") + len(line)
    res = compile_text(f"steer 1\ndataset celeba\nconcept blond = Blond_Hair == 1\n{line}\n")
    assert res.ok and res.diagnostics == []
    where = res.ir.rules[0].selector.where
    assert (where.op, where.left.fn, where.left.concept, where.right.value) == (
        ">",
        "corr",
        "blond",
        0.3,
    )


def test_spans_point_at_tokens() -> None:
    text = "steer 1\nparam thr = 0.3\nat layer 7 suppress features where corr(water) > thr\n"
    recipe, _ = parse_text(text)
    rule = recipe.statements[1]
    call = rule.action.selector.where.left
    assert text[call.span.start : call.span.end] == "corr(water)"
    assert text[call.func_span.start : call.func_span.end] == "corr"
    name = call.args[0]
    assert (name.span.line, name.span.column, name.span.end_column) == (3, 41, 46)


def test_not_is_reserved_and_never_a_call() -> None:
    recipe, diags = parse_text(
        "steer 1\nat layer 7 suppress features where not(corr(water) > 0.3)\n"
    )
    assert diags == []
    where = recipe.statements[0].action.selector.where
    assert isinstance(where, ast.Unary) and where.op == "not"
    # A concept called `not` is rejected where it is declared...
    res = compile_text("steer 1\nconcept not = place == 1\n")
    assert [d.code for d in res.diagnostics] == ["E110"]
    # ...so `mean(not)` cannot silently mean something else.
    res = compile_text("steer 1\nat layer 7 suppress features where mean(not) > 0.3\n")
    assert not res.ok


@pytest.mark.parametrize("word", sorted(lexer.KEYWORDS - {"mean-ablate"}))
def test_keywords_cannot_be_declared(word: str) -> None:
    for decl in (f"param {word} = 1", f"concept {word} = place == 1"):
        res = compile_text(f"steer 1\n{decl}\n")
        assert not res.ok, decl
        assert {d.code for d in res.diagnostics} <= {"E110", "E009", "E002"}, (decl, res.render())


def test_contextual_keywords_in_name_positions() -> None:
    # `and(and) > and` must not parse as a call named `and`.
    res = compile_text("steer 1\nat layer 7 suppress features where and(and) > and\n")
    assert [d.code for d in res.diagnostics] == ["E102", "E103"]
    assert all("reserved word" in (d.help or "") for d in res.diagnostics)
    # keyword-like names that are not keywords are ordinary names
    res = compile_text(
        "steer 1\nconcept notx = place == 1\nparam and_ = 0.3\n"
        "at layer 7 suppress features where corr(notx) > and_\n"
    )
    assert res.ok and res.diagnostics == [], res.render()


def test_glued_keywords_are_one_word() -> None:
    res = compile_text("steer 1\nat layer 7 suppressfeatures where freq() > 0.5\n")
    assert [d.code for d in res.diagnostics] == ["E003"]
    assert "`suppressfeatures`" in res.diagnostics[0].message


@pytest.mark.parametrize(
    "line",
    [
        "at layers 3..5, 9 site mlp_out tokens cls mean-ablate features where mean(not water) > 2",
        "at layer 2 tokens [0, 3..5] add -3 to features 1, 2, 5..9",
        "at layer 4 set feature 12 to -1.5e-3",
        "at layer 4 scale bottom 5 features by -freq() * 2 + max() / 3 where id() != 7 by 2",
        'at layer 4 suppress features where top_concept() == "text" or not steerability() < 0.2',
        "rule r: at layers 0..11 site resid_pre tokens all suppress top 1 feature by mean(water)",
        'sae at layers 0..11 site attn_out = "zoo:sae/L{layer}/{site}"',
        "set pooling = max",
        'include "other.steer"',
    ],
)
def test_language_extensions_parse(line: str) -> None:
    recipe, diags = parse_text(f"steer 1\nconcept water = place == 1\n{line}\n")
    assert diags == [], line


def test_fast_path_matches_lark_contextual_lexer(strict_parser) -> None:
    """The hand-written lexer and LALR loop give the same tree as Lark's own machinery."""
    texts = [SKETCH] + [p.read_text() for p in _recipes()]
    for text in texts:
        src = text + "\n"
        with parser.parsing(None) as lark_parser:
            fast = fast_parse(src, lark_parser)
        slow = strict_parser.parse(src)
        assert fast is not None
        assert fast == slow
        assert [s.span for s in fast.statements] == [s.span for s in slow.statements]


def _recipes():
    from pathlib import Path

    return sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.steer"))


def test_accepted_at() -> None:
    text = "steer 1\nconcept water = place == 1\nat layer 7 su"
    acc = accepted_at(text, len(text))
    assert {"SUPPRESS", "CLAMP", "SCALE", "ADD", "MEAN_ABLATE", "SET", "SITE", "TOKENS"} <= acc
    assert "NAME" not in acc
    text2 = "steer 1\nat layer 7 suppress features where "
    acc2 = accepted_at(text2, len(text2))
    assert {"NAME", "NUMBER", "NOT", "LPAR", "STRING", "TRUE", "FALSE", "MINUS"} <= acc2
    # errors on other lines do not matter; a comment under the cursor accepts nothing
    text3 = "steer 1\nat layer 7 supress\nat layer 8 "
    assert "SUPPRESS" in accepted_at(text3, len(text3))
    text4 = "steer 1\n# at layer "
    assert accepted_at(text4, len(text4)) == set()
    assert "STEER" in accepted_at("", 0)
    # a cursor at the start of a line must not swallow the previous line's last word
    assert {"AT", "RULE", "PARAM"} <= accepted_at("steer 1\n", 8)
