"""Issue "Bounded", the language server's half: checks run off the event loop, a check
superseded by a newer edit is dropped, every request is answered (an unreadable one with a
JSON-RPC error), and the answer to an edit costs time linear in the document."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsp_harness import InProcessServer

from steerlang.lsp.documents import Document

H = "steer 1\nconcept c = place == 1\n"


def _open(srv: InProcessServer, uri: str, text: str, version: int = 1) -> None:
    srv.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "steer", "version": version, "text": text}},
    )


def _replace(srv: InProcessServer, uri: str, text: str, version: int) -> None:
    srv.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
    )


def _hover(line: Any, character: Any) -> dict[str, Any]:
    return {
        "textDocument": {"uri": "untitled:a"},
        "position": {"line": line, "character": character},
    }


@pytest.mark.parametrize(
    "params",
    [
        _hover(-1, 0),
        _hover(0, -5),
        _hover("one", 0),
        _hover(None, 0),
        {"position": {"line": 0, "character": 0}},
    ],
)
async def test_invalid_params_get_an_error_reply(params: dict[str, Any]) -> None:
    srv = InProcessServer()
    await srv.initialize()
    _open(srv, "untitled:a", H)
    await srv.settle()
    with pytest.raises(RuntimeError) as err:
        await srv.request("textDocument/hover", params, timeout=10)
    assert err.value.args[0]["code"] == -32602
    assert "textDocument/hover" in err.value.args[0]["message"]
    # the server goes on answering (an unknown document is answered too, with nothing)
    assert await srv.request("textDocument/hover", _hover(1, 9)) is not None
    odd = {"textDocument": {"uri": 7}, "position": {"line": 0, "character": 0}}
    assert await srv.request("textDocument/hover", odd) is None


async def test_checks_run_off_the_event_loop_and_superseded_ones_are_dropped() -> None:
    srv = InProcessServer()
    server = srv.server
    await srv.initialize()
    started = threading.Event()
    release = threading.Event()
    real = server._diagnostics_of

    def slow(snap: Document) -> Any:
        if snap.version == 1:
            started.set()
            release.wait(20)  # a long check of version 1
        return real(snap)

    server._diagnostics_of = slow  # type: ignore[method-assign]
    _open(srv, "untitled:a", H + "at layer 1 suppress features where corr(c) > 0.1\n")
    await asyncio.sleep(0)
    for _ in range(200):
        if started.is_set():
            break
        await asyncio.sleep(0.01)
    assert started.is_set()
    # The loop still answers requests while version 1 is being checked ...
    t0 = time.perf_counter()
    assert await srv.request("textDocument/hover", _hover(1, 9), timeout=10) is not None
    assert time.perf_counter() - t0 < 10
    # ... and an edit supersedes the running check: version 1 is never published.
    _replace(srv, "untitled:a", H + "at layer 1 suppress features where corr(x) > 0.1\n", 2)
    release.set()
    await srv.settle()
    published = srv.published("untitled:a")
    assert [p["version"] for p in published] == [2]
    assert [d["code"] for d in published[0]["diagnostics"]] == ["E101"]
    assert server.dropped_checks == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
async def test_server_refuses_special_includes(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.steer")
    (tmp_path / "zero.steer").symlink_to("/dev/zero")
    (tmp_path / "self").symlink_to(".")
    root = tmp_path / "a.steer"
    text = (
        'steer 1\ninclude "fifo.steer"\ninclude "zero.steer"\n'
        'include "self/a.steer"\ninclude "self/self/a.steer"\n'
    )
    root.write_text(text)
    srv = InProcessServer()
    await srv.initialize(root_uri=tmp_path.as_uri())
    _open(srv, root.as_uri(), text)
    await srv.settle()
    codes = [d["code"] for d in srv.published(root.as_uri())[-1]["diagnostics"]]
    assert codes == ["E113", "E112", "E107", "E107"], codes  # /dev/zero: outside


UNITS = [
    "at layer 1 suppress features where " + "(" * 9,
    "at layer suppress",
    "at layer 3 suppress feature {i}",
    "@@ (( garbage",
]


async def _answer_time(text: str, repeat: int = 3) -> float:
    """Seconds from a full-text edit to the diagnostics of its version (best of `repeat`)."""
    srv = InProcessServer()
    await srv.initialize()
    _open(srv, "untitled:a", "steer 1\n")
    await srv.settle()
    best = float("inf")
    for k in range(repeat):
        version = 2 + k
        t0 = time.perf_counter()
        _replace(srv, "untitled:a", text + f"# edit {k}\n", version)
        await srv.settle()
        best = min(best, time.perf_counter() - t0)
        assert srv.published("untitled:a")[-1]["version"] == version
    return best


@settings(max_examples=len(UNITS), deadline=None, derandomize=True)
@given(st.sampled_from(UNITS))
def test_answer_to_an_edit_grows_linearly(unit: str) -> None:
    """The server's answer to an edit of an n-line document and of a 16n-line one: the ratio
    of the times (same process) stays near 16, far from quadratic (256)."""

    def make(n: int) -> str:
        return H + "".join(unit.format(i=i) + "\n" for i in range(n))

    small = asyncio.run(_answer_time(make(40)))
    large = asyncio.run(_answer_time(make(40 * 16)))
    assert large <= 48 * max(small, 0.005), (small, large)
