"""Pass: read the root file and its includes, parse each, and expand includes in place."""

from __future__ import annotations

import os

from steerlang.diagnostics import SourceSpan
from steerlang.errors import did_you_mean
from steerlang.lang import ast
from steerlang.lang.compiler.state import CompileState, Item, Origin
from steerlang.lang.parser import parse


def load_files(st: CompileState) -> None:
    st.items = _load_file(st, st.text, st.root, Origin(), ())


def _load_file(
    st: CompileState, text: str, path: str | None, origin: Origin, stack: tuple[str | None, ...]
) -> list[Item]:
    st.sources[path] = text
    st.file_order.append(path)
    st.origin_of_file[path] = origin
    cache = st.options.parse_cache
    res = cache.parse(text, path) if cache is not None and not stack else parse(text, path)
    st.recipes[path] = res.recipe
    for d in res.diagnostics:
        d.notes.extend(origin.notes())
        st.diags.append(d)
    if res.diagnostics:
        st.syntax_errors = True
    header = res.recipe.header
    if header is not None and not header.broken and header.version not in (1,):
        st.emit(
            "E207",
            f"unsupported language version `{header.version}`",
            header.span,
            label="this steerlang understands version 1",
            help="write `steer 1`",
        )
    items: list[Item] = []
    for stmt in res.recipe.statements:
        items.append(Item(stmt, origin))
        if isinstance(stmt, ast.IncludeDecl) and not stmt.broken:
            items.extend(_include(st, stmt, path, origin, (*stack, path)))
    return items


def _include(
    st: CompileState,
    stmt: ast.IncludeDecl,
    path: str | None,
    origin: Origin,
    stack: tuple[str | None, ...],
) -> list[Item]:
    rel = stmt.path.value
    target = relative_to_file(rel, path) if rel else ""
    span = stmt.path.span
    if not rel:
        st.emit("E106", "include path is empty", span, label="expected a file name")
        return []
    if target in stack or (path is not None and target == os.path.normpath(path)):
        chain = [p for p in stack if p is not None] + [target]
        start = chain.index(target) if target in chain else 0
        st.emit(
            "E107",
            f"include cycle: `{rel}` includes itself",
            span,
            label="this include starts the cycle again",
            help="move what both files need into a third file that includes neither",
            notes=["include chain: " + " -> ".join(chain[start:])],
        )
        return []
    if target in st.sources:
        st.emit(
            "W308",
            f"`{rel}` is already included",
            span,
            label="this include is ignored",
            help="delete this `include`",
        )
        return []
    try:
        text = st.options.read_file(target)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        _cannot_include(st, rel, target, span, e)
        return []
    inc_origin = Origin((*origin.chain, (target, stmt.span or span)))
    return _load_file(st, text, target, inc_origin, stack)


def _cannot_include(
    st: CompileState, rel: str, target: str, span: SourceSpan | None, e: Exception
) -> None:
    why = "is not UTF-8 text" if isinstance(e, UnicodeDecodeError) else "does not exist"
    if isinstance(e, IsADirectoryError):
        why = "is a directory"
    help_ = None
    try:
        folder = os.path.dirname(target) or "."
        options = [f for f in os.listdir(folder) if f.endswith(".steer")]
        guess = did_you_mean(os.path.basename(rel), options)
        if guess:
            help_ = f"did you mean `{os.path.join(os.path.dirname(rel), guess)}`?"
    except OSError:
        pass
    st.emit(
        "E106",
        f"cannot include `{rel}`",
        span,
        label=f"`{target}` {why}",
        help=help_ or "include paths are relative to the file that contains the `include`",
    )


def relative_to_file(rel: str, path: str | None) -> str:
    """`rel` read from the folder of the file at `path` (the working folder without a file)."""
    base = os.path.dirname(path) if path else ""
    return os.path.normpath(os.path.join(base, rel))
