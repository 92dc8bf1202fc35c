"""The server's own copy of every open document, kept in the LSP's line model.

pygls keeps a workspace copy too, but it splits lines with `str.splitlines`, which also breaks
on form feeds, `\\x1c`..`\\x1e`, NEL and U+2028/U+2029; VS Code does not, so incremental edits
after such a character would land in the wrong place. We apply changes with
`positions.apply_change`, which uses LSP's definition of a line (`\\n`, `\\r\\n`, `\\r`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from steerlang.lang.api import read_recipe_file
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


class EditorFiles:
    """What the compiler may read for the editor: included files as the editor has them (an
    open buffer wins over the disk), read from disk with the same checks as `steer check`
    (regular `.steer` files only), and includes confined to the workspace folder.

    Why the workspace folder: a recipe opened in the editor may come from anywhere, and the
    server checks it on every keystroke without asking, so its includes may not reach outside
    the folder the user opened (`allowIncludeOutside` in the initialization options lifts this).
    """

    def __init__(self, store: DocumentStore, folders: Callable[[], list[str]]) -> None:
        self.store = store
        self.folders = folders  # the workspace folders' paths, asked for on every check
        self.allow_include_outside = False

    def __call__(self, path: str) -> str:
        want = os.path.normpath(os.path.abspath(path))
        for doc in self.store.docs.values():
            if doc.path is not None and os.path.normpath(os.path.abspath(doc.path)) == want:
                return doc.text
        return read_recipe_file(path)

    def include_root(self, path: str | None) -> str | None:
        """The outermost workspace folder that holds the file at `path`; None (the recipe's own
        folder) for a file outside every workspace folder or without a path."""
        if path is None:
            return None
        here = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        best: str | None = None
        for folder in self.folders():
            root = os.path.realpath(folder)
            try:
                inside = os.path.commonpath([here, root]) == root
            except ValueError:
                continue
            if inside and (best is None or len(root) < len(best)):
                best = root
        return best
