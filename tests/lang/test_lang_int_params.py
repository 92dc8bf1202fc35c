"""Params in integer lists (steerlang/lang/compiler/int_params.py): `at layer L`, ranges with a
param bound, token indices, feature ids and `sae` layers resolve to the param's value (with
`--param` applied), and each misuse is reported at the use."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from steerlang.lang import api

HEAD = "steer 1\nmodel default\nconcept water = place == 1\n"


def _ir(body: str, **kw: object) -> api.CompileResult:
    return api.compile_text(HEAD + body, "t.steer", **kw)  # type: ignore[arg-type]


def test_layer_param_resolves_with_and_without_override() -> None:
    body = "param L = 7\nat layer L suppress features where corr(water) > 0.3\n"
    res = _ir(body)
    assert res.ok and res.ir.rules[0].scope.layers == [7]
    res = _ir(body, params={"L": "3"})
    assert res.ok and res.ir.rules[0].scope.layers == [3]
    assert res.ir.params["L"].value == 3


def test_param_bounds_in_ranges_tokens_and_ids() -> None:
    body = (
        "param lo = 2\nparam hi = 4\nparam t = 5\nparam f = 9\n"
        "at layers lo..hi, 11 tokens [0, t] suppress features 1, f\n"
    )
    res = _ir(body)
    assert res.ok, res.diagnostics
    r = res.ir.rules[0]
    assert r.scope.layers == [2, 3, 4, 11]
    assert r.scope.tokens == [0, 5]
    assert r.selector.ids == [1, 9]


def test_sae_layer_param_sees_the_override() -> None:
    body = 'param L = 7\nsae at layer L = "zoo:sae/L7/resid_post"\nat layer L suppress feature 1\n'
    res = _ir(body, params={"L": "5"})
    assert res.ok, res.diagnostics
    assert "5:resid_post" in res.ir.saes and res.ir.rules[0].scope.layers == [5]


def _codes(res: api.CompileResult) -> list[str]:
    return [d.code for d in res.diagnostics]


def test_misuses_are_reported_at_the_use() -> None:
    text = "param L = 7.5\nat layer L suppress feature 1\n"
    res = _ir(text)
    assert _codes(res) == ["E240"]
    d = res.diagnostics[0]
    assert d.span is not None and d.span.line == 5 and d.span.column == 10
    assert _codes(_ir("param L = -1\nat layer 3 tokens [L] suppress feature 1\n")) == ["E241"]
    assert _codes(_ir("param L = 7\nat layer L suppress feature 1\n", params={"L": "12"})) == [
        "E201"
    ]
    assert _codes(_ir("param L = 7\nat layer M suppress feature 1\n"))[0] == "E103"
    # The override is type-checked against the declaration, as for every param.
    assert _codes(_ir("param L = 7\nat layer L suppress feature 1\n", params={"L": "2.5"})) == [
        "E209"
    ]


def test_a_keyword_after_layer_is_still_a_missing_layer() -> None:
    assert _codes(_ir("at layer suppress feature 1\n")) == ["E004"]


def test_param_used_only_as_a_layer_is_not_unused() -> None:
    res = _ir("param L = 7\nat layer L suppress feature 1\n")
    assert "W301" not in _codes(res)


@given(st.integers(0, 11), st.integers(0, 11))
def test_any_in_range_layer_param_compiles_to_its_value(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    body = f"param a = {lo}\nparam b = 0\nat layers a..b suppress feature 1\n"
    res = _ir(body, params={"b": str(hi)})
    assert res.ok and res.ir.rules[0].scope.layers == list(range(lo, hi + 1))


def test_fmt_keeps_param_bounds() -> None:
    text = HEAD + "param L = 7\nat layers L..11,  2 tokens [ L ] suppress features  L\n"
    out = api.format_text(text, "t.steer")
    assert "at layers L..11, 2 tokens [L] suppress feature L\n" in out
    assert api.format_text(out, "t.steer") == out


def test_hover_and_completion_know_layer_params() -> None:
    from steerlang.lsp.features import completions_at, hover_at

    text = HEAD + "param L = 7\nparam thr = 0.3\nat layer L suppress feature 1\n"
    at = text.index("layer L") + len("layer ")
    hover = hover_at(text, at, "t.steer")
    assert hover is not None and "param `L`" in hover.markdown
    partial = HEAD + "param L = 7\nparam thr = 0.3\nat layer "
    _, items = completions_at(partial, len(partial), "t.steer")
    labels = [c.label for c in items]
    assert "L" in labels and "7" in labels
    assert "thr" not in labels and "corr" not in labels
