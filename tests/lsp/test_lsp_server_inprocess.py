"""Server behaviour that needs several documents or initialization options, in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsp_harness import InProcessServer


def _open(srv: InProcessServer, uri: str, text: str, version: int = 1) -> None:
    srv.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "steer", "version": version, "text": text}},
    )


def test_unsaved_include_buffer_is_used_and_dependents_recheck(tmp_path: Path) -> None:
    common = tmp_path / "common.steer"
    common.write_text("steer 1\nparam thr = 0.3\n", encoding="utf-8")
    root = tmp_path / "root.steer"
    root_text = 'steer 1\ninclude "common.steer"\nat layer 7 suppress features where id() > thr\n'
    root.write_text(root_text, encoding="utf-8")

    async def go() -> None:
        srv = InProcessServer()
        await srv.initialize()
        _open(srv, root.as_uri(), root_text)
        await srv.settle()
        assert srv.published(root.as_uri())[-1]["diagnostics"] == []
        # Open the included file and rename its param without saving: the root now has an
        # unknown name, from the buffer, not from the disk.
        _open(srv, common.as_uri(), "steer 1\nparam thr = 0.3\n")
        await srv.settle()
        srv.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": common.as_uri(), "version": 2},
                "contentChanges": [{"text": "steer 1\nparam limit = 0.3\n"}],
            },
        )
        await srv.settle()
        codes = [d["code"] for d in srv.published(root.as_uri())[-1]["diagnostics"]]
        assert codes == ["E103"], codes  # unknown name `thr`
        assert common.read_text(encoding="utf-8") == "steer 1\nparam thr = 0.3\n"
        assert srv.log_errors() == []

    asyncio.run(go())


def test_initialization_options_set_layer_range() -> None:
    text = "steer 1\nat layer 7 suppress feature 3\n"

    async def go(opts: dict[str, int]) -> list[str]:
        srv = InProcessServer()
        await srv.initialize(**opts)
        _open(srv, "untitled:a", text)
        await srv.settle()
        return [d["code"] for d in srv.published("untitled:a")[-1]["diagnostics"]]

    assert asyncio.run(go({})) == []
    codes = asyncio.run(go({"nLayers": 4}))
    assert codes and codes[0].startswith("E2"), codes


def test_closing_a_document_clears_its_diagnostics() -> None:
    async def go() -> None:
        srv = InProcessServer()
        await srv.initialize()
        _open(srv, "untitled:b", "steer 1\nat layer 7 supress features\n")
        await srv.settle()
        assert srv.published("untitled:b")[-1]["diagnostics"]
        srv.notify("textDocument/didClose", {"textDocument": {"uri": "untitled:b"}})
        await srv.settle()
        assert srv.published("untitled:b")[-1]["diagnostics"] == []
        assert srv.server.store.get("untitled:b") is None

    asyncio.run(go())
