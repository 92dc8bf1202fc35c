"""What the language server answers, as pure functions of the document text.

Two layers, so most behaviour is testable without a client:

- `*_at` / `*_for` functions take text and a code-point offset and return plain results
  (`hover_at`, `completions_at`, `definition_at`, `references_at`, `format_edits`,
  `symbols_for`, `fixes_for`). They call only the public language API (`steerlang.lang.api`).
- `lsp_*` functions wrap them for a `Document` and convert offsets to LSP positions in the
  negotiated encoding (UTF-16 by default) with the document's `LineIndex`.

Diagnostics are `compile_text`'s, converted one to one: same code, span, message, help and
notes as `steer check`; a did-you-mean fix becomes a quick-fix code action.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path

from steerlang.diagnostics import Diagnostic, Edit, SourceSpan
from steerlang.lang import api
from steerlang.lang.known import (
    ATTACK_COLUMNS,
    DATASET_COLUMNS,
    MODEL_DEPTHS,
    SETTING_CHOICES,
    model_depth,
)
from steerlang.lsp.docs import KEYWORD_DOCS, function_definition, stat_definition
from steerlang.lsp.documents import Document, EditorFiles
from steerlang.lsp.positions import Encoding, LineIndex
from steerlang.plan import SETTING_DEFAULTS

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z_][A-Za-z0-9_]*)?")
_WORD_TAIL = re.compile(r"[A-Za-z0-9_-]*\Z")
_LINE_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"?|[A-Za-z_][A-Za-z0-9_-]*|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\.\.|[<>=!]=|\S'
)
_ATTACKED_STATS = re.compile(r'^[ \t]*set[ \t]+stats_images[ \t]*=[ \t]*"(?:attacked|both)"', re.M)
_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")
_INCLUDED_FROM = re.compile(r"included from (.*):(\d+):(\d+)$")

ReadFile = Callable[[str], str]


# --------------------------------------------------------------------------------------------
# Analysis (memoised per document version)
# --------------------------------------------------------------------------------------------


def analyse(
    text: str,
    path: str | None,
    *,
    n_layers: int | None = None,
    read_file: ReadFile | None = None,
    cache: dict[str, Any] | None = None,
    parse_cache: api.ParseCache | None = None,
) -> api.CompileResult:
    """`compile_text`, memoised in `cache` (a document's per-version dict) by `n_layers`;
    `parse_cache` is the document's cross-version line cache (same results, less parsing).
    With the server's `EditorFiles` as `read_file`, includes are confined to the workspace
    folder; with any other reader, to the recipe's own folder (as in `steer check`)."""
    key = f"compile:{n_layers}"
    if cache is not None and key in cache:
        return cache[key]
    root, outside = None, False
    if isinstance(read_file, EditorFiles):  # the server's reader carries its include policy
        root, outside = read_file.include_root(path), read_file.allow_include_outside
    res = api.compile_text(
        text,
        path,
        n_layers=n_layers,
        read_file=read_file,
        parse_cache=parse_cache,
        include_root=root,
        allow_include_outside=outside,
    )
    if cache is not None:
        cache[key] = res
    return res


def _symbols(text: str, path: str | None, cache: dict[str, Any] | None) -> list[api.Symbol]:
    if cache is not None and "symbols" in cache:
        return cache["symbols"]
    syms = api.symbols(text, path)
    if cache is not None:
        cache["symbols"] = syms
    return syms


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return os.path.normpath(a) == os.path.normpath(b)


def fix_of(d: Diagnostic, text: str, path: str | None) -> Edit | None:
    """The machine-applicable fix of a diagnostic in this file: its own `fix`, or, for a
    did-you-mean `help` on a one-word span, the replacement the help names."""
    if d.fix is not None:
        return d.fix if _same_file(d.fix.span.file, path) else None
    if d.span is None or not d.help or not _same_file(d.span.file, path):
        return None
    m = _DID_YOU_MEAN.search(d.help)
    if m is None:
        return None
    old = text[d.span.start : d.span.end]
    new = m.group(1)
    # Only a like-for-like substitution is certain enough to apply mechanically: a word for a
    # word, or a quoted path for a quoted path (include did-you-mean).
    if _WORD.fullmatch(old) and _WORD.fullmatch(new) and old != new:
        return Edit(d.span, new)
    if len(old) >= 2 and old[0] == old[-1] == '"' and '"' not in new and old[1:-1] != new:
        return Edit(d.span, f'"{new}"')
    return None


@dataclass
class Fix:
    diagnostic: Diagnostic
    edit: Edit
    title: str


def fixes_for(diagnostics: list[Diagnostic], text: str, path: str | None) -> list[Fix]:
    out = []
    for d in diagnostics:
        e = fix_of(d, text, path)
        if e is None:
            continue
        title = f"Replace with `{e.replacement}`" if e.replacement else "Delete"
        if d.help and _DID_YOU_MEAN.search(d.help):
            title = f"Change to `{_DID_YOU_MEAN.search(d.help).group(1)}`"  # type: ignore[union-attr]
        out.append(Fix(d, e, title))
    return out


# --------------------------------------------------------------------------------------------
# Diagnostics
# --------------------------------------------------------------------------------------------

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "note": types.DiagnosticSeverity.Information,
}


def _uri_of(path: str | None, fallback: str) -> str:
    if path is None:
        return fallback
    try:
        return from_fs_path(os.path.abspath(path)) or fallback
    except Exception:
        return fallback


def _include_anchor(d: Diagnostic, text: str, path: str | None, syms: list[api.Symbol]) -> int:
    """Offset in the root file to report a diagnostic from an included file at: the include
    statement that (transitively) brought the file in."""
    includes = [s for s in syms if s.kind == "include"]
    base = os.path.dirname(path) if path else ""
    file = d.span.file if d.span else None
    for s in includes:
        if _same_file(os.path.join(base, s.name), file):
            return s.span.start
    for note in reversed(d.notes):
        m = _INCLUDED_FROM.search(note)
        if m and (_same_file(m.group(1), path) or (path is None and m.group(1) == "<input>")):
            line = int(m.group(2))
            starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
            if 1 <= line <= len(starts):
                return starts[line - 1] + int(m.group(3)) - 1
    return includes[0].span.start if includes else 0


def _message(d: Diagnostic) -> str:
    lines = [d.message]
    if d.label:
        lines[0] += f": {d.label}"
    if d.help:
        lines.append(f"help: {d.help}")
    lines += [f"note: {n}" for n in d.notes]
    return "\n".join(lines)


def to_lsp_diagnostic(
    d: Diagnostic,
    *,
    text: str,
    path: str | None,
    uri: str,
    index: LineIndex,
    encoding: Encoding = "utf-16",
    syms: list[api.Symbol] | None = None,
) -> types.Diagnostic:
    """One `steer check` diagnostic as an LSP diagnostic in the document `uri`."""
    related: list[types.DiagnosticRelatedInformation] = []
    if d.span is None:
        start = end = 0
    elif _same_file(d.span.file, path):
        start, end = d.span.start, d.span.end
    else:
        # From an included file: show it on the include and point at the real place.
        start = _include_anchor(d, text, path, syms if syms is not None else [])
        m = re.match(r'"(?:[^"\\\n]|\\.)*"', text[start:])
        end = start + (len(m.group(0)) if m else 0)
        other = _uri_of(d.span.file, uri)
        pos = types.Position(max(0, d.span.line - 1), max(0, d.span.column - 1))
        related.append(
            types.DiagnosticRelatedInformation(
                location=types.Location(uri=other, range=types.Range(pos, pos)),
                message=f"{d.message} (in {d.span.file})",
            )
        )
    for span, label in d.secondary:
        if _same_file(span.file, path):
            a, b = index.range_of(span.start, span.end, encoding)
            loc = types.Location(uri=uri, range=_range(a, b))
        else:
            pos = types.Position(max(0, span.line - 1), max(0, span.column - 1))
            loc = types.Location(uri=_uri_of(span.file, uri), range=types.Range(pos, pos))
        related.append(types.DiagnosticRelatedInformation(location=loc, message=label or "here"))
    a, b = index.range_of(start, end, encoding)
    data: dict[str, Any] = {}
    e = fix_of(d, text, path)
    if e is not None:
        data["fix"] = {"start": e.span.start, "end": e.span.end, "replacement": e.replacement}
    tags = None
    if d.message.startswith("unused"):
        tags = [types.DiagnosticTag.Unnecessary]
    return types.Diagnostic(
        range=_range(a, b),
        message=_message(d),
        severity=_SEVERITY.get(d.severity, types.DiagnosticSeverity.Error),
        code=d.code,
        source="steer",
        related_information=related or None,
        tags=tags,
        data=data or None,
    )


def _range(a: Any, b: Any) -> types.Range:
    return types.Range(
        start=types.Position(line=a.line, character=a.character),
        end=types.Position(line=b.line, character=b.character),
    )


def lsp_diagnostics(
    doc: Document,
    *,
    n_layers: int | None = None,
    encoding: Encoding = "utf-16",
    read_file: ReadFile | None = None,
) -> list[types.Diagnostic]:
    res = analyse(
        doc.text,
        doc.path,
        n_layers=n_layers,
        read_file=read_file,
        cache=doc.cache,
        parse_cache=doc.parse_cache,
    )
    syms = _symbols(doc.text, doc.path, doc.cache) if _has_foreign(res, doc.path) else []
    return [
        to_lsp_diagnostic(
            d,
            text=doc.text,
            path=doc.path,
            uri=doc.uri,
            index=doc.index,
            encoding=encoding,
            syms=syms,
        )
        for d in res.diagnostics
    ]


def _has_foreign(res: api.CompileResult, path: str | None) -> bool:
    return any(d.span is not None and not _same_file(d.span.file, path) for d in res.diagnostics)


# --------------------------------------------------------------------------------------------
# Context helpers
# --------------------------------------------------------------------------------------------


def word_at(text: str, offset: int) -> tuple[int, int, str] | None:
    """The identifier (or `mean-ablate`) touching `offset`, as (start, end, word)."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end < 0:
        line_end = len(text)
    for m in _WORD.finditer(text, line_start, line_end):
        if m.start() <= offset <= m.end():
            return m.start(), m.end(), m.group(0)
    return None


def _line_tokens_before(text: str, offset: int) -> list[str]:
    line_start = text.rfind("\n", 0, offset) + 1
    return _LINE_TOKEN.findall(text[line_start:offset])


def _in_comment_or_string(text: str, offset: int) -> bool:
    line_start = text.rfind("\n", 0, offset) + 1
    in_str = False
    i = line_start
    while i < offset:
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "#":
            return True
        i += 1
    return in_str


def _decl_value(text: str, keyword: str) -> str | None:
    m = re.search(rf'(?m)^[ \t]*{keyword}[ \t]+("(?:[^"\\\n]|\\.)*"|[A-Za-z_][\w:@./-]*)', text)
    if not m:
        return None
    v = m.group(1)
    return v[1:-1] if v.startswith('"') else v


def layer_count(text: str, n_layers: int | None) -> int | None:
    """The model's depth if known: the `--layers`-style override, else the recipe's model."""
    if n_layers is not None:
        return n_layers
    return model_depth(_decl_value(text, "model"))


# --------------------------------------------------------------------------------------------
# Hover
# --------------------------------------------------------------------------------------------


def _names_in_scope(
    text: str, path: str | None, res: api.CompileResult | None, cache: dict[str, Any] | None
) -> dict[str, tuple[str, str, SourceSpan | None]]:
    """name -> (kind, detail, definition span) for params and concepts, this file first, then
    what includes bring in (from the compiled IR)."""
    out: dict[str, tuple[str, str, SourceSpan | None]] = {}
    for s in _symbols(text, path, cache):
        if s.kind in ("param", "concept") and s.name not in out:
            out[s.name] = (s.kind, s.detail, s.span)
    ir = res.ir if res is not None else None
    if ir is not None:
        for name, p in ir.params.items():
            if name not in out:
                out[name] = ("param", repr(p.value), _ir_span(p.span))
        for name, c in ir.concepts.items():
            if name not in out:
                out[name] = ("concept", "", _ir_span(c.span))
    return out


def _ir_span(s: Any) -> SourceSpan | None:
    if s is None:
        return None
    return SourceSpan(s.file, s.start_pos, s.end_pos, s.line, s.column, s.end_line, s.end_column)


@dataclass
class HoverInfo:
    start: int
    end: int
    markdown: str


def hover_at(
    text: str,
    offset: int,
    path: str | None = None,
    *,
    n_layers: int | None = None,
    cache: dict[str, Any] | None = None,
    read_file: ReadFile | None = None,
) -> HoverInfo | None:
    """What the word under the cursor means, as Markdown, or None."""
    if _in_comment_or_string(text, offset):
        return None
    w = word_at(text, offset)
    if w is None:
        return _hover_number(text, offset, n_layers)
    start, end, word = w
    before = _line_tokens_before(text, start)
    after = text[end:].lstrip(" \t")
    prev = before[-1] if before else None

    if after.startswith("(") and word in api.FUNCTIONS:
        md = function_definition(word, api.FUNCTIONS[word])
        if word in api.STAT_FUNCTIONS:  # `max`: the statistic too
            md = stat_definition(word, api.STAT_FUNCTIONS[word]) + "\n\n---\n\n" + md
        return HoverInfo(start, end, md)
    if after.startswith("(") and word in api.STAT_FUNCTIONS:
        return HoverInfo(start, end, stat_definition(word, api.STAT_FUNCTIONS[word]))
    if prev == "site" and word in api.SITE_DOCS:
        return HoverInfo(start, end, f"**site `{word}`**: {api.SITE_DOCS[word]}")
    if prev == "tokens" and word in api.TOKEN_SCOPES:
        return HoverInfo(start, end, f"**tokens `{word}`**: {api.TOKEN_SCOPES[word]}")
    if before == ["set"] and word in api.SETTING_DOCS:
        default = SETTING_DEFAULTS.get(word)
        md = f"**setting `{word}`**: {api.SETTING_DOCS[word]}"
        if default is not None:
            md += f"\n\nDefault: `{default!r}`."
        return HoverInfo(start, end, md)
    if word in api.KEYWORDS:
        if word in api.ACTIONS and not (word == "set" and not before):
            return HoverInfo(start, end, f"**{word}** (action)\n\n{api.ACTIONS[word]}")
        doc = KEYWORD_DOCS.get(word, "a steerlang keyword")
        return HoverInfo(start, end, f"**{word}** (keyword)\n\n{doc}")

    res = analyse(text, path, n_layers=n_layers, read_file=read_file, cache=cache)
    names = _names_in_scope(text, path, res, cache)
    if word in names:
        kind, detail, span = names[word]
        where = ""
        if span is not None and not _same_file(span.file, path):
            where = f"\n\nDefined in `{span.file}` line {span.line}."
        if kind == "param":
            md = f"**param `{word}`** = `{detail}`\n\n{KEYWORD_DOCS['param']}"
        else:
            definition = f" = `{detail}`" if detail else ""
            md = (
                f"**concept `{word}`**{definition}\n\nA binary concept over dataset columns; "
                f"`corr({word})`, `mean({word})` and `mean(not {word})` read its statistics."
            )
        return HoverInfo(start, end, md + where)
    for s in _symbols(text, path, cache):
        if s.kind in ("rule", "recipe") and s.name == word and s.span.start == start:
            return HoverInfo(
                start, end, f"**{s.kind} `{word}`**" + (f"\n\n`{s.detail}`" if s.detail else "")
            )
    dataset, cols = _dataset_columns(text)
    if word in cols:
        return HoverInfo(start, end, f"**column `{word}`** of dataset `{dataset}`")
    if word in api.STAT_FUNCTIONS:
        return HoverInfo(start, end, stat_definition(word, api.STAT_FUNCTIONS[word]))
    return None


def _hover_number(text: str, offset: int, n_layers: int | None) -> HoverInfo | None:
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    for m in re.finditer(r"[0-9]+", text[line_start:line_end]):
        a, b = line_start + m.start(), line_start + m.end()
        if a <= offset <= b:
            before = _line_tokens_before(text, a)
            if "layer" in before or "layers" in before:
                scope = before[before.index("at") :] if "at" in before else before
                if any(t in ("suppress", "clamp", "scale", "add", "mean-ablate") for t in scope):
                    return None
                depth = layer_count(text, n_layers)
                bounds = f" of 0..{depth - 1}" if depth else ""
                model = _decl_value(text, "model") or "default"
                return HoverInfo(a, b, f"**layer {m.group(0)}**{bounds} (model `{model}`)")
            return None
    return None


# --------------------------------------------------------------------------------------------
# Completion
# --------------------------------------------------------------------------------------------


@dataclass
class Completion:
    label: str
    kind: str  # keyword | function | param | concept | value | layer | column | setting
    detail: str = ""
    documentation: str = ""
    insert_text: str | None = None
    snippet: bool = False
    sort: str = "5"


def completions_at(
    text: str,
    offset: int,
    path: str | None = None,
    *,
    n_layers: int | None = None,
    cache: dict[str, Any] | None = None,
    read_file: ReadFile | None = None,
) -> tuple[int, list[Completion]]:
    """(start of the word being completed, candidates) at `offset`.

    Keywords come from the parser state (`accepted_at`), so only words that can follow what is
    already on the line are offered; names come from what the recipe declares.
    """
    offset = max(0, min(offset, len(text)))
    if _in_comment_or_string(text, offset):
        return offset, []
    m = _WORD_TAIL.search(text, text.rfind("\n", 0, offset) + 1, offset)
    start = m.start() if m else offset
    # The partial word is already cut off at `start`; the trailing space keeps `accepted_at`
    # from mistaking the previous line's last word for a partial one when `start` is at the
    # beginning of a line (its word-tail regex ends in `$`, which matches before a newline).
    accepted = api.accepted_at(text[:start] + " ", start + 1)
    before = _line_tokens_before(text, start)
    prev = before[-1] if before else None
    choices = SETTING_CHOICES.get(before[1], ()) if len(before) == 3 else ()
    if choices and before[0] == "set" and before[2] == "=":
        return start, [
            Completion(
                f'"{v}"',
                "value",
                f"{before[1]}" + (" (default)" if v == SETTING_DEFAULTS.get(before[1]) else ""),
                api.SETTING_DOCS.get(before[1], ""),
                sort=f"1{i:02d}",
            )
            for i, v in enumerate(choices)
        ]
    out: list[Completion] = []
    seen: set[str] = set()

    def add(c: Completion) -> None:
        if c.label not in seen:
            seen.add(c.label)
            out.append(c)

    keyword_terms = {t: w for t, w in _keyword_terminals().items() if t in accepted}
    for word in sorted(keyword_terms.values()):
        if word in api.ACTIONS and prev not in ("set",) and not (word == "set" and not before):
            add(Completion(word, "keyword", "action", api.ACTIONS[word], sort="2"))
        else:
            add(Completion(word, "keyword", "keyword", KEYWORD_DOCS.get(word, ""), sort="3"))

    if "INT" in accepted and prev in ("layer", "layers", ",", "..") and _in_scope(before):
        depth = layer_count(text, n_layers)
        if depth:
            for i in range(depth):
                add(Completion(str(i), "layer", f"layer {i} of 0..{depth - 1}", sort=f"1{i:03d}"))

    if "NAME" in accepted and "INT" in accepted and prev in ("layer", "layers", ",", "..", "["):
        # An int list (`at layer L`, `tokens [i]`): only whole-number params fit there.
        res = analyse(text, path, n_layers=n_layers, read_file=read_file, cache=cache)
        for name, (kind, detail, _span) in sorted(_names_in_scope(text, path, res, cache).items()):
            if kind == "param" and re.fullmatch(r"-?[0-9]+", str(detail or "")):
                add(Completion(name, "param", f"param {name} = {detail}", sort="2"))
    elif "NAME" in accepted:
        for c in _name_completions(text, path, before, prev, n_layers, cache, read_file):
            add(c)
    return start, out


def _dataset_columns(text: str) -> tuple[str | None, tuple[str, ...]]:
    """The recipe's dataset and its columns, with the attack columns when the statistics see
    attacked copies (`set stats_images = "attacked"` or `"both"`)."""
    dataset = _decl_value(text, "dataset")
    cols = DATASET_COLUMNS.get((dataset or "").lower(), ())
    if cols and _ATTACKED_STATS.search(text):
        cols = (*cols, *ATTACK_COLUMNS)
    return dataset, cols


def _in_scope(before: list[str]) -> bool:
    actions = {"suppress", "clamp", "scale", "add", "mean-ablate"}
    return (
        "at" in before
        and not any(t in actions for t in before)
        and ("set" not in before[before.index("at") :])
    )


def _keyword_terminals() -> dict[str, str]:
    from steerlang.lang.lexer import KEYWORD_TERMINALS

    return KEYWORD_TERMINALS


def _name_completions(
    text: str,
    path: str | None,
    before: list[str],
    prev: str | None,
    n_layers: int | None,
    cache: dict[str, Any] | None,
    read_file: ReadFile | None,
) -> list[Completion]:
    if prev == "site":
        return [Completion(k, "value", "site", v, sort="1") for k, v in api.SITE_DOCS.items()]
    if prev == "tokens":
        return [Completion(k, "value", "tokens", v, sort="1") for k, v in api.TOKEN_SCOPES.items()]
    if before == ["set"]:
        return [
            Completion(k, "setting", f"default {SETTING_DEFAULTS.get(k)!r}", v, sort="1")
            for k, v in api.SETTING_DOCS.items()
        ]
    if prev == "dataset":
        return [Completion(k, "value", "dataset", sort="1") for k in DATASET_COLUMNS]
    if prev == "model":
        return [Completion(k, "value", f"{d} layers", sort="1") for k, d in MODEL_DEPTHS.items()]
    if prev in ("param", "concept", "recipe", "rule"):
        return []  # a new name: nothing to suggest
    dataset, cols = _dataset_columns(text)
    if prev in ("classify", "groups") or (before[:1] == ["groups"] and prev == ","):
        return [Completion(c, "column", f"column of {dataset}", sort="1") for c in cols]
    if before[:1] == ["concept"]:
        return [Completion(c, "column", f"column of {dataset}", sort="1") for c in cols]

    out: list[Completion] = []
    res = analyse(text, path, n_layers=n_layers, read_file=read_file, cache=cache)
    # Inside `corr(` / `mean(` only concepts fit; inside `abs(`, `rank(`, ... any number does.
    call_at = len(before) - 1 if prev == "(" else len(before) - 2
    in_call = (prev == "(" or prev == "not" and len(before) >= 2 and before[-2] == "(") and (
        call_at < 1 or before[call_at - 1] in ("corr", "mean")
    )
    for name, (kind, detail, _span) in sorted(_names_in_scope(text, path, res, cache).items()):
        if in_call and kind != "concept":
            continue
        doc = f"{kind} {name}" + (f" = {detail}" if detail else "")
        out.append(Completion(name, kind, doc, sort="1" if kind == "concept" and in_call else "2"))
    if not in_call:
        for fn, doc in api.STAT_FUNCTIONS.items():
            out.append(
                Completion(
                    fn,
                    "function",
                    doc.split(":", 1)[0],
                    stat_definition(fn, doc),
                    insert_text=f"{fn}($1)" if not doc.startswith(f"{fn}()") else f"{fn}()",
                    snippet=not doc.startswith(f"{fn}()"),
                    sort="4",
                )
            )
        for fn, doc in api.FUNCTIONS.items():
            if fn in api.STAT_FUNCTIONS:
                continue  # `max`: offered once, as the statistic
            out.append(
                Completion(
                    fn,
                    "function",
                    doc.split(":", 1)[0],
                    function_definition(fn, doc),
                    insert_text=f"{fn}($1)",
                    snippet=True,
                    sort="4",
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# Definition, references, symbols
# --------------------------------------------------------------------------------------------


@dataclass
class Target:
    path: str | None  # None: this document
    start: int = 0
    end: int = 0
    line: int = 0  # 1-based, used for other files (their text is not at hand)
    column: int = 0


def _symbol_at(syms: list[api.Symbol], offset: int) -> api.Symbol | None:
    for s in syms:
        if s.kind == "rule" and s.statement is not None and s.span == s.statement:
            continue  # an unnamed rule: its "name span" is the whole statement
        for sp in (s.span, *s.references):
            if sp.start <= offset <= sp.end:
                return s
    return None


def definition_at(
    text: str,
    offset: int,
    path: str | None = None,
    *,
    cache: dict[str, Any] | None = None,
    read_file: ReadFile | None = None,
) -> list[Target]:
    """Where the param, concept, rule or included file under the cursor is defined."""
    syms = _symbols(text, path, cache)
    s = _symbol_at(syms, offset)
    if s is not None:
        if s.kind == "include":
            base = os.path.dirname(path) if path else os.getcwd()
            target = os.path.normpath(os.path.join(base, s.name))
            return [Target(target, line=1, column=1)] if os.path.exists(target) else []
        if _same_file(s.span.file, path) or s.span.file is None:
            return [Target(None, s.span.start, s.span.end)]
    w = word_at(text, offset)
    if w is None:
        return []
    res = analyse(text, path, read_file=read_file, cache=cache)
    names = _names_in_scope(text, path, res, cache)
    if w[2] in names:
        span = names[w[2]][2]
        if span is None:
            return []
        if _same_file(span.file, path):
            return [Target(None, span.start, span.end)]
        return [Target(span.file, span.start, span.end, span.line, span.column)]
    return []


def references_at(
    text: str,
    offset: int,
    path: str | None = None,
    *,
    include_declaration: bool = True,
    cache: dict[str, Any] | None = None,
) -> list[tuple[int, int]]:
    s = _symbol_at(_symbols(text, path, cache), offset)
    if s is None or s.kind not in ("param", "concept"):
        return []
    spans = [s.span] if include_declaration else []
    spans += s.references
    return [(sp.start, sp.end) for sp in spans]


_SYMBOL_KINDS = {
    "recipe": types.SymbolKind.Module,
    "param": types.SymbolKind.Constant,
    "concept": types.SymbolKind.Boolean,
    "rule": types.SymbolKind.Function,
    "include": types.SymbolKind.File,
}


@dataclass
class SymbolInfo:
    name: str
    kind: str
    detail: str
    start: int  # the whole statement
    end: int
    name_start: int
    name_end: int


def symbols_for(
    text: str, path: str | None = None, *, cache: dict[str, Any] | None = None
) -> list[SymbolInfo]:
    out = []
    for s in _symbols(text, path, cache):
        if not _same_file(s.span.file, path) and s.span.file is not None:
            continue
        st = s.statement or s.span
        start, end = min(st.start, s.span.start), max(st.end, s.span.end)
        out.append(SymbolInfo(s.name, s.kind, s.detail, start, end, s.span.start, s.span.end))
    return out


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def format_edits(text: str, path: str | None = None) -> list[tuple[int, int, str]] | None:
    """Edits (code-point start, end, replacement) that turn `text` into `steer fmt`'s output,
    line-granular so the editor keeps the cursor and undo history; None when the text cannot be
    formatted (syntax errors: the diagnostics already say why)."""
    try:
        formatted = api.format_text(text, path)
    except api.FormatError:
        return None
    if formatted == text:
        return []
    a = text.splitlines(keepends=True)
    b = formatted.splitlines(keepends=True)
    starts = [0]
    for line in a:
        starts.append(starts[-1] + len(line))
    edits = []
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        edits.append((starts[i1], starts[i2], "".join(b[j1:j2])))
    return edits


# --------------------------------------------------------------------------------------------
# LSP wrappers
# --------------------------------------------------------------------------------------------


def _offset(doc: Document, pos: types.Position, encoding: Encoding) -> int:
    return doc.index.offset_of(pos.line, pos.character, encoding)


def _lsp_range(doc: Document, start: int, end: int, encoding: Encoding) -> types.Range:
    a, b = doc.index.range_of(start, end, encoding)
    return _range(a, b)


def lsp_hover(
    doc: Document,
    pos: types.Position,
    *,
    n_layers: int | None = None,
    encoding: Encoding = "utf-16",
    read_file: ReadFile | None = None,
) -> types.Hover | None:
    h = hover_at(
        doc.text,
        _offset(doc, pos, encoding),
        doc.path,
        n_layers=n_layers,
        cache=doc.cache,
        read_file=read_file,
    )
    if h is None:
        return None
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=h.markdown),
        range=_lsp_range(doc, h.start, h.end, encoding),
    )


_COMPLETION_KINDS = {
    "keyword": types.CompletionItemKind.Keyword,
    "function": types.CompletionItemKind.Function,
    "param": types.CompletionItemKind.Constant,
    "concept": types.CompletionItemKind.Variable,
    "value": types.CompletionItemKind.EnumMember,
    "layer": types.CompletionItemKind.Value,
    "column": types.CompletionItemKind.Field,
    "setting": types.CompletionItemKind.Property,
}


def lsp_completion(
    doc: Document,
    pos: types.Position,
    *,
    n_layers: int | None = None,
    encoding: Encoding = "utf-16",
    read_file: ReadFile | None = None,
) -> types.CompletionList:
    offset = _offset(doc, pos, encoding)
    start, items = completions_at(
        doc.text, offset, doc.path, n_layers=n_layers, cache=doc.cache, read_file=read_file
    )
    rng = _lsp_range(doc, start, offset, encoding)
    out = []
    for c in items:
        new_text = c.insert_text if c.insert_text is not None else c.label
        out.append(
            types.CompletionItem(
                label=c.label,
                kind=_COMPLETION_KINDS.get(c.kind, types.CompletionItemKind.Text),
                detail=c.detail or None,
                documentation=types.MarkupContent(
                    kind=types.MarkupKind.Markdown, value=c.documentation
                )
                if c.documentation
                else None,
                sort_text=f"{c.sort}_{c.label}",
                text_edit=types.TextEdit(range=rng, new_text=new_text),
                insert_text_format=types.InsertTextFormat.Snippet
                if c.snippet
                else types.InsertTextFormat.PlainText,
            )
        )
    return types.CompletionList(is_incomplete=False, items=out)


def lsp_definition(
    doc: Document,
    pos: types.Position,
    *,
    encoding: Encoding = "utf-16",
    read_file: ReadFile | None = None,
) -> list[types.Location]:
    out = []
    for t in definition_at(
        doc.text, _offset(doc, pos, encoding), doc.path, cache=doc.cache, read_file=read_file
    ):
        if t.path is None:
            out.append(types.Location(uri=doc.uri, range=_lsp_range(doc, t.start, t.end, encoding)))
        else:
            p = types.Position(max(0, t.line - 1), max(0, t.column - 1))
            out.append(types.Location(uri=_uri_of(t.path, doc.uri), range=types.Range(p, p)))
    return out


def lsp_references(
    doc: Document,
    pos: types.Position,
    *,
    include_declaration: bool = True,
    encoding: Encoding = "utf-16",
) -> list[types.Location]:
    return [
        types.Location(uri=doc.uri, range=_lsp_range(doc, a, b, encoding))
        for a, b in references_at(
            doc.text,
            _offset(doc, pos, encoding),
            doc.path,
            include_declaration=include_declaration,
            cache=doc.cache,
        )
    ]


def lsp_symbols(doc: Document, *, encoding: Encoding = "utf-16") -> list[types.DocumentSymbol]:
    return [
        types.DocumentSymbol(
            name=s.name,
            kind=_SYMBOL_KINDS.get(s.kind, types.SymbolKind.Variable),
            detail=s.detail or s.kind,
            range=_lsp_range(doc, s.start, s.end, encoding),
            selection_range=_lsp_range(doc, s.name_start, s.name_end, encoding),
        )
        for s in symbols_for(doc.text, doc.path, cache=doc.cache)
    ]


def lsp_format(doc: Document, *, encoding: Encoding = "utf-16") -> list[types.TextEdit] | None:
    edits = format_edits(doc.text, doc.path)
    if edits is None:
        return None
    return [
        types.TextEdit(range=_lsp_range(doc, a, b, encoding), new_text=new) for a, b, new in edits
    ]


def lsp_code_actions(
    doc: Document,
    rng: types.Range,
    *,
    n_layers: int | None = None,
    encoding: Encoding = "utf-16",
    read_file: ReadFile | None = None,
) -> list[types.CodeAction]:
    res = analyse(doc.text, doc.path, n_layers=n_layers, read_file=read_file, cache=doc.cache)
    lo = _offset(doc, rng.start, encoding)
    hi = _offset(doc, rng.end, encoding)
    out = []
    for f in fixes_for(res.diagnostics, doc.text, doc.path):
        span = f.diagnostic.span
        if span is None or span.end < lo or span.start > hi:
            continue
        diag = to_lsp_diagnostic(
            f.diagnostic,
            text=doc.text,
            path=doc.path,
            uri=doc.uri,
            index=doc.index,
            encoding=encoding,
        )
        edit = types.TextEdit(
            range=_lsp_range(doc, f.edit.span.start, f.edit.span.end, encoding),
            new_text=f.edit.replacement,
        )
        out.append(
            types.CodeAction(
                title=f.title,
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diag],
                is_preferred=True,
                edit=types.WorkspaceEdit(changes={doc.uri: [edit]}),
            )
        )
    return out
