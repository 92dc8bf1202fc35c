"""The language server's fast paths give exactly `steer check`'s answers.

- `ParseCache` (steerlang.lang.incremental) re-parses only changed lines; over random edit
  sequences its parse and the compile built on it equal a cold parse and compile: every
  diagnostic field and span, the syntax tree with all its spans, the comments and the IR.
- The W303 overlap lint precomputes each rule's selector once and memoises pair verdicts; its
  output equals the straightforward pairwise version it replaced (kept below as the oracle).
"""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lang_strategies import lang_settings

from steerlang.lang import ast, compiler
from steerlang.lang.api import CompileResult, ParseCache, compile_text
from steerlang.lang.compiler import lints
from steerlang.lang.compiler.bounds import contradicting, flatten
from steerlang.lang.compiler.state import CompileOptions, CompileState
from steerlang.lang.parser import parse

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from lsp_latency import make_recipe  # noqa: E402

SEEDS = (
    [p.read_text(encoding="utf-8") for p in sorted((REPO / "tests/lang/bad").glob("*.steer"))]
    + [p.read_text(encoding="utf-8") for p in sorted((REPO / "recipes").glob("*.steer"))]
    + [
        make_recipe(30),
        "\n# leading comment\n\n  steer 1   # header\nat layer 1 suppress features where freq() > 0\n",
        "\ufeffsteer 1\r\nconcept water = place == 1\r\nat layer 2 clamp feature 3 to 1",
        "steer 2\nat layer 1 suppress feature 1\n",
        "",
        "at layer 1 suppress feature 1\n",
    ]
)

FRAGMENTS = [
    "\n",
    "\n\n",
    "\r\n",
    " ",
    "#",
    '"',
    "x",
    "steer 1\n",
    "steer 1",
    "at layer 7 ",
    "at layers 1..3 site mlp_out ",
    "suppress ",
    "supress ",
    "features where ",
    "corr(water) > 0.3",
    "freq() < 0.5 and ",
    " or ",
    "(",
    ")",
    "[",
    "..",
    ",",
    "=",
    "==",
    "rule r1: ",
    "rule r1: at layer 1 add 2 to feature 5\n",
    "at layer 3 clamp feature 9 to 20\n",
    "concept water = place == 1\n",
    "param thr = 0.3\n",
    "mean-ablate ",
    "top 5 features by corr(land) ",
    "not ",
    "🌊",
    "\ufeff",
    "\x0c",
    "&&",
    "at layer 1 suppress features where " + "not " * 101 + "freq() > 0\n",
    'include "missing.steer"\n',
]


def _deep(x: Any) -> Any:
    """Everything a node holds, spans and presentational fields included (`==` on syntax
    trees ignores spans on purpose; the cache must reproduce them too)."""
    if isinstance(x, list):
        return [_deep(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_deep(v) for v in x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, {k: _deep(v) for k, v in vars(x).items()})
    return x


def _snapshot(res: CompileResult) -> tuple:
    diags = [_deep(d) for d in res.diagnostics]
    ir = res.ir.model_dump() if res.ir is not None else None
    return diags, ir, _deep(res.recipe), dict(res.sources)


def _assert_same(text: str, cache: ParseCache, path: str | None = None) -> None:
    cold = parse(text, path)
    warm = cache.parse(text, path)
    assert _deep(warm.recipe) == _deep(cold.recipe), text
    assert _deep(warm.diagnostics) == _deep(cold.diagnostics), text
    assert _snapshot(compile_text(text, path, parse_cache=cache)) == _snapshot(
        compile_text(text, path)
    ), text


def _edit(text: str, fa: float, fb: float, new: str) -> str:
    a, b = sorted((round(fa * len(text)), round(fb * len(text))))
    return text[:a] + new + text[b:]


@pytest.mark.parametrize("bulk", [0, 3, 10**6])
def test_cached_parse_equals_cold_parse_on_every_seed(bulk: int) -> None:
    cache = ParseCache(bulk=bulk)
    for text in SEEDS:
        _assert_same(text, cache)
        _assert_same(text, cache)  # a second look is all hits


def test_benchmark_edits_reuse_lines_and_stay_exact() -> None:
    text = make_recipe(50)
    cache = ParseCache()
    _assert_same(text, cache, "big.steer")
    lines = text.split("\n")
    rng = random.Random(7)
    for step in range(20):
        i = rng.randrange(12, len(lines) - 1)
        kind = step % 5
        if kind == 0:  # misspell the action, as the latency benchmark does
            lines[i] = lines[i].replace(" at layer", " at layr", 1)
        elif kind == 1:  # a longer line: everything after it moves
            lines[i] = lines[i] + "  # note"
        elif kind == 2:  # a new line: line numbers after it move
            lines.insert(i, "at layer 2 clamp feature 7 to 1")
        elif kind == 3:
            del lines[i]
        else:  # a duplicate: the same text at two places
            lines.insert(i, lines[i + 1])
        before = cache.misses
        _assert_same("\n".join(lines), cache, "big.steer")
        assert cache.misses - before <= 2  # only the edited line was parsed again


def test_too_deep_statement_is_reported_on_every_check() -> None:
    # The compiler marks an E213 statement broken; a reused statement must not stay broken.
    deep = "at layer 1 suppress features where " + "not " * 101 + "freq() > 0"
    text = f"steer 1\n{deep}\nat layer 2 suppress feature 1\n"
    cache = ParseCache()
    for _ in range(3):
        res = compile_text(text, parse_cache=cache)
        assert [d.code for d in res.diagnostics] == ["E213"]
    assert cache.hits >= 4


def test_cache_is_per_file() -> None:
    cache = ParseCache()
    text = "steer 1\nat layer 1 suppress feature 1\n"
    a = compile_text(text, "a.steer", parse_cache=cache)
    b = compile_text(text, "b.steer", parse_cache=cache)
    assert a.recipe is not None and b.recipe is not None
    assert {s.span.file for s in b.recipe.statements if s.span} == {"b.steer"}


@lang_settings(ci_examples=80)
@given(
    st.sampled_from(SEEDS),
    st.sampled_from([0, 2, 10**6]),
    st.lists(
        st.tuples(
            st.floats(0, 1),
            st.floats(0, 1),
            st.lists(st.sampled_from(FRAGMENTS), max_size=3).map("".join),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_cached_compile_equals_cold_compile_over_edits(
    seed: str, bulk: int, edits: list[tuple[float, float, str]]
) -> None:
    # bulk=0: every parse with an unseen line is a whole-file parse that seeds the cache;
    # 10**6: every unseen line is parsed on its own; 2: a mix.
    cache = ParseCache(bulk=bulk)
    text = seed
    _assert_same(text, cache)
    for fa, fb, new in edits:
        text = _edit(text, fa, fb, new)
        _assert_same(text, cache)


# --------------------------------------------------------------------------------------------
# The overlap lint against the pairwise version it replaced
# --------------------------------------------------------------------------------------------


def _pairwise_overlaps(state: CompileState) -> None:
    """W303 as first written: every candidate pair re-derives both rules' constraints."""
    if state.syntax_errors:
        return
    rules = state.rule_irs
    by_site: dict[tuple[int, str], list[int]] = {}
    for pos, (_i, _s, r) in enumerate(rules):
        site = r["scope"].get("site", "resid_post")
        overlaps: dict[int, int] = {}
        for layer in r["scope"]["layers"]:
            for other in by_site.get((layer, site), []):
                overlaps.setdefault(other, layer)
        for other, layer in overlaps.items():
            if _disjoint_pairwise(state, rules[other], rules[pos]):
                continue
            if lints.same_edit(rules[other][2], r):
                continue
            _oi, os_, orr = rules[other]
            _ji, js, jr = rules[pos]
            span = next((it.span for it in js.scope.layers if layer in it.values()), js.scope.span)
            state.emit(
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
            break
        for layer in r["scope"]["layers"]:
            by_site.setdefault((layer, site), []).append(pos)


def _disjoint_pairwise(state: CompileState, a: tuple, b: tuple) -> bool:
    sa, sb = a[1].action.selector, b[1].action.selector
    if isinstance(sa, ast.IdsSel) and isinstance(sb, ast.IdsSel):
        ia = {v for it in sa.items for v in it.values()}
        ib = {v for it in sb.items for v in it.values()}
        return not (ia & ib)
    wa, wb = lints.where_of(sa), lints.where_of(sb)
    if wa is None or wb is None:
        return False
    return contradicting(state, flatten(wa, "and") + flatten(wb, "and")) is not None


_PAIRWISE = tuple(_pairwise_overlaps if p is lints.lint_overlaps else p for p in compiler.PASSES)


def _lints(passes: tuple, text: str) -> list:
    out = compiler.compile_source(text, "r.steer", CompileOptions(), passes)
    return [_deep(d) for d in out.diagnostics]


def test_overlap_lint_equals_pairwise_version_on_benchmark_recipe() -> None:
    text = make_recipe(200)
    fast = _lints(compiler.PASSES, text)
    assert sum(1 for d in fast if d[1]["code"] == "W303") > 50
    assert fast == _lints(_PAIRWISE, text)


def test_overlap_verdicts_depend_on_thresholds() -> None:
    # Same statistics and operators, different thresholds: disjoint on layer 1, not on 2.
    text = (
        "steer 1\ndataset waterbirds\nconcept water = place == 1\n"
        "rule a: at layer 1 suppress features where corr(water) > 0.5\n"
        "rule b: at layer 1 scale features where corr(water) < 0.2 by 0.5\n"
        "rule c: at layer 2 suppress features where corr(water) > 0.1\n"
        "rule d: at layer 2 scale features where corr(water) < 0.2 by 0.5\n"
    )
    fast = _lints(compiler.PASSES, text)
    assert [(d[1]["code"], d[1]["message"]) for d in fast] == [
        ("W303", "rule `d` may override rule `c` on layer 2 (resid_post)")
    ]
    assert fast == _lints(_PAIRWISE, text)


_CONDS = [
    "corr(water) > {t}",
    "corr(water) < {t}",
    "corr(water) >= {t}",
    "corr(water) == {t}",
    "freq() < {t}",
    "freq() > {t}",
    "mean(not water) > {t}",
    'promotes("text") > {t}',
    "corr(water) > thr",
    "corr(water) < -thr",
    "max() > {t} or freq() < {t}",
    'top_concept() == "water"',
    'top_concept() == "land"',
]


@st.composite
def _overlap_recipes(draw: st.DrawFn) -> str:
    lines = [
        "steer 1",
        "dataset waterbirds",
        "concept water = place == 1",
        "param thr = 0.3",
        "param k = 5",
    ]
    for i in range(draw(st.integers(2, 25))):
        lo = draw(st.integers(0, 1))
        layers = f"layer {lo}" if draw(st.booleans()) else f"layers {lo}..{lo + 1}"
        site = draw(st.sampled_from(["", " site mlp_out", " site resid_post"]))
        conds = [
            draw(st.sampled_from(_CONDS)).format(t=draw(st.sampled_from(["0", "0.2", "0.5", "1"])))
            for _ in range(draw(st.integers(1, 3)))
        ]
        where = " and ".join(conds)
        sel = draw(
            st.sampled_from(
                [
                    f"features where {where}",
                    f"top k features by corr(water) where {where}",
                    "top 3 features by freq()",
                    f"feature {draw(st.integers(0, 3))}",
                    f"features {draw(st.integers(0, 2))}..{draw(st.integers(2, 4))}",
                ]
            )
        )
        act = draw(st.sampled_from(["suppress {s}", "scale {s} by 0.5", "add 1 to {s}"]))
        lines.append(f"rule r{i}: at {layers}{site} " + act.format(s=sel))
    return "\n".join(lines) + "\n"


@lang_settings(ci_examples=80)
@given(_overlap_recipes())
def test_overlap_lint_equals_pairwise_version(text: str) -> None:
    assert _lints(compiler.PASSES, text) == _lints(_PAIRWISE, text)
