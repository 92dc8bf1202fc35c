"""Settings that take a number or a word (`logit_scale = "model"`) and the `steer_curve` list:
accepted values reach the IR unchanged, bad ones are E208 naming the fix; a property checks
that every number and every listed word round-trips through `set` into the IR."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lang_strategies import lang_settings

from steerlang.lang.api import compile_text
from steerlang.lang.known import SETTING_WORDS


def _compile(line: str):  # type: ignore[no-untyped-def]
    return compile_text(f"steer 1\n{line}\n")


def test_logit_scale_model_and_numbers_compile() -> None:
    assert _compile('set logit_scale = "model"').ir.settings["logit_scale"] == "model"
    assert _compile("set logit_scale = 15").ir.settings["logit_scale"] == 15.0


def test_bad_logit_scale_word_is_e208_with_a_fix() -> None:
    (d,) = _compile('set logit_scale = "modle"').errors
    assert d.code == "E208"
    assert d.message == 'setting `logit_scale` takes a number or "model", found "modle"'
    assert d.help == 'did you mean "model"?'
    assert d.fix is not None and d.fix.replacement == '"model"'
    (d,) = _compile('set logit_scale = "sharp"').errors
    assert d.code == "E208" and d.help == 'write e.g. `set logit_scale = "model"`'
    (d,) = _compile("set logit_scale = -1").errors
    assert d.code == "E208" and "at least 0" in d.message
    # a word is only allowed where SETTING_WORDS lists it
    (d,) = _compile('set steer_strength = "model"').errors
    assert d.code == "E208" and "takes a number" in d.message


def test_steer_curve_takes_a_list_of_strengths() -> None:
    assert _compile('set steer_curve = "5,10, 150"').ir.settings["steer_curve"] == "5,10, 150"
    assert _compile('set steer_curve = ""').ok
    for bad in ('"5,,10"', '"5,x"', '"-5"', '"inf"'):
        (d,) = _compile(f"set steer_curve = {bad}").errors
        assert d.code == "E208" and "not a list of strengths" in d.message, bad


@lang_settings()
@given(
    value=st.one_of(
        st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda v: round(v, 3)),
        st.sampled_from(SETTING_WORDS["logit_scale"]),
    )
)
def test_logit_scale_round_trips(value: float | str) -> None:
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    res = _compile(f"set logit_scale = {text}")
    assert res.ok, res.diagnostics
    assert res.ir.settings["logit_scale"] == value
