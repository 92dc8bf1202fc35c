"""Golden diagnostics: every bad recipe in `bad/` renders exactly as its `.out` file.

Each case file is named after the code it demonstrates (`E101_unknown_concept.steer`); files
starting with `_` are helpers reached through `include`. A first-line comment
`# test: --param NAME=VALUE --layers N` passes compiler options; `# test: internal-error`
simulates a compiler bug, `# test: recursion-error` a recursion-limit failure, and
`# test: --limit NAME=VALUE` lowers one of `steerlang.lang.limits` so a small case shows it. Regenerate after an intended wording change with
`STEER_UPDATE_GOLDEN=1 python -m pytest tests/lang/test_lang_golden.py` and review the
diff like code.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from steerlang.lang import api
from steerlang.lang.codes import CODES

REPO = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parent / "bad"
CASES = sorted(p for p in BAD.glob("*.steer") if not p.name.startswith("_"))


def _options(text: str) -> dict:
    first = text.split("\n", 1)[0]
    opts: dict = {}
    if not first.startswith("# test:"):
        return opts
    args = shlex.split(first[len("# test:") :])
    i = 0
    while i < len(args):
        if args[i] == "--param":
            k, _, v = args[i + 1].partition("=")
            opts.setdefault("params", {})[k] = v
            i += 2
        elif args[i] == "--layers":
            opts["n_layers"] = int(args[i + 1])
            i += 2
        elif args[i] == "internal-error":
            opts["internal_error"] = True
            i += 1
        elif args[i] == "recursion-error":
            opts["recursion_error"] = True
            i += 1
        elif args[i] == "--limit":  # a smaller `steerlang.lang.limits` value, for a small case
            k, _, v = args[i + 1].partition("=")
            opts.setdefault("limits", {})[k] = int(v)
            i += 2
        else:
            raise AssertionError(f"unknown test option {args[i]!r}")
    return opts


def _compile(path: Path, monkeypatch: pytest.MonkeyPatch) -> api.CompileResult:
    monkeypatch.chdir(REPO)
    text = path.read_text(encoding="utf-8")
    opts = _options(text)
    from steerlang.lang import limits

    for k, v in opts.pop("limits", {}).items():
        assert hasattr(limits, k), k
        monkeypatch.setattr(limits, k, v)
    if opts.pop("recursion_error", False):
        from steerlang.lang import compiler
        from steerlang.lang.compiler.state import CompileState

        def deep(state: CompileState) -> None:  # what the limits should make impossible
            raise RecursionError("maximum recursion depth exceeded")

        monkeypatch.setattr(compiler, "PASSES", (*compiler.PASSES[:2], deep))
    if opts.pop("internal_error", False):
        from steerlang.lang import compiler
        from steerlang.lang.compiler.state import CompileState

        def boom(state: CompileState) -> None:  # a deliberately broken compiler pass
            raise KeyError("simulated bug")

        monkeypatch.setattr(compiler, "PASSES", (*compiler.PASSES[:2], boom))
    return api.compile_text(text, path.relative_to(REPO).as_posix(), **opts)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = _compile(path, monkeypatch)
    got = api.render_diagnostics(res.diagnostics, res.sources, color=False) + "\n"
    expected = path.with_suffix(".out")
    if os.environ.get("STEER_UPDATE_GOLDEN"):
        expected.write_text(got, encoding="utf-8")
    assert expected.exists(), f"missing golden file {expected.name}"
    assert got == expected.read_text(encoding="utf-8")
    code = path.name.split("_", 1)[0]
    if re.fullmatch(r"[EW]\d{3}", code):
        assert code in {d.code for d in res.diagnostics}
        # A case demonstrates one problem: every diagnostic in it has that code.
        assert {d.code for d in res.diagnostics} == {code}, [d.code for d in res.diagnostics]
        assert res.ok == code.startswith("W")
        assert (res.ir is None) == (not res.ok)


def test_every_code_has_a_golden_case() -> None:
    covered = {p.name.split("_", 1)[0] for p in CASES}
    missing = sorted(set(CODES) - covered)
    assert not missing, f"codes without a golden case in tests/lang/bad/: {missing}"
    unknown = sorted(c for c in covered if re.fullmatch(r"[EW]\d{3}", c) and c not in CODES)
    assert not unknown


def test_json_matches_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON form carries the same content as the rendered text."""
    res = _compile(BAD / "multi_independent_errors.steer", monkeypatch)
    data = json.loads(json.dumps(api.diagnostics_to_json(res.diagnostics)))
    assert [d["code"] for d in data] == [d.code for d in res.diagnostics]
    text = api.render_diagnostics(res.diagnostics, res.sources)
    for d in data:
        assert f"[{d['code']}]: {d['message']}" in text
        if d["span"]:
            assert f"{d['span']['file']}:{d['span']['line']}:{d['span']['column']}" in text
        if d["help"]:
            assert f"= help: {d['help']}" in text


def test_independent_errors_reported_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _compile(BAD / "multi_independent_errors.steer", monkeypatch)
    lines = [d.span.line for d in res.diagnostics if d.span is not None]
    assert lines == [5, 6, 7, 9, 10]  # one per broken line; line 8 uses `k` and is fine
    assert [d.code for d in res.diagnostics] == ["E003", "E101", "E005", "E006", "E007"]


def test_output_is_capped() -> None:
    lines = ["steer 1", "concept water = place == 1"]
    lines += [f"at layer 7 suppress features where corr(w{i}) > 0.3" for i in range(60)]
    res = api.compile_text("\n".join(lines) + "\n", "cap.steer")
    assert len(res.diagnostics) == 60
    out = api.render_diagnostics(res.diagnostics, res.sources, limit=50)
    assert out.count("error[E101]") == 50
    assert out.rstrip().endswith("… and 10 more (10 errors)")


def test_color_rendering_uses_ansi_and_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _compile(BAD / "E101_unknown_concept.steer", monkeypatch)
    plain = api.render_diagnostics(res.diagnostics, res.sources, color=False)
    colored = api.render_diagnostics(res.diagnostics, res.sources, color=True)
    assert "\x1b[" in colored
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == plain


def test_carets_line_up_after_tabs_and_wide_characters() -> None:
    text = (
        "steer 1\ndataset waterbirds\nconcept w = plase == 1\t# 水\n"
        'task classify y as ["水鳥", "🌊"] prompt "\t{} 🌊"\tx\n'
    )
    res = api.compile_text(text, "w.steer")
    out = api.render_diagnostics(res.diagnostics, res.sources)
    assert "3 | concept w = plase == 1    # 水\n  |             ^^^^^ not a column" in out
    # 水鳥 and 🌊 take two cells each, tabs four: the caret sits under `x` (column 47)
    assert res.diagnostics[1].span.column == 47
    assert (
        '4 | task classify y as ["水鳥", "🌊"] prompt "    {} 🌊"    x\n'
        "  |                                                         ^ expected"
    ) in out
