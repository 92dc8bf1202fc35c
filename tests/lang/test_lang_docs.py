"""docs/language.md documents every code, keyword, setting, statistic and action."""

from __future__ import annotations

import re
from pathlib import Path

from steerlang.lang.codes import CODES
from steerlang.lang.known import ACTIONS, STAT_FUNCTIONS
from steerlang.lang.lexer import KEYWORDS
from steerlang.plan import SETTING_DEFAULTS, STAT_RANGES

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "language.md").read_text(encoding="utf-8")


def test_every_code_is_in_the_table() -> None:
    rows = dict(re.findall(r"^\| ([EW]\d{3}) \| (.+?) \|$", DOC, flags=re.M))
    assert set(rows) == set(CODES)


def test_keyword_list_is_complete() -> None:
    block = DOC.split("### Keywords", 1)[1].split("```", 2)[1]
    assert set(block.split()) == set(KEYWORDS)


def test_settings_functions_and_actions_are_documented() -> None:
    for name in SETTING_DEFAULTS:
        assert f"| `{name}` |" in DOC, name
    assert set(STAT_FUNCTIONS) == set(STAT_RANGES)  # the doc table below covers plan.StatFn
    for fn in STAT_FUNCTIONS:
        assert f"`{fn}(" in DOC, fn
    for action in ACTIONS:
        assert f"`{action} " in DOC, action
    assert "unsteered model" in DOC and "stats_split" in DOC


def test_example_diagnostic_matches_the_golden_output() -> None:
    example = DOC.split("context:\n\n```\n", 1)[1].split("```", 1)[0]
    golden = (REPO / "tests/lang/bad/E101_unknown_concept.out").read_text(encoding="utf-8")
    assert example == golden
