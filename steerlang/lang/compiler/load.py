"""Pass: read the root file and its includes, parse each, and expand includes in place.

Which files may be included, and how they are read, is `steerlang/lang/compiler/sources.py`;
an included file that does not parse as a recipe is reported once at its `include` line and
its lines are never shown (it may be any file, holding anything).
"""

from __future__ import annotations

import os

from steerlang.diagnostics import SourceSpan
from steerlang.errors import did_you_mean
from steerlang.lang import ast
from steerlang.lang.compiler.sources import (
    NotARecipeFile,
    Refusal,
    check_include_path,
    include_root,
    relative_to_file,
)
from steerlang.lang.compiler.state import CompileState, Item, Origin
from steerlang.lang.parser import ParseResult, parse

__all__ = ["load_files", "relative_to_file"]


def load_files(st: CompileState) -> None:
    st.include_root = include_root(st.root, st.options.include_root)
    st.items = _load_file(st, st.text, st.root, Origin(), ())


def _load_file(
    st: CompileState,
    text: str,
    path: str | None,
    origin: Origin,
    stack: tuple[str | None, ...],
    parsed: ParseResult | None = None,
) -> list[Item]:
    st.sources[path] = text
    if path is not None:
        st.real_paths.add(os.path.realpath(path))
    st.file_order.append(path)
    st.origin_of_file[path] = origin
    cache = st.options.parse_cache
    if parsed is not None:
        res = parsed
    elif cache is not None and not stack:
        res = cache.parse(text, path)
    else:
        res = parse(text, path)
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
    real = os.path.realpath(target)
    reals = [os.path.realpath(p) if p is not None else None for p in stack]
    if real in reals or (path is not None and real == os.path.realpath(path)):
        # a cycle, also through symbolic links (`self/a.steer` with `self -> .` is `a.steer`)
        chain = [p for p in stack if p is not None] + [target]
        starts = [i for i, r in enumerate(reals) if r == real and stack[i] is not None]
        start = chain.index(stack[starts[0]]) if starts else 0
        st.emit(
            "E107",
            f"include cycle: `{rel}` includes itself",
            span,
            label="this include starts the cycle again",
            help="move what both files need into a third file that includes neither",
            notes=["include chain: " + " -> ".join(chain[start:])],
        )
        return []
    if target in st.sources or real in st.real_paths:
        st.emit(
            "W308",
            f"`{rel}` is already included",
            span,
            label="this include is ignored",
            help="delete this `include`",
        )
        return []
    refusal = check_include_path(
        target, st.include_root, allow_outside=st.options.allow_include_outside
    )
    if refusal is not None:
        _refuse(st, rel, target, refusal, span)
        return []
    try:
        text = st.options.read_file(target)
    except NotARecipeFile as e:
        _refuse(st, rel, target, Refusal(e.code, f"`{target}` is {e.what}"), span)
        return []
    except (OSError, UnicodeDecodeError, ValueError) as e:
        _cannot_include(st, rel, target, span, e)
        return []
    res = parse(text, target)
    problem = _not_a_recipe(res)
    if problem is not None:
        # Known (so the language server re-checks this file's includers when it changes), but
        # its text is dropped: nothing can quote it.
        st.sources[target] = ""
        st.syntax_errors = True
        _refuse(st, rel, target, Refusal("E114", problem), span)
        return []
    inc_origin = Origin((*origin.chain, (target, stmt.span or span)))
    return _load_file(st, text, target, inc_origin, stack, parsed=res)


def _not_a_recipe(res: ParseResult) -> str | None:
    """Why a parsed included file is not a recipe (a label that quotes none of it), or None."""
    header = res.recipe.header
    if header is None or header.broken or header.version != 1:
        return "this file does not start with `steer 1`"
    if res.diagnostics:
        n = len(res.diagnostics)
        return f"this file has {n} syntax error{'s' if n != 1 else ''}"
    return None


_REFUSED = {
    "E112": (
        "cannot include `{rel}`: it is outside the recipe's folder",
        "move the file into the recipe's folder (or a folder below it), or pass "
        "`--allow-include-outside` if you trust this recipe",
    ),
    "E113": (
        "cannot include `{rel}`: not a regular `.steer` file",
        "only recipe files can be included: regular files whose name ends in `.steer`",
    ),
    "E114": (
        "`{rel}` is not a recipe",
        "its lines are not shown; run `steer check {target}` to see the file's own errors",
    ),
}


def _refuse(
    st: CompileState, rel: str, target: str, refusal: Refusal, span: SourceSpan | None
) -> None:
    message, help_ = _REFUSED[refusal.code]
    st.emit(
        refusal.code,
        message.format(rel=rel),
        span,
        label=refusal.label,
        help=help_.format(target=target),
    )


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
