"""Code-point offsets <-> LSP positions: UTF-16 by default, UTF-8/UTF-32 when negotiated."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steerlang.lsp.positions import LineIndex, LspPosition, apply_change, units_in

EMOJI_LINE = 'concept 🌊 = place == 1  # "水鳥"'


def test_ascii_positions_are_code_points() -> None:
    idx = LineIndex("steer 1\nrecipe x\n")
    assert idx.position_of(0) == LspPosition(0, 0)
    assert idx.position_of(8) == LspPosition(1, 0)
    assert idx.position_of(10) == LspPosition(1, 2)
    assert idx.position_of(len(idx.text)) == LspPosition(2, 0)
    assert idx.offset_of(1, 2) == 10


def test_emoji_counts_two_utf16_units_and_cjk_one() -> None:
    text = "steer 1\n" + EMOJI_LINE + "\n"
    idx = LineIndex(text)
    place = text.index("place")
    # "concept " (8) + wave (2 units in UTF-16) + " = " (3)
    assert idx.position_of(place) == LspPosition(1, 13)
    assert idx.position_of(place, "utf-32") == LspPosition(1, 12)
    assert idx.position_of(place, "utf-8") == LspPosition(1, 8 + 4 + 3)
    assert idx.offset_of(1, 13) == place
    assert idx.offset_of(1, 12, "utf-32") == place
    assert idx.offset_of(1, 15, "utf-8") == place
    cjk = text.index("水")
    col16 = idx.position_of(cjk).character
    assert idx.position_of(cjk + 1).character == col16 + 1  # BMP CJK: one UTF-16 unit
    assert (
        idx.position_of(cjk + 1, "utf-8").character == idx.position_of(cjk, "utf-8").character + 3
    )


def test_column_inside_a_surrogate_pair_rounds_down() -> None:
    idx = LineIndex("a🌊b")
    assert idx.offset_of(0, 1) == 1
    assert idx.offset_of(0, 2) == 1  # between the two halves of the emoji
    assert idx.offset_of(0, 3) == 2


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_line_breaks_follow_lsp(nl: str) -> None:
    text = f"ab{nl}cd{nl}"
    idx = LineIndex(text)
    assert idx.n_lines == 3
    assert idx.line_text(0) == "ab"
    assert idx.line_text(1) == "cd"
    c = text.index("c")
    assert idx.position_of(c) == LspPosition(1, 0)
    # past the end of a line clamps to the line end, before the break
    assert idx.offset_of(0, 99) == 2
    assert idx.offset_of(99, 0) == len(text)


def test_other_unicode_breaks_are_not_lines() -> None:
    # str.splitlines would split here; LSP clients do not.
    idx = LineIndex("a\u2028b\x0cc\nd")
    assert idx.n_lines == 2
    assert idx.position_of(5) == LspPosition(0, 5)


def test_offset_inside_crlf_belongs_to_line_end() -> None:
    idx = LineIndex("ab\r\ncd")
    assert idx.position_of(3) == LspPosition(0, 2)


def test_apply_change_incremental_and_full() -> None:
    text = "steer 1\nat layer 7 supress features\n"
    out = apply_change(text, (1, 11), (1, 18), "suppress")
    assert out == "steer 1\nat layer 7 suppress features\n"
    assert apply_change(text, None, None, "x") == "x"
    emoji = "🌊🌊x"
    assert apply_change(emoji, (0, 2), (0, 4), "") == "🌊x"


@given(st.text(alphabet=st.sampled_from("ab水🌊\n\r \u2028"), max_size=40), st.data())
def test_offset_position_round_trip(text: str, data: st.DataObject) -> None:
    idx = LineIndex(text)
    offset = data.draw(st.integers(0, len(text)))
    # offsets inside a CRLF pair are not addressable; everything else round-trips
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        return
    for enc in ("utf-16", "utf-8", "utf-32"):
        pos = idx.position_of(offset, enc)
        assert idx.offset_of(pos.line, pos.character, enc) == offset
        line_start = idx.starts[pos.line]
        assert units_in(text[line_start:offset], enc) == pos.character
