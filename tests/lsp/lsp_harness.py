"""Drive the real server object in-process: JSON-RPC messages go through pygls's own
deserialisation and dispatch, responses and notifications are captured from its writer.

This is the same path `steer lsp` takes minus the pipes, so property tests can run hundreds of
edit sequences in seconds; a few end-to-end tests cover the subprocess with pytest-lsp.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from steerlang.lsp.server import SteerLanguageServer, build_server


class InProcessServer:
    def __init__(self, *, debounce_s: float = 0.0) -> None:
        self.server: SteerLanguageServer = build_server(debounce_s=debounce_s)
        self._buf = bytearray()
        self.server.protocol.set_writer(self)
        self._next_id = 0
        self.messages: list[dict[str, Any]] = []

    # pygls writer interface
    def write(self, data: bytes) -> None:
        self._buf += data
        self._drain_buffer()

    def close(self) -> None:  # pragma: no cover - pygls calls it on shutdown
        pass

    def _drain_buffer(self) -> None:
        while True:
            head_end = self._buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            headers = self._buf[:head_end].decode("ascii").split("\r\n")
            length = next(
                int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length")
            )
            body_start = head_end + 4
            if len(self._buf) < body_start + length:
                return
            body = bytes(self._buf[body_start : body_start + length])
            del self._buf[: body_start + length]
            self.messages.append(json.loads(body.decode("utf-8")))

    def _dispatch(self, payload: dict[str, Any]) -> None:
        proto = self.server.protocol
        msg = json.loads(json.dumps(payload), object_hook=proto.structure_message)
        proto.handle_message(msg)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._dispatch({"jsonrpc": "2.0", "method": method, "params": params})

    async def request(self, method: str, params: dict[str, Any], timeout: float = 10.0) -> Any:
        self._next_id += 1
        rid = self._next_id
        self._dispatch({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for m in self.messages:
                if m.get("id") == rid and ("result" in m or "error" in m):
                    if "error" in m:
                        raise RuntimeError(m["error"])
                    return m["result"]
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no response to {method}")
            await asyncio.sleep(0)

    async def initialize(self, root_uri: str | None = None, **init_options: Any) -> dict[str, Any]:
        res = await self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root_uri,
                "capabilities": {},
                "initializationOptions": init_options or None,
            },
        )
        self.notify("initialized", {})
        return res

    async def settle(self) -> None:
        """Let every scheduled check run and publish."""
        for _ in range(3):
            await asyncio.sleep(0)
            await self.server.drain()

    def published(self, uri: str) -> list[dict[str, Any]]:
        return [
            m["params"]
            for m in self.messages
            if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
        ]

    def log_errors(self) -> list[str]:
        return [
            m["params"]["message"]
            for m in self.messages
            if m.get("method") == "window/logMessage" and m["params"]["type"] == 1
        ]


# --------------------------------------------------------------------------------------------
# Edit scripts for property tests, with an LSP position model independent of steerlang.lsp
# --------------------------------------------------------------------------------------------

SEED_RECIPES = [
    'steer 1\nrecipe wb "水鳥 🌊"\ndataset waterbirds\nconcept water = place == 1\n'
    "param thr = 0.3\nat layer 7 suppress features where corr(water) > thr\n",
    "steer 1\nat layers 5..8 tokens patches scale top 10 features by corr(land) by 0.5\r\n"
    "rule r: at layer 11 clamp feature 1234 to 20  # 🌊 note\r\n",
    'steer 1\nrule 🌊: at layer 7 supress features where promotes("🌊水") > corr(watr)  # 🌊\n'
    'at layer 3 scale features where promotes("🌊🌊") > 0 and corr(x) > 1 by 2 # 水🌊\n',
    "",
]

FRAGMENTS = [
    "steer 1\n",
    "at layer 7 ",
    "suppress",
    "supress",
    "features",
    " where ",
    "corr(",
    "water",
    "watr",
    ")",
    "(",
    " > ",
    "0.3",
    "thr",
    "param thr = 0.3\n",
    "concept ",
    " = ",
    "place == 1",
    "\n",
    "\r\n",
    "\r",
    " ",
    "#",
    '"',
    "🌊",
    "水",
    "\u2028",
    "\x0c",
    "..",
    ",",
    "mean-ablate",
    "top 5 features by ",
    "not ",
    "and ",
    'include "missing.steer"\n',
]


def lsp_position(text: str, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
    """(line, column) of a code-point offset, by brute force: lines end at \\r\\n, \\r or
    \\n (LSP), columns count the code units (UTF-16 unless negotiated) of the line's prefix."""
    import re as _re

    line = 0
    line_start = 0
    content_end = len(text)
    for m in _re.finditer(r"\r\n|\r|\n", text):
        if m.end() > offset:
            content_end = m.start()  # an offset inside a line break is the end of the line
            break
        line += 1
        line_start = m.end()
    prefix = text[line_start : min(offset, content_end)]
    if encoding == "utf-8":
        return line, len(prefix.encode("utf-8"))
    if encoding == "utf-32":
        return line, len(prefix)
    return line, len(prefix.encode("utf-16-le")) // 2


def expected_diagnostics(
    text: str, path: str | None = None, encoding: str = "utf-16"
) -> list[tuple[str, tuple, tuple, str]]:
    """(code, start, end, message) as the server must publish them for `text`: compile_text's
    diagnostics with spans mapped through the brute-force position model."""
    from steerlang.lang.api import compile_text

    out = []
    for d in compile_text(text, path).diagnostics:
        if d.span is None:
            start = end = (0, 0)
        else:
            start = lsp_position(text, d.span.start, encoding)
            end = lsp_position(text, d.span.end, encoding)
        out.append((d.code, start, end, d.message + (f": {d.label}" if d.label else "")))
    return out


def published_as_tuples(params: dict[str, Any]) -> list[tuple[str, tuple, tuple, str]]:
    out = []
    for d in params["diagnostics"]:
        r = d["range"]
        out.append(
            (
                d["code"],
                (r["start"]["line"], r["start"]["character"]),
                (r["end"]["line"], r["end"]["character"]),
                d["message"].split("\n", 1)[0],
            )
        )
    return out
