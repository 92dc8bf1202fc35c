"""`steer fmt`: canonical layout, comments kept, idempotent, safe."""

from __future__ import annotations

import pytest

from steerlang.lang.api import FormatError, compile_text, format_text

MESSY = """

# leading comment
steer   1
recipe    demo   "a \\"quoted\\" description"   # trailing


model   "default"
dataset "waterbirds"
task classify y as [ "landbird" ,"waterbird" ]   prompt "a photo of a {}."
   # indented comment
concept water=place==1
param thr=0.30
param k   =  010
set pooling = max
at layers 7 suppress features where ((corr(water)>thr)) and freq()<5e-1
at layer 5..8 tokens patches scale top k features by corr ( water ) by 5E-1
at layer 11 set features 1234 to -2
rule r :at layer 1 add 1 to features 1,2,3..4
"""

CANONICAL = """# leading comment
steer 1
recipe demo "a \\"quoted\\" description"  # trailing

model default
dataset waterbirds
task classify y as ["landbird", "waterbird"] prompt "a photo of a {}."
# indented comment
concept water = place == 1
param thr = 0.3
param k = 10
set pooling = "max"
at layer 7 suppress features where (corr(water) > thr) and freq() < 0.5
at layers 5..8 tokens patches scale top k features by corr(water) by 0.5
at layer 11 set feature 1234 to -2
rule r: at layer 1 add 1 to features 1, 2, 3..4
"""


def test_canonical_form() -> None:
    messy = MESSY
    out = format_text(messy)
    assert out == CANONICAL
    assert format_text(out) == out
    # meaning is unchanged: the IRs are equal up to source positions
    a, b = compile_text(messy), compile_text(out)
    assert a.ok and b.ok
    assert _no_spans(a.ir.model_dump()) == _no_spans(b.ir.model_dump())


def _no_spans(x: object) -> object:
    if isinstance(x, dict):
        return {k: _no_spans(v) for k, v in x.items() if k not in ("span", "source_hash")}
    if isinstance(x, list):
        return [_no_spans(v) for v in x]
    return x


def test_keeps_user_parentheses_and_adds_needed_ones() -> None:
    text = "steer 1\nconcept c = (place == 1) or not (y == 0 and place == 0)\n"
    assert format_text(text) == text


def test_syntax_errors_refuse_to_format() -> None:
    with pytest.raises(FormatError) as err:
        format_text("steer 1\nat layer 7 supress features where freq() > 0\n")
    assert [d.code for d in err.value.diagnostics] == ["E003"]


def test_empty_and_comment_only_files() -> None:
    with pytest.raises(FormatError):
        format_text("")  # no header
    assert format_text("steer 1") == "steer 1\n"
    assert format_text("steer 1\n\n\n# end\n\n") == "steer 1\n\n# end\n"


def test_crlf_and_tabs() -> None:
    assert format_text("steer 1\r\nparam\tx =\t1\r\n") == "steer 1\nparam x = 1\n"


def test_strings_with_hash_are_not_comments() -> None:
    text = 'steer 1\nrecipe r "a # b"  # real comment\n'
    assert format_text(text) == text
