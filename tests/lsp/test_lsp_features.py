"""The language server's answers as pure functions of (text, offset): no client needed."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types

from steerlang.lang.api import compile_text, format_text
from steerlang.lsp import features as F
from steerlang.lsp.documents import Document
from steerlang.lsp.positions import LineIndex

RECIPE = """steer 1
recipe wb "remove the background shortcut"
model default
dataset waterbirds
task classify y as ["landbird", "waterbird"] prompt "a photo of a {}."
concept water = place == 1
param thr = 0.3
at layer 7 suppress features where corr(water) > thr
rule keep: at layers 5..8 tokens patches scale top 10 features by corr(water) by 0.5
"""


def apply_edits(text: str, edits: list[tuple[int, int, str]]) -> str:
    """The text after the formatter's edits (applied last first, so offsets stay valid)."""
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + new + text[end:]
    return text


def at(text: str, marker: str, delta: int = 0) -> int:
    """Offset of `marker` in `text` (must be unique) plus `delta`."""
    assert text.count(marker) == 1, marker
    return text.index(marker) + delta


def doc_of(text: str, path: str | None = None) -> Document:
    return Document(uri="file:///virtual/r.steer", text=text, version=1, path=path)


# ------------------------------------------------------------------------------ diagnostics


def test_diagnostics_match_compile_text_one_to_one() -> None:
    text = RECIPE.replace("corr(water) > thr", "corr(watr) > thr").replace("scale top", "scael top")
    res = compile_text(text)
    assert {d.code for d in res.diagnostics} >= {"E101", "E003"}
    lsp = F.lsp_diagnostics(doc_of(text))
    assert [d.code for d in lsp] == [d.code for d in res.diagnostics]
    idx = LineIndex(text)
    for ours, theirs in zip(lsp, res.diagnostics, strict=True):
        assert theirs.span is not None
        assert ours.range.start.line == theirs.span.line - 1
        assert ours.range.start.character == theirs.span.column - 1  # ASCII: same columns
        assert idx.offset_of(ours.range.end.line, ours.range.end.character) == theirs.span.end
        assert ours.message.startswith(theirs.message)
        assert ours.source == "steer"
        if theirs.help:
            assert f"help: {theirs.help}" in ours.message
    e101 = next(d for d in lsp if d.code == "E101")
    assert e101.severity == types.DiagnosticSeverity.Error
    assert e101.data == {
        "fix": {
            "start": at(text, "watr"),
            "end": at(text, "watr", 4),
            "replacement": "water",
        }
    }


def test_diagnostic_columns_are_utf16_after_emoji_and_cjk() -> None:
    # CJK (one UTF-16 unit each) and an emoji (two units) before the bad name on its line,
    # and more of both on earlier lines, which must not shift anything.
    bad = 'at layer 7 suppress features where promotes("水鳥🌊") < 1 and corr(watr) > thr  # 🌊\n'
    text = RECIPE.replace('recipe wb "remove', 'recipe wb "🌊🌊 水 remove') + bad
    res = compile_text(text)
    (d,) = [d for d in res.diagnostics if d.code == "E101"]
    assert d.span is not None
    line_no = len(RECIPE.splitlines())
    cp = bad.index("watr")
    assert (d.span.line - 1, d.span.column - 1) == (line_no, cp)  # compiler: code points
    (lsp,) = [x for x in F.lsp_diagnostics(doc_of(text)) if x.code == "E101"]
    assert lsp.range.start == types.Position(line_no, cp + 1)  # the emoji is 2 UTF-16 units
    assert lsp.range.end == types.Position(line_no, cp + 1 + 4)
    for enc, col in (("utf-32", cp), ("utf-8", len(bad[:cp].encode("utf-8")))):
        other = F.to_lsp_diagnostic(
            d, text=text, path=None, uri="u", index=LineIndex(text), encoding=enc
        )
        assert other.range.start == types.Position(line_no, col)


def test_code_actions_for_every_did_you_mean() -> None:
    text = RECIPE.replace("corr(water) > thr", "corr(watr) > thr").replace("scale top", "scael top")
    doc = doc_of(text)
    whole = types.Range(types.Position(0, 0), types.Position(len(text.splitlines()), 0))
    actions = F.lsp_code_actions(doc, whole)
    res = compile_text(text)
    did_you_mean = [d for d in res.diagnostics if d.help and "did you mean" in d.help]
    assert len(actions) == len(did_you_mean) == 2
    fixed = text
    for a in actions:
        assert a.kind == types.CodeActionKind.QuickFix
        assert a.diagnostics and a.diagnostics[0].code in ("E101", "E003")
        (edit,) = a.edit.changes[doc.uri]
        idx = LineIndex(fixed)
        s = idx.offset_of(edit.range.start.line, edit.range.start.character)
        e = idx.offset_of(edit.range.end.line, edit.range.end.character)
        fixed = fixed[:s] + edit.new_text + fixed[e:]
    assert fixed == RECIPE
    assert compile_text(fixed).ok
    # A range on another line gets no action.
    first = types.Range(types.Position(0, 0), types.Position(0, 3))
    assert F.lsp_code_actions(doc, first) == []


def test_include_diagnostics_anchor_on_the_include(tmp_path: Path) -> None:
    (tmp_path / "common.steer").write_text("steer 1\nparam thr = 0.3\nconcept water = plce == 1\n")
    root = tmp_path / "root.steer"
    text = 'steer 1\ndataset waterbirds\ninclude "common.steer"\nat layer 7 suppress features where corr(water) > thr\n'
    root.write_text(text)
    res = compile_text(text, str(root))
    foreign = [d for d in res.diagnostics if d.span and d.span.file != str(root)]
    assert foreign, res.diagnostics
    lsp = F.lsp_diagnostics(doc_of(text, str(root)))
    inc_line = 2
    for d in lsp:
        if d.related_information:
            assert d.range.start.line == inc_line
            assert d.related_information[0].location.uri.endswith("common.steer")


# ------------------------------------------------------------------------------ hover


def test_hover_keyword_action_function_concept_param_site_layer() -> None:
    h = F.hover_at(RECIPE, at(RECIPE, "suppress", 2))
    assert h is not None and "(action)" in h.markdown and "activations to 0" in h.markdown
    assert RECIPE[h.start : h.end] == "suppress"
    h = F.hover_at(RECIPE, at(RECIPE, "corr(water) > thr", 1))
    assert h is not None and "Pearson correlation" in h.markdown
    assert "corr:<concept>" in h.markdown and "unsteered" in h.markdown and "[-1, 1]" in h.markdown
    h = F.hover_at(RECIPE, at(RECIPE, "water) > thr", 2))
    assert h is not None and "concept `water`" in h.markdown and "place == 1" in h.markdown
    h = F.hover_at(RECIPE, at(RECIPE, "thr\n", 1))
    assert h is not None and "param `thr`" in h.markdown and "0.3" in h.markdown
    h = F.hover_at(RECIPE, at(RECIPE, "patches", 3))
    assert h is not None and "patch tokens" in h.markdown
    h = F.hover_at(RECIPE, at(RECIPE, "layers 5", 1))
    assert h is not None and "(keyword)" in h.markdown
    h = F.hover_at(RECIPE, at(RECIPE, "7 suppress"))
    assert h is not None and "layer 7" in h.markdown and "0..11" in h.markdown
    h = F.hover_at(RECIPE, at(RECIPE, "place =", 1))
    assert h is not None and "column `place`" in h.markdown
    # Nothing in comments or strings.
    assert F.hover_at(RECIPE, at(RECIPE, "background shortcut")) is None


def test_hover_mean_ablate_and_setting() -> None:
    text = 'steer 1\nset pooling = "max"\nat layer 3 mean-ablate features where freq() > 0.5\n'
    h = F.hover_at(text, at(text, "ablate"))
    assert h is not None and text[h.start : h.end] == "mean-ablate"
    assert "mean activation" in h.markdown
    h = F.hover_at(text, at(text, "pooling", 2))
    assert h is not None and "setting `pooling`" in h.markdown and "'mean'" in h.markdown
    h = F.hover_at(text, at(text, "freq", 1))
    assert h is not None and "firing frequency" in h.markdown


# ------------------------------------------------------------------------------ completion


def labels(text: str, offset: int, **kw: object) -> list[str]:
    return [c.label for c in F.completions_at(text, offset, **kw)[1]]  # type: ignore[arg-type]


def test_completion_actions_after_scope() -> None:
    text = "steer 1\nat layer 7 \n"
    got = labels(text, at(text, "7 ", 2))
    assert {"suppress", "clamp", "scale", "add", "mean-ablate", "set", "site", "tokens"} <= set(got)
    assert "where" not in got and "corr" not in got


def test_completion_partial_word_replaces_prefix() -> None:
    text = "steer 1\nat layer 7 sup\n"
    off = at(text, "sup", 3)
    start, items = F.completions_at(text, off)
    assert start == at(text, "sup")
    assert "suppress" in [c.label for c in items]


def test_completion_names_and_functions_in_predicates() -> None:
    text = RECIPE + "at layer 3 suppress features where \n"
    off = len(text) - 1
    got = labels(text, off)
    assert {"water", "thr", "corr", "freq", "not"} <= set(got)
    # Inside corr( only concepts (and `not` for mean(not c)) make sense.
    text2 = RECIPE + "at layer 3 suppress features where corr(\n"
    got2 = labels(text2, len(text2) - 1)
    assert "water" in got2 and "thr" not in got2 and "corr" not in got2


def test_completion_layers_from_model_depth_and_override() -> None:
    text = "steer 1\nmodel default\nat layer \n"
    got = labels(text, len(text) - 1)
    assert got[:12] == [str(i) for i in range(12)]
    text_l = 'steer 1\nmodel "openclip:ViT-L-14@openai"\nat layers 3..\n'
    assert labels(text_l, len(text_l) - 1)[-1] == "23"
    assert labels(text, len(text) - 1, n_layers=4)[:5] == ["0", "1", "2", "3"]
    text_u = 'steer 1\nmodel "my:custom"\nat layer \n'
    assert labels(text_u, len(text_u) - 1) == []  # unknown depth: no guesses


def test_completion_sites_tokens_settings_statement_starts() -> None:
    text = "steer 1\nat layer 7 site \n"
    assert labels(text, len(text) - 1) == ["resid_post", "resid_pre", "attn_out", "mlp_out"]
    text = "steer 1\nat layer 7 tokens \n"
    got = labels(text, len(text) - 1)
    assert {"all", "cls", "patches"} <= set(got)
    text = "steer 1\nset \n"
    assert "stats_split" in labels(text, len(text) - 1)
    text = "steer 1\n\n"
    got = labels(text, len(text) - 1)
    assert {"at", "rule", "param", "concept", "include", "set"} <= set(got)
    assert "suppress" not in got
    text = "steer 1\n# at layer \n"
    assert labels(text, len(text) - 1) == []


def test_completion_setting_values() -> None:
    text = "steer 1\nset stats_images = \n"
    start, items = F.completions_at(text, len(text) - 1)
    assert [c.label for c in items] == ['"clean"', '"attacked"', '"both"']
    assert start == len(text) - 1 and items[0].detail == "stats_images (default)"
    # the inserted value compiles
    assert compile_text(text[:start] + items[2].label + "\n").ir is not None
    text = "steer 1\nset batch_size = \n"  # numbers: no list to offer
    assert '"clean"' not in labels(text, len(text) - 1)


def test_attack_columns_complete_and_hover_when_statistics_see_attacked_copies() -> None:
    text = "steer 1\ndataset shapes\nconcept w = \n"
    assert "attacked" not in labels(text, len(text) - 1)
    text = 'steer 1\ndataset shapes\nset stats_images = "both"\nconcept w = \n'
    assert {"label", "attacked", "attack", "attack_name"} <= set(labels(text, len(text) - 1))
    text = text.replace("concept w = ", "concept w = attacked == 1")
    h = F.hover_at(text, at(text, "attacked =", 2))
    assert h is not None and "column `attacked`" in h.markdown


# ------------------------------------------------------------------------------ definition


def test_definition_of_param_and_concept_uses() -> None:
    (t,) = F.definition_at(RECIPE, at(RECIPE, "thr\n", 1))
    assert t.path is None and RECIPE[t.start : t.end] == "thr"
    assert t.start == at(RECIPE, "thr =")
    (t,) = F.definition_at(RECIPE, at(RECIPE, "water) by", 2))
    assert RECIPE[t.start : t.end] == "water" and t.start == at(RECIPE, "water =")
    assert F.definition_at(RECIPE, at(RECIPE, "suppress")) == []


def test_definition_of_include_and_included_names(tmp_path: Path) -> None:
    common = tmp_path / "common.steer"
    common.write_text("steer 1\nparam thr = 0.3\nconcept water = place == 1\n")
    root = tmp_path / "root.steer"
    text = 'steer 1\ndataset waterbirds\ninclude "common.steer"\nat layer 7 suppress features where corr(water) > thr\n'
    (t,) = F.definition_at(text, at(text, "common.steer", 2), str(root))
    assert t.path == str(common)
    (t,) = F.definition_at(text, at(text, "thr\n", 1), str(root))
    assert t.path == str(common) and t.line == 2


def test_references_of_param() -> None:
    refs = F.references_at(RECIPE, at(RECIPE, "thr ="))
    assert [RECIPE[a:b] for a, b in refs] == ["thr", "thr"]
    assert len(F.references_at(RECIPE, at(RECIPE, "thr ="), include_declaration=False)) == 1


# ------------------------------------------------------------------------------ symbols, format


def test_document_symbols() -> None:
    syms = F.symbols_for(RECIPE)
    assert [(s.kind, s.name) for s in syms] == [
        ("recipe", "wb"),
        ("concept", "water"),
        ("param", "thr"),
        ("rule", "rule_1"),
        ("rule", "keep"),
    ]
    lsp = F.lsp_symbols(doc_of(RECIPE))
    for s in lsp:
        r, sel = s.range, s.selection_range
        assert (r.start.line, r.start.character) <= (sel.start.line, sel.start.character)
        assert (sel.end.line, sel.end.character) <= (r.end.line, r.end.character)
    assert lsp[-1].kind == types.SymbolKind.Function


def test_format_edits_reproduce_steer_fmt() -> None:
    messy = (
        "steer 1\n# keep me\nparam   thr=0.3\nat layer 7 suppress features where "
        "corr(water)>thr   # trailing\nconcept water = place==1\n"
    )
    edits = F.format_edits(messy)
    assert edits
    assert apply_edits(messy, edits) == format_text(messy)
    # line-granular: the untouched first two lines are not rewritten
    assert all(s >= len("steer 1\n# keep me\n") for s, _, _ in edits)
    assert F.format_edits(format_text(messy)) == []
    assert F.format_edits("steer 1\nat layer suppress\n") is None  # syntax error: no edits
    doc = doc_of(messy)
    lsp = F.lsp_format(doc)
    assert lsp is not None and len(lsp) == len(edits)


# ------------------------------------------------------------------------------ robustness

_pieces = st.sampled_from(
    [
        "steer 1\n",
        "at layer 7 ",
        "suppress ",
        "features where ",
        "corr(",
        "water",
        ")",
        " > ",
        "0.3",
        "thr",
        "param thr = 0.3\n",
        "concept water = place == 1\n",
        "\n",
        "\r\n",
        '"',
        "#",
        "🌊",
        "水",
        "(",
        "..",
        ",",
        "mean-ablate ",
        'include "x.steer"\n',
        "set ",
        "tokens ",
        "site ",
        "rule r: ",
        "top 3 features by ",
        "not ",
        "-",
    ]
)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.lists(st.one_of(_pieces, st.text(max_size=3)), max_size=25).map("".join),
    st.floats(0, 1),
)
def test_pure_functions_never_raise(text: str, where: float) -> None:
    offset = round(where * len(text))
    doc = doc_of(text)
    F.lsp_diagnostics(doc)
    F.hover_at(text, offset)
    F.completions_at(text, offset)
    F.definition_at(text, offset)
    F.references_at(text, offset)
    F.symbols_for(text)
    edits = F.format_edits(text)
    if edits is not None:
        assert apply_edits(text, edits) == format_text(text)
    p = doc.index.position_of(offset)
    pos = types.Position(p.line, p.character)
    F.lsp_hover(doc, pos)
    F.lsp_completion(doc, pos)
    F.lsp_code_actions(doc, types.Range(pos, pos))
    F.lsp_symbols(doc)
