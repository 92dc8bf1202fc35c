"""The language server on the constructs for controls and rank-relative selections:
completion and hover of `random`, the functions and per-feature targets."""

from __future__ import annotations

from steerlang.lsp import features as F

RECIPE = "steer 1\nconcept water = place == 1\nparam thr = 0.3\n"


def _labels(text: str, offset: int) -> list[str]:
    return [c.label for c in F.completions_at(text, offset)[1]]


def test_random_is_offered_as_a_selector() -> None:
    text = RECIPE + "at layer 3 suppress \n"
    got = _labels(text, len(text) - 1)
    assert {"features", "feature", "top", "bottom", "random"} <= set(got)


def test_functions_are_offered_in_predicates_with_snippets() -> None:
    text = RECIPE + "at layer 3 suppress features where \n"
    items = {c.label: c for c in F.completions_at(text, len(text) - 1)[1]}
    for fn in ("abs", "min", "max", "log", "quantile", "rank", "corr"):
        assert fn in items, fn
    assert items["rank"].insert_text == "rank($1)" and items["rank"].snippet
    assert "every feature at the rule's site" in items["quantile"].documentation


def test_inside_a_function_numbers_fit_inside_corr_only_concepts() -> None:
    text = RECIPE + "at layer 3 suppress features where rank(\n"
    got = _labels(text, len(text) - 1)
    assert {"corr", "freq", "thr", "abs"} <= set(got)
    text2 = RECIPE + "at layer 3 suppress features where abs(corr(\n"
    got2 = _labels(text2, len(text2) - 1)
    assert "water" in got2 and "thr" not in got2 and "corr" not in got2


def test_hover_random_functions_and_max_both_ways() -> None:
    text = RECIPE + (
        "at layer 3 suppress random 4 features where rank(corr(not water)) <= 10 "
        "and max(freq(), 0.1) > quantile(max(), 0.5)\n"
    )
    h = F.hover_at(text, text.index("random") + 1)
    assert h is not None and "**random** (keyword)" in h.markdown and "seed" in h.markdown
    h = F.hover_at(text, text.index("rank") + 1)
    assert (
        h is not None and "**rank** (function)" in h.markdown and "1 for the largest" in h.markdown
    )
    h = F.hover_at(text, text.index("max(freq") + 1)
    assert h is not None and "(statistic)" in h.markdown and "(function)" in h.markdown
    h = F.hover_at(text, text.index("not water") + 1)
    assert h is not None and "`corr(not c)` = -`corr(c)`" in h.markdown
