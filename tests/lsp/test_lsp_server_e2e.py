"""End to end: `python -m steerlang lsp` as a subprocess, driven by pytest-lsp's client."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from steerlang.lang.api import compile_text, format_text
from steerlang.lsp.positions import LineIndex

RECIPE = """steer 1
recipe wb "🌊 remove the background shortcut"
model default
dataset waterbirds
concept water = place == 1
param thr = 0.3
at layer 7 suppress features where promotes("水🌊") < 1 and corr(watr) > thr
rule keep: at layers 5..8 tokens patches scael top 10 features by corr(water) by 0.5
"""


def _recording_client() -> LanguageClient:
    """pytest-lsp's client, also keeping every publishDiagnostics with its version, so a test
    can wait for the diagnostics of a given document version without racing."""
    client = make_test_lsp_client()
    client.published = []  # type: ignore[attr-defined]
    default = client.protocol.fm.features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

    def record(params: types.PublishDiagnosticsParams) -> None:
        client.published.append(params)  # type: ignore[attr-defined]
        default(params)  # registered handlers are already bound to the client

    client.protocol.fm.features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = record
    return client


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "steerlang", "lsp"],
        client_factory=_recording_client,
    ),
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=None,
        )
    )
    yield
    await lsp_client.shutdown_session()


async def diagnostics_for(
    client: LanguageClient, uri: str, version: int, timeout: float = 20.0
) -> list[types.Diagnostic]:
    async def wait() -> list[types.Diagnostic]:
        while True:
            for p in reversed(client.published):  # type: ignore[attr-defined]
                if p.uri == uri and p.version == version:
                    return list(p.diagnostics)
            await asyncio.sleep(0.005)

    return await asyncio.wait_for(wait(), timeout)


def pos(text: str, marker: str, delta: int = 0) -> types.Position:
    off = text.index(marker) + delta
    p = LineIndex(text).position_of(off)
    return types.Position(p.line, p.character)


def apply(text: str, edits: list[types.TextEdit]) -> str:
    idx = LineIndex(text)
    spans = [
        (
            idx.offset_of(e.range.start.line, e.range.start.character),
            idx.offset_of(e.range.end.line, e.range.end.character),
            e.new_text,
        )
        for e in edits
    ]
    for a, b, new in sorted(spans, reverse=True):
        text = text[:a] + new + text[b:]
    return text


def open_doc(client: LanguageClient, uri: str, text: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="steer", version=1, text=text)
        )
    )


async def test_session_features(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "wb.steer"
    path.write_text(RECIPE, encoding="utf-8")
    uri = path.as_uri()
    open_doc(client, uri, RECIPE)

    # --- diagnostics after open: the same codes as `steer check`, UTF-16 columns
    diags = await diagnostics_for(client, uri, 1)
    expected = compile_text(RECIPE, str(path)).diagnostics
    assert [d.code for d in diags] == [d.code for d in expected]
    assert {"E101", "E003"} <= {d.code for d in diags}
    e101 = next(d for d in diags if d.code == "E101")
    assert e101.range.start == pos(RECIPE, "watr")
    line = RECIPE.splitlines()[e101.range.start.line]
    assert e101.range.start.character == line.index("watr") + 1  # the emoji counts twice

    # --- code actions: one quick fix per did-you-mean; applying them cleans the file
    whole = types.Range(types.Position(0, 0), types.Position(len(RECIPE.splitlines()), 0))
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=whole,
            context=types.CodeActionContext(diagnostics=diags),
        )
    )
    assert actions is not None and len(actions) == 2
    fixed = RECIPE
    for a in sorted(actions, key=lambda a: a.title):  # type: ignore[union-attr]
        assert isinstance(a, types.CodeAction) and a.kind == types.CodeActionKind.QuickFix
        assert a.edit is not None and a.edit.changes is not None
        fixed = apply(fixed, a.edit.changes[uri])
    assert compile_text(fixed, str(path)).ok

    # --- an incremental edit: fix `watr` only; E101 goes, E003 stays
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(pos(RECIPE, "watr"), pos(RECIPE, "watr", 4)),
                    text="water",
                )
            ],
        )
    )
    text2 = RECIPE.replace("watr", "water")
    diags2 = await diagnostics_for(client, uri, 2)
    assert [d.code for d in diags2] == [d.code for d in compile_text(text2).diagnostics]
    assert "E101" not in {d.code for d in diags2}

    # --- a full-document change to the fixed text: no errors left
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)],
        )
    )
    diags3 = await diagnostics_for(client, uri, 3)
    assert not [d for d in diags3 if d.severity == types.DiagnosticSeverity.Error]

    # --- hover
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=pos(fixed, "corr(water) > thr", 2),
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert "Pearson correlation" in hover.contents.value
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=pos(fixed, "thr\n", 1)
        )
    )
    assert hover is not None and "param `thr`" in hover.contents.value  # type: ignore[union-attr]

    # --- completion at several cursors
    async def complete(p: types.Position) -> list[str]:
        res = await client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=p)
        )
        assert isinstance(res, types.CompletionList)
        return [i.label for i in res.items]

    after_scope = await complete(pos(fixed, "suppress features where promotes"))
    assert {"suppress", "clamp", "scale", "site", "tokens"} <= set(after_scope)
    in_pred = await complete(pos(fixed, "corr(water) > thr"))
    assert {"water", "thr", "corr", "freq", "not"} <= set(in_pred)
    layers = await complete(pos(fixed, "5..8"))
    assert layers[:12] == [str(i) for i in range(12)]
    tokens = await complete(pos(fixed, "patches"))
    assert {"all", "cls", "patches"} <= set(tokens)

    # --- definition: a param use jumps to its declaration
    locs = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=pos(fixed, "thr\n", 1)
        )
    )
    assert isinstance(locs, list) and len(locs) == 1
    assert locs[0].uri == uri and locs[0].range.start == pos(fixed, "thr =")

    # --- document symbols
    syms = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert syms is not None
    assert [s.name for s in syms] == ["wb", "water", "thr", "rule_1", "keep"]

    # --- formatting: the same result as `steer fmt`
    messy = fixed.replace("param thr = 0.3", "param   thr=0.3   # threshold")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=4),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=messy)],
        )
    )
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert edits
    assert apply(messy, edits) == format_text(messy)


async def test_server_survives_hostile_text(client: LanguageClient) -> None:
    uri = "untitled:hostile"
    hostile = "\x00\ufeff(((((((" + "not " * 3000 + "\n\r\r\n\u2028🌊" + '"' * 7 + "\n" * 3
    open_doc(client, uri, hostile)
    diags = await diagnostics_for(client, uri, 1)
    assert diags  # errors, not a crash
    for p in (types.Position(0, 3), types.Position(99, 99), types.Position(1, 1)):
        await client.text_document_hover_async(
            types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=p)
        )
        await client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=p)
        )
    # A change whose range is past the end of the text clamps instead of failing.
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(500, 0), types.Position(900, 4)),
                    text="steer 1\n",
                )
            ],
        )
    )
    assert await diagnostics_for(client, uri, 2)
    # Still serving.
    ok_uri = "untitled:ok"
    open_doc(client, ok_uri, "steer 1\nat layer 7 suppress feature 3\n")
    assert await diagnostics_for(client, ok_uri, 1) == []


def test_server_module_does_not_import_torch() -> None:
    import subprocess

    code = (
        "import sys, steerlang.lsp.server, steerlang.lsp.features; "
        "from steerlang.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
