"""The recovering parser resumed where the fast loop stopped gives exactly what it gives when
it parses the whole text itself (steerlang/lang/parser.py parses a file with an error once, not
once per driver): the same syntax tree, spans included, and the same syntax errors."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from lang_strategies import lang_settings

from steerlang.lang import parser
from steerlang.lang.fast_parse import Stopped, parse_until_error
from steerlang.lang.recovery import recovering_parse
from steerlang.lang.spans import LineIndex
from steerlang.lang.syntax_errors import syntax_diagnostic

REPO = Path(__file__).resolve().parents[2]
MAX_CHARS = 20_000  # the fuzzer's largest inputs are 900 KB; a prefix keeps the test fast


def _fuzzer() -> Any:
    spec = importlib.util.spec_from_file_location(
        "fuzz_recipes", REPO / "benchmarks/fuzz_recipes.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FUZZ = _fuzzer()
SEEDS = FUZZ.seeds()


def flat(node: Any) -> list[Any]:
    """A syntax tree as a list in pre-order: each node's type and each field's name, with
    scalars and spans as they are (tree equality ignores spans, and recursion would not reach
    the bottom of the fuzzer's deepest trees)."""
    out: list[Any] = []
    todo: list[tuple[str, Any]] = [("root", node)]
    while todo:
        name, x = todo.pop()
        if isinstance(x, list | tuple):
            out.append((name, type(x).__name__, len(x)))
            todo.extend((f"{name}[{i}]", y) for i, y in reversed(list(enumerate(x))))
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            out.append((name, type(x).__name__))
            fields = dataclasses.fields(x)
            todo.extend((f.name, getattr(x, f.name)) for f in reversed(fields))
        else:
            out.append((name, type(x).__name__, x))
    return out


def both_ways(src: str) -> tuple[Any, Any, bool]:
    """(from scratch, resumed, whether the fast loop stopped at an error) for one text."""
    with parser.parsing("f.steer") as lark_parser:
        scratch = recovering_parse(src, lark_parser)
        fast = parse_until_error(src, lark_parser)
        stopped = isinstance(fast, Stopped)
        resumed = recovering_parse(src, lark_parser, fast if stopped else None)
    index = LineIndex(src)

    def view(res: tuple) -> tuple:
        recipe, errors = res
        diags = [syntax_diagnostic(e, src, index, "f.steer") for e in errors]
        return flat(recipe), diags, [e.line for e in errors]

    return view(scratch), view(resumed), stopped


@lang_settings(ci_examples=300)
@given(st.integers(0, 10**6), st.integers(0, 3))
def test_resumed_recovery_equals_recovery_from_the_start(k: int, seed: int) -> None:
    _kind, text = FUZZ.make_input(k, seed, SEEDS)
    src = text[:MAX_CHARS] + "\n"
    scratch, resumed, _stopped = both_ways(src)
    assert resumed == scratch


def test_resume_points_cover_every_way_the_fast_loop_stops() -> None:
    """An error at a token the tables refuse, at a newline, at a character no token starts
    with, at a bracket past the nesting limit, at an overlong number, at `mean-ablate` used as
    a name and at the end of the text: each resumes to the same result, and the error is on
    the line where the fast loop stopped."""
    head = "steer 1\nconcept c = place == 1\nat layer 3 suppress feature 1\n"
    cases = [
        (head + "at layer 3 suppress features where ) corr(c) > 0.1\n", 4),
        (head + "at layer 3 suppress features where corr(c) >\n", 4),
        (head + "at layer 3 suppress features where (corr(c) > 0.1", 4),
        (head + "at layer 3 suppress features where corr(c) @ 0.1\n", 4),
        (head + "at layer 3 suppress features where " + "(" * 150 + "corr(c)\n", 4),
        (head + "at layer 3 suppress features where corr(c) > " + "9" * 60 + "\n", 4),
        # a refused `(` still counts towards the line's bracket limit (100): the rest is read
        (head + "at layer 3 suppress features " + "(" * 100 + " where c\n", 4),
        (head + "concept mean-ablate = c\n", 4),
        (head + "at layer 3 [suppress] features\nat layer 4 suppress feature 2\n", 4),
        ("\n\n# only a comment\n", 4),  # no header: the end of the text is the error
    ]
    for text, line in cases:
        src = text + "\n"
        scratch, resumed, stopped = both_ways(src)
        assert stopped, text
        assert resumed == scratch, text
        diags = scratch[1]
        assert diags and diags[0].span is not None and diags[0].span.line == line, (text, diags)
