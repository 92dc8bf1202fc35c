"""Server behaviour that needs several documents or initialization options, in-process."""

from __future__ import annotations

import asyncio
import json
import os
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


def test_edit_reparses_only_the_changed_line() -> None:
    """The server keeps parsed lines across versions (steerlang.lang.incremental): after a
    one-line edit in a 60-line recipe it parses that line alone, and still publishes exactly
    `steer check`'s diagnostics."""
    from lsp_harness import expected_diagnostics, published_as_tuples

    lines = ["steer 1", "concept water = place == 1"] + [
        f"rule r{i}: at layer {i % 12} suppress features where corr(water) > 0.{1 + i % 9}"
        for i in range(60)
    ]
    text = "\n".join(lines) + "\n"
    uri = "untitled:big"

    async def go() -> None:
        srv = InProcessServer()
        await srv.initialize()
        _open(srv, uri, text)
        await srv.settle()
        doc = srv.server.store.get(uri)
        assert doc is not None
        before = (doc.parse_cache.hits, doc.parse_cache.misses)
        edited = lines[30].replace("suppress", "supress")
        change = {
            "range": {
                "start": {"line": 30, "character": 0},
                "end": {"line": 30, "character": len(lines[30])},
            },
            "text": edited,
        }
        srv.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [change]},
        )
        await srv.settle()
        new_text = text.replace(lines[30], edited)
        last = srv.published(uri)[-1]
        assert last["version"] == 2
        assert published_as_tuples(last) == expected_diagnostics(new_text)
        assert [d[0] for d in published_as_tuples(last)] == ["E003"]
        assert doc.parse_cache.misses - before[1] == 1
        # every other body line, and the empty one after the final newline
        assert doc.parse_cache.hits - before[0] == len(lines) - 1

    asyncio.run(go())


def test_warm_up_freezes_start_up_objects() -> None:
    """`steer lsp` checks a tiny recipe at start-up and freezes what is alive then, so full
    garbage collections stop walking the parser tables and schemas during typing."""
    import gc

    from steerlang.lsp.server import warm_up

    try:
        warm_up()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_includes_are_confined_to_the_workspace_folder(tmp_path: Path) -> None:
    """Issue 14, item 7: the server checks whatever recipe is opened, on every keystroke, so
    its includes may reach anywhere in the workspace folder but not outside it, and a file
    that is not a recipe is never quoted."""
    ws = tmp_path / "ws"
    (ws / "recipes").mkdir(parents=True)
    (ws / "common.steer").write_text("steer 1\nparam thr = 0.3\n", encoding="utf-8")
    (tmp_path / "outside.steer").write_text("steer 1\nparam thr = 0.3\n", encoding="utf-8")
    (ws / "secret.steer").write_text("API_TOKEN=lsp-secret-value\n", encoding="utf-8")
    os.mkfifo(ws / "pipe.steer")
    use = "at layer 7 suppress features where id() > thr\n"
    texts = {
        "in_ws.steer": f'steer 1\ninclude "../common.steer"\n{use}',
        "out_ws.steer": f'steer 1\ninclude "../../outside.steer"\n{use}',
        "secret.steer": f'steer 1\ninclude "../secret.steer"\n{use}',
        "pipe.steer": f'steer 1\ninclude "../pipe.steer"\n{use}',
    }

    async def go(**opts: object) -> dict[str, list[dict]]:
        srv = InProcessServer()
        await srv.initialize(root_uri=ws.as_uri(), **opts)
        for name, text in texts.items():
            path = ws / "recipes" / name
            path.write_text(text, encoding="utf-8")
            _open(srv, path.as_uri(), text)
        await srv.settle()
        assert srv.log_errors() == []
        return {
            name: srv.published((ws / "recipes" / name).as_uri())[-1]["diagnostics"]
            for name in texts
        }

    got = asyncio.run(asyncio.wait_for(go(), 60))
    assert got["in_ws.steer"] == []  # outside the recipe's folder, inside the workspace
    codes = {name: [d["code"] for d in diags] for name, diags in got.items()}
    assert "E112" in codes["out_ws.steer"]
    assert "E114" in codes["secret.steer"]
    assert "E113" in codes["pipe.steer"]
    assert "lsp-secret-value" not in json.dumps(got)
    got = asyncio.run(asyncio.wait_for(go(allowIncludeOutside=True), 60))
    assert got["out_ws.steer"] == [] and got["in_ws.steer"] == []
    assert "E114" in [d["code"] for d in got["secret.steer"]]
