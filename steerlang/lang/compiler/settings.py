"""`set NAME = VALUE`: the name must be a setting, the value of its type and in its range."""

from __future__ import annotations

import math
from typing import Any

from steerlang.diagnostics import Edit, SourceSpan
from steerlang.errors import did_you_mean
from steerlang.lang import ast
from steerlang.lang.compiler.state import CompileState
from steerlang.lang.compiler.values import fmt, literal, render_value, type_phrase
from steerlang.lang.known import (
    SETTING_CHOICES,
    SETTING_MIN,
    SETTING_WORDS,
    SPLIT_NAMES,
    SPLIT_SETTINGS,
)


def check_setting(st: CompileState, s: ast.SetDecl, spans: dict[str, SourceSpan | None]) -> None:
    """Check one `set` line and record its value in `st.settings` (`spans`: where each
    setting was last set, for W307)."""
    from steerlang.plan import SETTING_DEFAULTS

    name = s.name.name
    if name not in SETTING_DEFAULTS:
        guess = did_you_mean(name, list(SETTING_DEFAULTS))
        st.emit(
            "E104",
            f"unknown setting `{name}`",
            s.name.span,
            label="not a setting",
            help=f"did you mean `{guess}`?" if guess else "settings are listed in docs/language.md",
            fix=Edit(s.name.span, guess) if guess and s.name.span else None,
        )
        return
    default = SETTING_DEFAULTS[name]
    value = _typed_value(st, s, default)
    if value is None or not _in_range(st, s, value):
        return
    if name in st.settings:
        st.emit(
            "W307",
            f"setting `{name}` is set twice",
            s.name.span,
            label="this value wins",
            help="delete one of the two `set` lines",
            secondary=[(spans[name], "earlier value")] if spans.get(name) else None,
        )
    st.settings[name] = value
    spans[name] = s.name.span


def _typed_value(st: CompileState, s: ast.SetDecl, default: Any) -> Any:
    """The value, when it has the type of the setting's default (a whole number is a number
    too); None after E208 otherwise."""
    name = s.name.name
    want = (
        "bool"
        if isinstance(default, bool)
        else "int"
        if isinstance(default, int)
        else "float"
        if isinstance(default, float)
        else "str"
    )
    lit = literal(s.value)
    if lit is not None and name in SETTING_WORDS and lit[0] in ("str", "word"):
        return _word_value(st, s, str(lit[1]), SETTING_WORDS[name])
    if lit is not None:
        t, v = lit
        if t == "word":
            t = "str"
        if t == want or (want == "float" and t == "int"):
            value = float(v) if want == "float" else v
            if want == "float" and not math.isfinite(value):
                st.emit("E208", f"setting `{name}` must be finite", s.value.span, label="too large")
                return None
            return value
    found = (
        "a bare word"
        if isinstance(s.value, ast.Name)
        else type_phrase(lit[0])
        if lit
        else "an expression"
    )
    st.emit(
        "E208",
        f"setting `{name}` takes {type_phrase(want)}, found {found}",
        s.value.span,
        label=f"expected {type_phrase(want)}",
        help=f"write e.g. `set {name} = {render_value(default)}` (the default)",
    )
    return None


def _word_value(st: CompileState, s: ast.SetDecl, word: str, words: tuple[str, ...]) -> Any:
    """A numeric setting given as a string: one of its `words` (SETTING_WORDS), else E208."""
    name = s.name.name
    if word in words:
        return word
    guess = did_you_mean(word, list(words))
    st.emit(
        "E208",
        f"setting `{name}` takes a number or "
        + " or ".join(render_value(w) for w in words)
        + f", found {render_value(word)}",
        s.value.span,
        label="not a number or " + ", ".join(render_value(w) for w in words),
        help=f"did you mean {render_value(guess)}?"
        if guess
        else f"write e.g. `set {name} = {render_value(words[0])}`",
        fix=Edit(s.value.span, render_value(guess)) if guess and s.value.span else None,
    )
    return None


def _in_range(st: CompileState, s: ast.SetDecl, value: Any) -> bool:
    """The value is one of the setting's choices and at least its minimum (else E208)."""
    name = s.name.name
    if isinstance(value, str) and value in SETTING_WORDS.get(name, ()):
        return True
    choices = SETTING_CHOICES.get(name) or (SPLIT_NAMES if name in SPLIT_SETTINGS else None)
    if choices is not None and value not in choices:
        guess = did_you_mean(str(value), choices)
        shown = choices if name not in SPLIT_SETTINGS else ("train", "val", "test")
        st.emit(
            "E208",
            f"invalid value {render_value(value)} for setting `{name}`",
            s.value.span,
            label="not one of " + ", ".join(render_value(c) for c in shown),
            help=f"did you mean {render_value(guess)}?" if guess else None,
            fix=Edit(s.value.span, render_value(guess)) if guess and s.value.span else None,
        )
        return False
    if name == "steer_curve" and not _strength_list(value):
        st.emit(
            "E208",
            f"setting `steer_curve` is not a list of strengths: {render_value(value)}",
            s.value.span,
            label="expected numbers ≥ 0 separated by commas",
            help='write e.g. `set steer_curve = "5,10,20,50,150"`, or "" for no curve',
        )
        return False
    if name in SETTING_MIN and value < SETTING_MIN[name]:
        st.emit(
            "E208",
            f"setting `{name}` must be at least {fmt(SETTING_MIN[name])}",
            s.value.span,
            label=f"{fmt(value)} is too small",
            help=f"use a value of at least {fmt(SETTING_MIN[name])}",
        )
        return False
    return True


def _strength_list(text: str) -> bool:
    """`steer_curve`: "" (no curve) or finite numbers ≥ 0 separated by commas."""
    if not text.strip():
        return True
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        return False
    return all(0 <= v < math.inf for v in values)
