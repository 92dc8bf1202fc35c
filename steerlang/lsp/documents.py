"""The server's own copy of every open document, kept in the LSP's line model.

pygls keeps a workspace copy too, but it splits lines with `str.splitlines`, which also breaks
on form feeds, `\\x1c`..`\\x1e`, NEL and U+2028/U+2029; VS Code does not, so incremental edits
after such a character would land in the wrong place. We apply changes with
`positions.apply_change`, which uses LSP's definition of a line (`\\n`, `\\r\\n`, `\\r`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steerlang.lang.incremental import ParseCache
from steerlang.lsp.positions import Encoding, LineIndex, apply_change


@dataclass
class Document:
    uri: str
    text: str
    version: int | None = None
    path: str | None = None
    _index: LineIndex | None = field(default=None, repr=False)
    # Per-version memo of analysis results (compile result, symbols, ...), dropped on change.
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    # Parsed lines, kept across versions: a re-check after an edit re-parses only the lines
    # that changed (results identical to a fresh parse; see steerlang.lang.incremental).
    parse_cache: ParseCache = field(default_factory=ParseCache, repr=False)

    @property
    def index(self) -> LineIndex:
        if self._index is None or self._index.text is not self.text:
            self._index = LineIndex(self.text)
        return self._index

    def set_text(self, text: str, version: int | None) -> None:
        self.text = text
        self.version = version
        self._index = None
        self.cache.clear()


class DocumentStore:
    """uri -> Document, updated by didOpen / didChange / didClose."""

    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}

    def open(self, uri: str, text: str, version: int | None, path: str | None) -> Document:
        doc = Document(uri=uri, text=text, version=version, path=path)
        self.docs[uri] = doc
        return doc

    def change(
        self,
        uri: str,
        changes: list[tuple[tuple[int, int] | None, tuple[int, int] | None, str]],
        version: int | None,
        encoding: Encoding = "utf-16",
    ) -> Document | None:
        doc = self.docs.get(uri)
        if doc is None:
            return None
        text = doc.text
        for start, end, new_text in changes:
            text = apply_change(text, start, end, new_text, encoding)
        doc.set_text(text, version)
        return doc

    def close(self, uri: str) -> None:
        self.docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self.docs.get(uri)
