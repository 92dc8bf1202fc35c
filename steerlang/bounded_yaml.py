"""YAML documents read in time and memory bounded by their length, with the line and column of
every key and value.

PyYAML alone is not bounded: "billion laughs" aliases expand a 666-byte file to 10^9 values
when anything walks or validates the document; its scanner is quadratic in the depth of flow
collections (`[[[[...`) and its composer recursive; a 5,001-digit integer exceeds Python's
int-from-text limit. `parse_yaml` checks each bound before the step that would pay for it and
reports a problem at its line and column. Used for `steer.yaml` (steerlang/profile.py), whose
errors are `ProfileError`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from steerlang.errors import ProfileError


@dataclass
class Marks:
    values: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)
    keys: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)

    def find(self, loc: tuple[Any, ...], *, key: bool = False) -> tuple[int, int] | None:
        """Line/column of a location: the key itself when `key` (unknown or bad keys), else
        the value, falling back to the nearest enclosing value (e.g. for a missing field)."""
        if loc and loc[-1] == "[key]":
            loc, key = loc[:-1], True
        if key and loc in self.keys:
            return self.keys[loc]
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.values:
                return self.values[loc[:n]]
        return None


def _collect_marks(node: yaml.Node, file: str, path: tuple[Any, ...], out: Marks) -> None:
    out.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
            line = k.start_mark.line + 1
            if key in seen:
                raise ProfileError(
                    f"{file}:{line}:{k.start_mark.column + 1}: duplicate key '{key}' "
                    f"(first on line {seen[key]})",
                    help="YAML keeps only the last value; remove one of them",
                )
            seen[key] = line
            out.keys[path + (key,)] = (line, k.start_mark.column + 1)
            _collect_marks(v, file, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _collect_marks(v, file, path + (i,), out)


# Bounds on a profile's YAML, checked before anything walks or constructs it: a profile is a
# few dozen lines, so these only stop hostile or broken files (a 666-byte "billion laughs"
# file expands to 10^9 nodes through aliases; deep nesting overflows the recursive composer;
# a 5,001-digit integer exceeds Python's int-from-text limit).
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 100_000  # after alias expansion
MAX_YAML_INT_DIGITS = 100


def parse_yaml(text: str, file: str) -> tuple[Any, Marks]:
    """The YAML document and the line/column of every key and value, in time and memory
    bounded by the text's length and the bounds above."""
    try:
        _check_depth(text, file)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_expansion(node, file)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        raise ProfileError(
            f"{where}: invalid YAML: {e.problem or e.context}",
            help='check indentation and quoting (quote keys like "7:resid_post")',
        ) from None
    except yaml.YAMLError as e:
        raise ProfileError(f"{file}: invalid YAML: {e}") from None
    marks = Marks()
    if node is not None:
        _collect_marks(node, file, (), marks)
    return data, marks


def _check_depth(text: str, file: str) -> None:
    """Nesting depth, before PyYAML sees the text: its scanner is quadratic in the depth of
    flow collections (`[[[[...`: 2,000 levels take 7 s) and its composer recursive. A linear
    scan bounds the flow brackets first, then the event stream (PyYAML's parser is not
    recursive) bounds block nesting."""
    _check_flow_depth(text, file)
    depth = 0
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(ev, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                m = ev.start_mark
                raise ProfileError(
                    f"{file}:{m.line + 1}:{m.column + 1}: YAML nested more than "
                    f"{MAX_YAML_DEPTH} levels deep",
                    help="a profile nests three levels at most (saes: MODEL: KEY: REF); "
                    "see docs/profiles.md",
                )
        elif isinstance(ev, yaml.CollectionEndEvent):
            depth -= 1


def _check_flow_depth(text: str, file: str) -> None:
    """Count the `[`/`{` that open flow collections, in one pass over the text.

    Outside flow collections a bracket opens one only where a node can start (a line start,
    after `: `, `- ` or `? `, or after an `&anchor` / `!tag`): elsewhere it is text of a plain
    scalar. Inside them every bracket outside quotes is structure (flow plain scalars cannot
    hold brackets). Quoted scalars and comments are skipped. Brackets at the start of lines of
    a `|` / `>` block scalar are counted too, so such text deeper than the bound is refused:
    the one place this scan is stricter than YAML.
    """
    depth = 0
    line, col = 1, 0
    node_start = True  # outside flow collections: a node may begin here
    prev = "\n"  # inside flow collections: the last significant character
    quote = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, col = line + 1, 0
        else:
            col += 1
        if quote:
            if quote == '"' and ch == "\\":
                i, col = i + 2, col + 1
                continue
            if ch == quote:
                if quote == "'" and i + 1 < n and text[i + 1] == "'":
                    i, col = i + 2, col + 1
                    continue
                quote, prev, node_start = "", ch, False
            i += 1
            continue
        if ch == "#" and (i == 0 or text[i - 1] in " \t\n"):
            j = text.find("\n", i)
            j = n if j < 0 else j
            col += j - i - 1
            i = j
            continue
        if ch in "&!" and (node_start if depth == 0 else prev in "[{,:"):
            # a node property: the node (maybe a flow collection) still starts after it
            j = i
            while j < n and text[j] not in " \t\n,[]{}":
                j += 1
            col += j - i - 1
            i = j
            continue
        opens = False
        if depth == 0:
            if ch == "\n":
                node_start = True
            elif ch in " \t":
                pass
            elif node_start and ch in "[{":
                opens = True
            elif node_start and ch in "'\"":
                quote = ch
            elif ch in "-?:" and (i + 1 == n or text[i + 1] in " \t\n"):
                node_start = True
            else:
                node_start = False
        else:
            if ch in "[{":
                opens = True
            elif ch in "]}":
                depth -= 1
                node_start = False
            elif ch in "'\"" and prev in "[{,:":
                quote = ch
        if opens:
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ProfileError(
                    f"{file}:{line}:{col}: YAML nested more than {MAX_YAML_DEPTH} levels deep",
                    help="a profile nests three levels at most (saes: MODEL: KEY: REF); "
                    "see docs/profiles.md",
                )
        if ch not in " \t\n":
            prev = ch
        i += 1


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Reject alias cycles, alias expansion past MAX_YAML_NODES, and integers too long to
    read, before anything constructs or walks the document. Sizes are memoised per node,
    so the check is linear in the number of distinct nodes whatever the aliases multiply."""
    size: dict[int, int] = {}
    active: set[int] = set()
    # iterative post-order walk (no recursion, bounded by MAX_YAML_DEPTH anyway)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            active.discard(nid)
            kids = _children(node)
            size[nid] = 1 + sum(size[id(k)] for k in kids)
            if size[nid] > MAX_YAML_NODES:
                m = node.start_mark
                raise ProfileError(
                    f"{file}:{m.line + 1}:{m.column + 1}: YAML aliases expand to more than "
                    f"{MAX_YAML_NODES:,} values",
                    help="write the values out instead of repeating them through &anchors "
                    "and *aliases (a profile needs no aliases)",
                )
            continue
        if nid in size:
            continue
        if nid in active:
            m = node.start_mark
            raise ProfileError(
                f"{file}:{m.line + 1}:{m.column + 1}: YAML alias refers to itself",
                help="remove the *alias that points back into its own &anchor",
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:int" and len(node.value) > MAX_YAML_INT_DIGITS:
                m = node.start_mark
                raise ProfileError(
                    f"{file}:{m.line + 1}:{m.column + 1}: a {len(node.value):,}-character number",
                    help="no profile value is that long; check the key on this line "
                    "(`version` is 1)",
                )
            size[nid] = 1
            continue
        active.add(nid)
        stack.append((node, True))
        for k in _children(node):
            if id(k) in active:
                m = k.start_mark
                raise ProfileError(
                    f"{file}:{m.line + 1}:{m.column + 1}: YAML alias refers to itself",
                    help="remove the *alias that points back into its own &anchor",
                )
            if id(k) not in size:
                stack.append((k, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for kv in node.value for n in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
