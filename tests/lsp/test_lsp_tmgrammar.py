"""The VS Code extension's TextMate grammar, checked from Python CI (no Node needed).

A small single-line TextMate engine (earliest match wins, ties to the first pattern, `match`
with captures and `begin`/`end` regions) runs the same scope assertions as
`editors/vscode/tests/*.steer` (the vscode-tmgrammar-test format), and every keyword of the
language must get a keyword-like scope, so a keyword added to the grammar without a
highlighting rule fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from steerlang.lang.api import KEYWORDS

EXT = Path(__file__).resolve().parents[2] / "editors" / "vscode"
GRAMMAR = json.loads((EXT / "syntaxes" / "steer.tmLanguage.json").read_text(encoding="utf-8"))

KEYWORD_SCOPES = ("keyword.", "storage.type.", "constant.language.")


def _flatten(patterns: list[dict[str, Any]], repo: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in patterns:
        if "include" in p:
            target = repo[p["include"].lstrip("#")]
            out.extend(_flatten([target], repo))
        elif "match" in p or "begin" in p:
            out.append(p)
        elif "patterns" in p:
            out.extend(_flatten(p["patterns"], repo))
    return out


def _apply(scopes: list[list[str]], m: re.Match[str], rule: dict[str, Any], key: str) -> None:
    if "name" in rule:
        for i in range(m.start(), m.end()):
            scopes[i].append(rule["name"])
    for group, cap in rule.get(key, {}).items():
        g = int(group)
        if m.group(g) is not None and "name" in cap:
            for i in range(m.start(g), m.end(g)):
                scopes[i].append(cap["name"])


def tokenize(line: str) -> list[list[str]]:
    """The scope stack of every character of one line."""
    repo = GRAMMAR["repository"]
    top = _flatten(GRAMMAR["patterns"], repo)
    scopes: list[list[str]] = [[GRAMMAR["scopeName"]] for _ in line]
    pos = 0
    while pos < len(line):
        best: tuple[re.Match[str], dict[str, Any]] | None = None
        for rule in top:
            rx = re.compile(rule.get("match") or rule["begin"])
            m = rx.search(line, pos)
            if m and (best is None or m.start() < best[0].start()):
                best = (m, rule)
        if best is None:
            break
        m, rule = best
        if "match" in rule:
            _apply(scopes, m, rule, "captures")
            pos = max(m.end(), pos + 1)
            continue
        # begin/end region: the region's name covers begin..end; inner patterns inside.
        _apply(scopes, m, {k: v for k, v in rule.items() if k != "name"}, "beginCaptures")
        inner = _flatten(rule.get("patterns", []), repo)
        end_rx = re.compile(rule["end"])
        i = m.end()
        while True:
            e = end_rx.search(line, i)
            e_start = e.start() if e else len(line)
            first: re.Match[str] | None = None
            first_rule: dict[str, Any] | None = None
            for r in inner:
                im = re.compile(r["match"]).search(line, i, e_start)
                if im and (first is None or im.start() < first.start()):
                    first, first_rule = im, r
            if first is not None and first_rule is not None:
                _apply(scopes, first, first_rule, "captures")
                i = max(first.end(), i + 1)
                continue
            end = e.end() if e else len(line)
            if e:
                _apply(scopes, e, {k: v for k, v in rule.items() if k != "name"}, "endCaptures")
            for k in range(m.start(), end):
                scopes[k].insert(1, rule["name"])
            pos = max(end, pos + 1)
            break
    return scopes


def test_grammar_and_manifest_are_consistent() -> None:
    pkg = json.loads((EXT / "package.json").read_text(encoding="utf-8"))
    (lang,) = pkg["contributes"]["languages"]
    assert lang["id"] == "steer" and lang["extensions"] == [".steer"]
    (gram,) = pkg["contributes"]["grammars"]
    assert gram["language"] == "steer" and gram["scopeName"] == "source.steer"
    assert (EXT / gram["path"]).resolve() == (EXT / "syntaxes" / "steer.tmLanguage.json")
    assert GRAMMAR["scopeName"] == "source.steer"
    conf = json.loads((EXT / lang["configuration"]).read_text(encoding="utf-8"))
    assert conf["comments"]["lineComment"] == "#"
    assert ["(", ")"] in conf["brackets"] and ["[", "]"] in conf["brackets"]
    assert {"open": '"', "close": '"', "notIn": ["string", "comment"]} in conf["autoClosingPairs"]
    assert pkg["main"] == "./out/extension.js"
    assert "vscode-languageclient" in pkg["dependencies"]


def test_every_rule_is_a_valid_single_line_regex() -> None:
    rules = _flatten(GRAMMAR["patterns"], GRAMMAR["repository"])
    assert len(rules) > 20
    for r in rules:
        for key in ("match", "begin", "end"):
            if key in r:
                re.compile(r[key])
        if "begin" in r:
            # regions must close at the end of a line: statements never span lines
            assert re.compile(r["end"]).search("x") is not None


@pytest.mark.parametrize("word", sorted(KEYWORDS))
def test_every_keyword_is_highlighted(word: str) -> None:
    scopes = tokenize(word)
    for stack in scopes:
        assert any(s.startswith(KEYWORD_SCOPES) for s in stack[1:]), (word, stack)


def test_statistic_functions_and_comments() -> None:
    from steerlang.lang.api import STAT_FUNCTIONS

    for fn in STAT_FUNCTIONS:
        line = f"where {fn}(x) > 1  # {fn}(y)"
        scopes = tokenize(line)
        assert "support.function.statistic.steer" in scopes[line.index(fn)]
        assert "comment.line.number-sign.steer" in scopes[line.rindex(fn)]
    line = 'include "a#b.steer"  # real'
    scopes = tokenize(line)
    assert "string.quoted.double.steer" in scopes[line.index("#")]
    assert "comment.line.number-sign.steer" in scopes[line.rindex("#")]


def _assertions(path: Path) -> list[tuple[int, str, int, int, list[str]]]:
    """(source line index, source line, start col, end col, required scopes) per assertion."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith('# SYNTAX TEST "source.steer"')
    out = []
    src_idx = -1
    for i, line in enumerate(lines[1:], start=1):
        m = re.match(r"#(\s*)(<-+|\^+)\s+(.*)$", line)
        if m is None:
            src_idx = i
            continue
        marker = m.group(2)
        if marker.startswith("<"):
            start, end = 0, len(marker) - 1
        else:
            start = 1 + len(m.group(1))
            end = start + len(marker)
        out.append((src_idx, lines[src_idx], start, end, m.group(3).split()))
    return out


@pytest.mark.parametrize("path", sorted((EXT / "tests").glob("*.steer")), ids=lambda p: p.name)
def test_scope_snapshots(path: Path) -> None:
    """The same assertions vscode-tmgrammar-test runs in the extension folder."""
    checks = _assertions(path)
    assert len(checks) > 30
    for idx, src, start, end, required in checks:
        scopes = tokenize(src)
        for col in range(start, end):
            missing = [s for s in required if s not in scopes[col]]
            assert not missing, f"line {idx + 1} col {col}: {src!r} lacks {missing}: {scopes[col]}"
