"""`steer lsp`: a pygls 2 language server over the same library calls as `steer check`/`fmt`.

Everything the server answers comes from the pure functions in `steerlang.lsp.features`, which
work on (text, code-point offset); this module only translates LSP requests into those calls,
owns the open documents, and schedules diagnostics.

Scheduling: on a change, a per-document task is created unless one is already running; it
yields to the event loop (plus an optional `--debounce-ms`), then checks a snapshot of the
*current* text in a worker thread (one thread, so checks never run two at a time), so the event
loop keeps reading messages and answering requests while a long check runs. When the check
returns, the task publishes only if the document is still at the snapshot's version; a check
superseded by a newer edit is dropped and the task checks the newest text instead. So a
published set of diagnostics always matches the version it names, and a burst of edits
coalesces into one more check, not one per keystroke, without adding a fixed delay to the
single-edit latency (the default debounce is 0).

Robustness: every handler catches and logs, so no text (and no bug of ours) takes the server
down; the editor gets an empty answer and a `window/logMessage`. A request whose parameters
cannot be read (a negative position, a string where a number belongs) gets a JSON-RPC
"invalid params" error reply: pygls reads messages inside `json.loads`, and a message it cannot
read was dropped without any answer, leaving the client waiting forever.

This module must never import torch (the whole language layer is torch-free).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from steerlang.lsp import features
from steerlang.lsp.documents import Document, DocumentStore, EditorFiles
from steerlang.lsp.positions import Encoding
from steerlang.version import __version__

log = logging.getLogger("steerlang.lsp")

DEFAULT_DEBOUNCE_S = 0.0

T = TypeVar("T")


class _Unreadable:
    """A message that could not be read (already answered with an error if it was a request)."""

    jsonrpc = None


_UNREADABLE = _Unreadable()


class _Protocol(LanguageServerProtocol):
    """pygls's protocol without its own copy of each document: the server keeps the only copy
    (`DocumentStore`, LSP line semantics), so a bug or a slow path in the second copy can
    neither stop our handlers nor add latency to every keystroke. Requests it cannot read get
    an error reply (see the module docstring)."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except Exception as exc:
            rid = data.get("id") if isinstance(data, dict) else None
            if "method" in data and isinstance(rid, int | str) and not isinstance(rid, bool):
                code = getattr(exc, "code", -32602)
                what = getattr(exc, "message", "") or "Invalid Params"
                cause = exc.__cause__
                detail = f" ({type(cause).__name__})" if cause is not None else ""
                self._send_response(
                    rid,
                    error=types.ResponseError(
                        code=code, message=f"{what} for {data.get('method')}{detail}"
                    ),
                )
            return _UNREADABLE

    def handle_message(self, message: Any) -> Any:
        if message is _UNREADABLE:
            return None
        return super().handle_message(message)

    def _forward(self, method: str, params: Any) -> Any:
        if (user_handler := self.fm.features.get(method)) is not None:
            yield user_handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Any:
        return (yield from self._forward(types.TEXT_DOCUMENT_DID_OPEN, params))

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        return (yield from self._forward(types.TEXT_DOCUMENT_DID_CHANGE, params))

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Any:
        return (yield from self._forward(types.TEXT_DOCUMENT_DID_CLOSE, params))


class SteerLanguageServer(LanguageServer):
    """The steerlang server: open documents, debounced diagnostics, feature handlers."""

    def __init__(self, *, debounce_s: float = DEFAULT_DEBOUNCE_S) -> None:
        super().__init__(
            "steerlang",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=_Protocol,
        )
        self.store = DocumentStore()
        # Included files: open buffers first, includes confined to the workspace folder.
        self.read_file = EditorFiles(self.store, self.workspace_folders)
        self.debounce_s = debounce_s
        self.n_layers: int | None = None
        self._pending: dict[str, asyncio.Task[None]] = {}
        # Checks run here, one at a time, off the event loop (see the module docstring).
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="steer-check")
        self.dropped_checks = 0  # checks superseded by an edit while they ran (for tests)

    # ----------------------------------------------------------------------------- helpers

    @property
    def encoding(self) -> Encoding:
        try:
            enc = str(self.workspace.position_encoding)
        except Exception:
            return "utf-16"
        return enc if enc in ("utf-8", "utf-16", "utf-32") else "utf-16"  # type: ignore[return-value]

    def log_error(self, what: str) -> None:
        """Log the current exception and tell the client, without ever raising."""
        log.exception("steerlang lsp: %s failed", what)
        try:
            exc = sys.exc_info()[1]
            self.window_log_message(
                types.LogMessageParams(
                    type=types.MessageType.Error,
                    message=f"steerlang: {what} failed: {type(exc).__name__}: {exc}",
                )
            )
        except Exception:  # pragma: no cover - no client attached
            pass

    def workspace_folders(self) -> list[str]:
        """The paths of the client's workspace folders (and its root folder), if any."""
        try:
            ws = self.workspace
        except Exception:  # not initialised yet
            return []
        uris = [f.uri for f in ws.folders.values()]
        if ws.root_uri:
            uris.append(ws.root_uri)
        return [p for p in (_path_of(u) for u in uris) if p]

    def recheck_dependents(self, changed: Document) -> None:
        """Re-check open documents that include `changed` (their results are now stale)."""
        if changed.path is None:
            return
        want = os.path.normpath(os.path.abspath(changed.path))
        for doc in list(self.store.docs.values()):
            if doc is changed:
                continue
            for key, res in list(doc.cache.items()):
                if not key.startswith("compile:"):
                    continue
                files = {os.path.normpath(os.path.abspath(f)) for f in res.sources if f}
                if want in files:
                    doc.cache.clear()
                    self.schedule(doc.uri)
                    break

    def publish(self, doc: Document) -> None:
        diags = features.lsp_diagnostics(
            doc, n_layers=self.n_layers, encoding=self.encoding, read_file=self.read_file
        )
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=doc.uri, diagnostics=diags, version=doc.version)
        )

    def publish_safely(self, uri: str) -> None:
        doc = self.store.get(uri)
        if doc is None:
            return
        try:
            self.publish(doc)
        except Exception:
            self.log_error("checking the document")

    def schedule(self, uri: str) -> None:
        """Check `uri` soon, once; a task already waiting will see the newest text."""
        task = self._pending.get(uri)
        if task is not None and not task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.publish_safely(uri)
            return
        self._pending[uri] = loop.create_task(self._check_later(uri))

    def _diagnostics_of(self, snap: Document) -> list[types.Diagnostic]:
        """Runs in the checker thread, on a snapshot the loop never changes."""
        return features.lsp_diagnostics(
            snap, n_layers=self.n_layers, encoding=self.encoding, read_file=self.read_file
        )

    async def _check_later(self, uri: str) -> None:
        try:
            await asyncio.sleep(self.debounce_s)
            loop = asyncio.get_running_loop()
            while True:
                doc = self.store.get(uri)
                if doc is None:
                    return
                text, version = doc.text, doc.version
                # The snapshot shares the document's line cache (only checks use it, and they
                # run one at a time) but has its own per-version memo: an edit clears the
                # document's memo, and a stale result must not land in the new one.
                snap = Document(doc.uri, text, version, doc.path, parse_cache=doc.parse_cache)
                try:
                    diags = await loop.run_in_executor(self._checker, self._diagnostics_of, snap)
                except Exception:
                    self.log_error("checking the document")
                    return
                now = self.store.get(uri)
                if now is not doc or now.version != version or now.text is not text:
                    self.dropped_checks += 1
                    continue  # superseded while it ran: check the newest text instead
                for key, value in snap.cache.items():
                    doc.cache.setdefault(key, value)
                try:
                    self.text_document_publish_diagnostics(
                        types.PublishDiagnosticsParams(uri=uri, diagnostics=diags, version=version)
                    )
                except Exception:
                    self.log_error("publishing diagnostics")
                return
        finally:
            # Only forget ourselves: after a close and reopen the slot may hold a newer task.
            if self._pending.get(uri) is asyncio.current_task():
                del self._pending[uri]

    async def drain(self) -> None:
        """Wait until no check is pending (tests and shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending.values()), return_exceptions=True)


def _path_of(uri: str) -> str | None:
    if not uri.startswith("file:"):
        return None
    try:
        return to_fs_path(uri)
    except Exception:
        return None


def _guard(server: SteerLanguageServer, what: str, default: T) -> Callable[..., Any]:
    def deco(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except Exception:
                server.log_error(what)
                return default

        return wrapper

    return deco


def build_server(*, debounce_s: float = DEFAULT_DEBOUNCE_S) -> SteerLanguageServer:
    """A fresh server with every feature registered (used by `steer lsp` and by tests)."""
    server = SteerLanguageServer(debounce_s=debounce_s)
    _register_document_sync(server)
    _register_navigation(server)
    _register_fixes(server)
    return server


def _register_document_sync(server: SteerLanguageServer) -> None:
    """Start-up options and the open/change/close/save notifications that keep documents
    (and their diagnostics) current."""

    @server.feature(types.INITIALIZE)
    @_guard(server, "initialize", None)
    def initialize(ls: SteerLanguageServer, params: types.InitializeParams) -> None:
        opts = params.initialization_options
        if isinstance(opts, dict):
            n = opts.get("nLayers")
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                ls.n_layers = n
            d = opts.get("debounceMs")
            if isinstance(d, int | float) and not isinstance(d, bool) and d >= 0:
                ls.debounce_s = float(d) / 1000.0
            if opts.get("allowIncludeOutside") is True:
                ls.read_file.allow_include_outside = True

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @_guard(server, "didOpen", None)
    def did_open(ls: SteerLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        td = params.text_document
        ls.store.open(td.uri, td.text, td.version, _path_of(td.uri))
        ls.schedule(td.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @_guard(server, "didChange", None)
    def did_change(ls: SteerLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        changes: list[tuple[tuple[int, int] | None, tuple[int, int] | None, str]] = []
        for ch in params.content_changes:
            rng = getattr(ch, "range", None)
            if rng is None:
                changes.append((None, None, ch.text))
            else:
                changes.append(
                    (
                        (rng.start.line, rng.start.character),
                        (rng.end.line, rng.end.character),
                        ch.text,
                    )
                )
        uri = params.text_document.uri
        doc = ls.store.change(uri, changes, params.text_document.version, ls.encoding)
        if doc is None:
            return
        ls.schedule(uri)
        ls.recheck_dependents(doc)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @_guard(server, "didClose", None)
    def did_close(ls: SteerLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.store.close(uri)
        task = ls._pending.pop(uri, None)
        if task is not None:
            task.cancel()
        # Clear the squiggles of a closed file, as the LSP spec recommends.
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @_guard(server, "didSave", None)
    def did_save(ls: SteerLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        # Included files may have changed on disk; re-check with the current buffer.
        doc = ls.store.get(params.text_document.uri)
        if doc is not None:
            doc.cache.clear()
            ls.schedule(doc.uri)


def _register_navigation(server: SteerLanguageServer) -> None:
    """Requests that read a document: hover, completion, definitions, references, outline."""

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @_guard(server, "hover", None)
    def hover(ls: SteerLanguageServer, params: types.HoverParams) -> types.Hover | None:
        doc = ls.store.get(params.text_document.uri)
        if doc is None:
            return None
        return features.lsp_hover(
            doc, params.position, n_layers=ls.n_layers, encoding=ls.encoding, read_file=ls.read_file
        )

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[" ", "(", ","]),
    )
    @_guard(server, "completion", None)
    def completion(
        ls: SteerLanguageServer, params: types.CompletionParams
    ) -> types.CompletionList | None:
        doc = ls.store.get(params.text_document.uri)
        if doc is None:
            return None
        return features.lsp_completion(
            doc, params.position, n_layers=ls.n_layers, encoding=ls.encoding, read_file=ls.read_file
        )

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @_guard(server, "definition", None)
    def definition(
        ls: SteerLanguageServer, params: types.DefinitionParams
    ) -> list[types.Location] | None:
        doc = ls.store.get(params.text_document.uri)
        if doc is None:
            return None
        return features.lsp_definition(
            doc, params.position, encoding=ls.encoding, read_file=ls.read_file
        )

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    @_guard(server, "references", None)
    def references(
        ls: SteerLanguageServer, params: types.ReferenceParams
    ) -> list[types.Location] | None:
        doc = ls.store.get(params.text_document.uri)
        if doc is None:
            return None
        return features.lsp_references(
            doc,
            params.position,
            include_declaration=params.context.include_declaration,
            encoding=ls.encoding,
        )

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @_guard(server, "documentSymbol", None)
    def document_symbol(
        ls: SteerLanguageServer, params: types.DocumentSymbolParams
    ) -> list[types.DocumentSymbol] | None:
        doc = ls.store.get(params.text_document.uri)
        if doc is None:
            return None
        return features.lsp_symbols(doc, encoding=ls.encoding)


def _register_fixes(server: SteerLanguageServer) -> None:
    """Requests that return edits: formatting and quick fixes."""

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    @_guard(server, "formatting", None)
    def formatting(
        ls: SteerLanguageServer, params: types.DocumentFormattingParams
    ) -> list[types.TextEdit] | None:
        doc = ls.store.get(params.text_document.uri)
        if doc is None:
            return None
        return features.lsp_format(doc, encoding=ls.encoding)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    @_guard(server, "codeAction", None)
    def code_action(
        ls: SteerLanguageServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        doc = ls.store.get(params.text_document.uri)
        if doc is None:
            return None
        return features.lsp_code_actions(
            doc, params.range, n_layers=ls.n_layers, encoding=ls.encoding, read_file=ls.read_file
        )


def warm_up() -> None:
    """Load everything a first check needs, then exempt it from garbage collection.

    Python's full collections walk every tracked object; in a server holding the Lark
    tables, the pydantic schemas and lsprotocol's converters that walk took 50-100 ms, and it
    landed on an arbitrary keystroke every few seconds of typing. Objects alive after
    start-up live as long as the process, so they are collected once and then frozen
    (`gc.freeze`); what later checks allocate is collected as usual.
    """
    features.analyse(
        "steer 1\nconcept c = place == 1\nat layer 1 suppress features where corr(c) > 0.1\n",
        None,
        n_layers=None,
    )
    gc.collect()
    gc.freeze()


def serve_stdio(
    *,
    log_file: str | None = None,
    log_level: str = "WARNING",
    debounce_ms: float | None = None,
    allow_include_outside: bool = False,
) -> None:
    """Run the server on stdin/stdout until the client says exit (`steer lsp`)."""
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8")
        if log_file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(getattr(logging, log_level, logging.WARNING))
    debounce_s = DEFAULT_DEBOUNCE_S if debounce_ms is None else max(0.0, debounce_ms) / 1000.0
    server = build_server(debounce_s=debounce_s)
    server.read_file.allow_include_outside = allow_include_outside
    try:
        warm_up()
    except Exception:  # a failed warm-up only costs speed; the first check will say what broke
        log.exception("steerlang lsp: warm-up failed")
    server.start_io()
