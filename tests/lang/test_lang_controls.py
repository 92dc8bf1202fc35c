"""The constructs for controls and rank-relative selections (docs/language.md §4.2, §4.3,
§5.5): functions of expressions, `random K features`, per-feature targets, `corr(not c)`, and
`steer fmt` refusing a recipe that `steer check` rejects."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from lang_strategies import lang_settings, scoped_recipes

from steerlang.cli import main
from steerlang.lang.api import compile_text, format_text, parse_text
from steerlang.plan import Fn, RandomSelector, Stat

HEAD = "steer 1\ndataset waterbirds\nconcept water = place == 1\n"


def _ir(body: str):  # noqa: ANN202
    res = compile_text(HEAD + body, "r.steer")
    assert res.ok, res.render()
    return res.ir


def test_functions_lower_to_fn_nodes() -> None:
    ir = _ir(
        "at layer 7 suppress features where abs(corr(water)) > 0.3 and log(max()) > "
        "min(1, max(0.5, 2)) and rank(freq()) <= 20 and corr(water) >= "
        "quantile(corr(water), 0.99)\n"
    )
    conj = ir.rules[0].selector.where.args
    assert isinstance(conj[0].left, Fn) and conj[0].left.fn == "abs"
    assert conj[1].left.fn == "log" and isinstance(conj[1].left.args[0], Stat)
    assert conj[1].left.args[0].fn == "max"  # `max()` stays the statistic
    assert conj[1].right.fn == "min" and conj[1].right.args[1].fn == "max"  # max(A, B)
    assert conj[2].left.fn == "rank"
    assert conj[3].right.fn == "quantile" and conj[3].right.args[1].value == 0.99


def test_quantile_level_may_be_a_param() -> None:
    ir = _ir(
        "param q = 0.9\nat layer 7 suppress features where corr(water) > quantile(corr(water), q)\n"
    )
    assert ir.rules[0].selector.where.right.args[1].name == "q"


def test_math_functions_work_in_concepts() -> None:
    ir = _ir(
        "concept far = abs(place - 1) > 0\nat layer 7 suppress features where corr(far) > 0.3\n"
    )
    assert ir.concepts["far"].expr.left.fn == "abs"


def test_corr_not_is_a_negated_statistic() -> None:
    ir = _ir("at layer 7 suppress features where corr(not water) > 0.3\n")
    s = ir.rules[0].selector.where.left
    assert (s.fn, s.concept, s.negated) == ("corr", "water", True)


def test_corr_not_is_range_checked() -> None:
    res = compile_text(HEAD + "at layer 7 suppress features where corr(not water) > 1.5\n")
    assert [d.code for d in res.diagnostics] == ["E202"]


def test_random_selector_and_seed() -> None:
    ir = _ir("param k = 8\nset seed = 5\nat layer 7 suppress random k features where freq() > 0\n")
    sel = ir.rules[0].selector
    assert isinstance(sel, RandomSelector) and sel.k.name == "k" and sel.where is not None
    assert ir.setting("seed") == 5


@pytest.mark.parametrize(
    ("target", "key"),
    [
        ("mean()", (None, False)),
        ("mean(water)", ("water", False)),
        ("mean(not water)", ("water", True)),
    ],
)
def test_per_feature_targets(target: str, key: tuple) -> None:
    ir = _ir(f"at layer 7 set features where corr(water) > 0.3 to {target}\n")
    v = ir.rules[0].action.value
    assert ir.rules[0].action.op == "clamp"
    assert isinstance(v, Stat) and v.fn == "mean" and (v.concept, v.negated) == key


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        ("at layer 7 suppress features where log(-2) < 1\n", ["E220"]),
        ("at layer 7 suppress features where log(1 - 1) < 1\n", ["E220"]),
        ("at layer 7 suppress features where abs(1, 2) < 1\n", ["E205"]),
        ("at layer 7 suppress features where min(freq()) < 1\n", ["E205"]),
        ('at layer 7 suppress features where abs("x") < 1\n', ["E204"]),
        ("at layer 7 suppress features where quantile(freq(), -0.1) < 1\n", ["E221"]),
        ("at layer 7 add mean() to features where freq() > 0\n", ["E222"]),
        ("at layer 7 clamp features where freq() > 0 to freq()\n", ["E222"]),
        ("at layer 7 clamp features where freq() > 0 to mean(watr)\n", ["E101"]),
        ("at layer 7 suppress random 0 features where freq() > 0\n", ["E203"]),
        ("param k = 0.5\nat layer 7 suppress random k features where freq() > 0\n", ["E204"]),
        ("at layer 7 suppress random 3 features where freq()\n", ["E204"]),
        ("at layer 7 suppress random 3 features\n", ["W302", "W323"]),  # water unused
    ],
)
def test_diagnostics(body: str, codes: list[str]) -> None:
    res = compile_text(HEAD + body, "r.steer")
    assert [d.code for d in res.diagnostics] == codes, res.render()


def test_random_is_reserved() -> None:
    res = compile_text("steer 1\nparam random = 3\n")
    assert not res.ok


@pytest.mark.parametrize(
    "line",
    [
        "at layer 7 suppress random 1 feature where freq() > 0\n",
        "at layer 7 suppress random 12 features where abs(corr(not water)) > 0.1\n",
        "at layer 7 clamp top 3 features by -rank(log(max())) to mean(not water)\n",
        "at layer 7 set feature 4 to max()\n",
        "at layer 7 suppress features where corr(water) > quantile(corr(water), 0.5)\n",
    ],
)
def test_format_is_canonical(line: str) -> None:
    text = HEAD + line
    assert format_text(text) == text
    messy = text.replace(" ", "  ").replace("steer  1", "steer 1")
    assert format_text(messy) == text


@lang_settings(ci_examples=60)
@given(scoped_recipes())
def test_new_constructs_format_to_the_same_ir(text: str) -> None:
    """Recipes using functions, random selectors and per-feature targets compile to the same
    IR after `fmt`, and the formatted text parses back to the same tree."""
    res = compile_text(text)
    if res.ir is None:
        return
    out = format_text(text)
    again = compile_text(out)
    assert again.ir is not None
    assert again.ir.rules == res.ir.rules
    assert parse_text(out)[0].statements == parse_text(text)[0].statements


# ---- steer fmt and steer check agree --------------------------------------------------------


def test_fmt_refuses_a_file_check_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "steer 1\nconcept water = place == 1\nat layer 7   suppress features where corr(wter) > 0.3\n"
    f = tmp_path / "bad.steer"
    f.write_text(text)
    assert main(["check", str(f), "--color", "never"]) == 1
    capsys.readouterr()
    assert main(["fmt", str(f), "--color", "never"]) == 1
    err = capsys.readouterr().err
    assert "error[E101]: unknown concept `wter`" in err
    assert f"{f} was not formatted: `steer check` reports 1 error; fix it first" in err
    assert f.read_text() == text  # untouched
    assert main(["fmt", "--check", str(f), "--color", "never"]) == 1


def test_fmt_formats_a_file_with_warnings_only(tmp_path: Path) -> None:
    f = tmp_path / "warn.steer"
    f.write_text("steer 1\nparam unused = 1\nat layer 7   suppress random 3 features\n")
    assert main(["fmt", str(f)]) == 0
    assert f.read_text() == "steer 1\nparam unused = 1\nat layer 7 suppress random 3 features\n"


def test_corr_not_recipe_checks_and_formats(tmp_path: Path) -> None:
    """The docs/running.md example `corr(not c)` is accepted by check and fmt alike."""
    f = tmp_path / "ok.steer"
    f.write_text(HEAD + "at layer 7 suppress features where corr(not water)  > 0.3\n")
    assert main(["check", str(f)]) == 0
    assert main(["fmt", str(f)]) == 0
    assert "corr(not water) > 0.3" in f.read_text()


# ---- experiment arms switched by a param ----------------------------------------------------

ARMS = (
    'param arm = "targeted"\n'
    'rule targeted: at layer 7 suppress top 5 features by abs(corr(water)) where freq() > 0 and arm == "targeted"\n'
    'rule control: at layer 7 suppress random 5 features where freq() > 0 and arm == "random"\n'
)


def test_a_switched_off_arm_overrides_nothing() -> None:
    res = compile_text(HEAD + ARMS, "r.steer")
    assert res.diagnostics == [], res.render()
    res = compile_text(HEAD + ARMS, "r.steer", params={"arm": "random"})
    assert res.diagnostics == [], res.render()
    # both arms on, with different edits: a real overlap
    both = ARMS.replace('arm == "random"', 'arm != "x"').replace(
        'suppress random 5 features where freq() > 0 and arm != "x"',
        'clamp random 5 features where freq() > 0 and arm != "x" to 1',
    )
    assert "clamp random" in both
    res = compile_text(HEAD + both, "r.steer")
    assert [d.code for d in res.diagnostics] == ["W303"]


def test_controls_recipe_checks_clean_for_every_arm() -> None:
    path = Path(__file__).resolve().parents[2] / "recipes" / "controls.steer"
    text = path.read_text()
    for arm in ("targeted", "random", "random2", "random3"):
        res = compile_text(text, str(path), params={"arm": arm})
        assert res.ok and res.diagnostics == [], res.render()
    assert format_text(text) == text
