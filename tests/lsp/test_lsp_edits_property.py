"""Random edit sequences: after any burst of incremental and full changes, the server's text
equals the client's, its last published diagnostics are `compile_text`'s on the final text
(positions in UTF-16), and it is still answering.

The hypothesis part drives the real server object in-process (pygls dispatch, our handlers and
debouncing, serialised JSON output); a few seeded sequences go through the subprocess too.
"""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_harness import (
    FRAGMENTS,
    SEED_RECIPES,
    InProcessServer,
    expected_diagnostics,
    lsp_position,
    published_as_tuples,
)

URI = "untitled:prop.steer"


def _safe_offset(text: str, offset: int) -> int:
    """Clients never address the middle of a CRLF; move such an offset to the line end."""
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        return offset - 1
    return offset


def make_change(
    text: str, a: int, b: int, new: str, encoding: str = "utf-16"
) -> tuple[str, dict[str, Any]]:
    """Apply one edit to the client's model text; return the new text and the LSP change."""
    a, b = sorted((_safe_offset(text, a), _safe_offset(text, b)))
    (sl, sc), (el, ec) = lsp_position(text, a, encoding), lsp_position(text, b, encoding)
    change = {
        "range": {
            "start": {"line": sl, "character": sc},
            "end": {"line": el, "character": ec},
        },
        "text": new,
    }
    return text[:a] + new + text[b:], change


# One step: a list of changes sent in one didChange (applied in order), or a full replacement.
change_st = st.tuples(
    st.floats(0, 1), st.floats(0, 1), st.lists(st.sampled_from(FRAGMENTS), max_size=4)
)
step_st = st.one_of(
    st.lists(change_st, min_size=1, max_size=3).map(lambda cs: ("incremental", cs)),
    st.sampled_from(SEED_RECIPES).map(lambda t: ("full", t)),
)


async def run_script(
    seed: str, steps: list[tuple[str, Any]], yields: list[bool], debounce_s: float
) -> None:
    srv = InProcessServer(debounce_s=debounce_s)
    await srv.initialize()
    srv.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": URI, "languageId": "steer", "version": 1, "text": seed}},
    )
    text = seed
    version = 1
    for i, (kind, payload) in enumerate(steps):
        version += 1
        if kind == "full":
            text = payload
            changes = [{"text": payload}]
        else:
            changes = []
            for fa, fb, frags in payload:
                n = len(text)
                text, ch = make_change(text, round(fa * n), round(fb * n), "".join(frags))
                changes.append(ch)
        srv.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": URI, "version": version}, "contentChanges": changes},
        )
        if yields[i % len(yields)]:
            await asyncio.sleep(0)  # let a pending check run between some edits
    await srv.settle()

    doc = srv.server.store.get(URI)
    assert doc is not None and doc.text == text
    published = srv.published(URI)
    assert published, "no diagnostics were published"
    last = published[-1]
    assert last["version"] == version
    assert published_as_tuples(last) == expected_diagnostics(text)
    # versions only move forward, and nothing was published for a text that never existed
    versions = [p["version"] for p in published]
    assert versions == sorted(versions)
    # still alive, and no handler failed along the way
    end = lsp_position(text, len(text))
    hover = await srv.request(
        "textDocument/hover",
        {"textDocument": {"uri": URI}, "position": {"line": end[0], "character": end[1]}},
    )
    assert hover is None or "contents" in hover
    await srv.request(
        "textDocument/completion",
        {"textDocument": {"uri": URI}, "position": {"line": end[0], "character": end[1]}},
    )
    assert srv.log_errors() == []


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.sampled_from(SEED_RECIPES),
    steps=st.lists(step_st, min_size=1, max_size=8),
    yields=st.lists(st.booleans(), min_size=1, max_size=4),
    debounce_s=st.sampled_from([0.0, 0.002]),
)
def test_random_edit_sequences_in_process(
    seed: str, steps: list[tuple[str, Any]], yields: list[bool], debounce_s: float
) -> None:
    asyncio.run(run_script(seed, steps, yields, debounce_s))


def test_burst_of_edits_publishes_once_for_the_final_version() -> None:
    """Debouncing: twenty edits with no pause cost one check, for the last version."""

    async def go() -> None:
        srv = InProcessServer(debounce_s=0.005)
        await srv.initialize()
        srv.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": URI, "languageId": "steer", "version": 1, "text": ""}},
        )
        text = ""
        for v in range(2, 22):
            text, ch = make_change(text, len(text), len(text), "steer 1\n" if v == 2 else "x")
            srv.notify(
                "textDocument/didChange",
                {"textDocument": {"uri": URI, "version": v}, "contentChanges": [ch]},
            )
        await srv.settle()
        versions = [p["version"] for p in srv.published(URI)]
        assert versions == [21]
        assert published_as_tuples(srv.published(URI)[-1]) == expected_diagnostics(text)

    asyncio.run(go())


# ----------------------------------------------------------------------------- end to end


async def _e2e(client: Any, encoding: str) -> None:
    from lsprotocol import types
    from test_lsp_server_e2e import diagnostics_for

    rng = random.Random(1234)
    for k in range(3):
        uri = f"untitled:e2e{k}.steer"
        text = SEED_RECIPES[k % 2]
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="steer", version=1, text=text
                )
            )
        )
        version = 1
        for _ in range(25):  # a burst: no waiting between edits
            version += 1
            n = len(text)
            text, ch = make_change(
                text,
                rng.randint(0, n),
                rng.randint(0, n),
                "".join(rng.sample(FRAGMENTS, 2)),
                encoding,
            )
            r = ch["range"]
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(
                                types.Position(**r["start"]), types.Position(**r["end"])
                            ),
                            text=ch["text"],
                        )
                    ],
                )
            )
        diags = await diagnostics_for(client, uri, version)
        got = [
            (
                d.code,
                (d.range.start.line, d.range.start.character),
                (d.range.end.line, d.range.end.character),
                d.message.split("\n", 1)[0],
            )
            for d in diags
        ]
        assert got == expected_diagnostics(text, encoding=encoding), (repr(text), got)


def test_random_edit_bursts_end_to_end() -> None:
    """Three seeded bursts of 25 incremental edits through `python -m steerlang lsp`, with a
    client (neovim's capabilities) that negotiates UTF-8 positions."""
    import pytest_lsp  # noqa: F401  (plugin provides the client machinery)
    from lsprotocol import types
    from pytest_lsp import ClientServerConfig, client_capabilities
    from test_lsp_server_e2e import _recording_client

    async def go() -> None:
        config = ClientServerConfig(
            server_command=[sys.executable, "-m", "steerlang", "lsp"],
            client_factory=_recording_client,
        )
        client = await config.start()
        try:
            init = await client.initialize_session(
                types.InitializeParams(capabilities=client_capabilities("neovim"))
            )
            encoding = str(init.capabilities.position_encoding)
            assert encoding == "utf-8"  # neovim prefers it and the server supports it
            await _e2e(client, encoding)
        finally:
            await asyncio.wait_for(client.shutdown_session(), 20)
            await client.stop()

    asyncio.run(go())
