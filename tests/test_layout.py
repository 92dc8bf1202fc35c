"""The package layout's contracts (docs/architecture.md), checked on the import graph.

Every `import`/`from … import` of a `steerlang` module counts, at module level or inside a
function (a lazy import is still a dependency), except those under `if TYPE_CHECKING:`. The graph
must have no circle, and the arrows must follow the data flow: the runtime never reaches back
into the language layer, the report is handed data rather than importing the stages, the model
side knows nothing of the stages, and the shipped zoo does not import its builder.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "steerlang"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = getattr(test, "id", None) or getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                ids.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return ids


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (a `from pkg import sub` edge goes to `pkg.sub`
    when that is a module, else to `pkg`)."""
    files = {_module_name(f): f for f in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        tree = ast.parse(path.read_text("utf-8"))
        skip = _type_checking_nodes(tree)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".")
                    anchor = anchor if is_pkg else anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names
                ]
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def _in(mod: str, *prefixes: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def test_no_import_circles(graph: dict[str, set[str]]) -> None:
    assert circles(graph) == []


def test_circle_finder_finds_a_planted_circle() -> None:
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(planted) == [["a", "b", "c"]]


LANGUAGE_SIDE = ("steerlang.lang", "steerlang.lsp", "steerlang.commands", "steerlang.cli")


def test_only_the_language_side_imports_the_language_layer(graph: dict[str, set[str]]) -> None:
    bad = {
        m: sorted(d for d in deps if _in(d, "steerlang.lang"))
        for m, deps in graph.items()
        if not _in(m, *LANGUAGE_SIDE) and any(_in(d, "steerlang.lang") for d in deps)
    }
    assert bad == {}


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        # The language layer runs without torch, so it never reaches into the runtime.
        ("steerlang.lang", ("steerlang.model", "steerlang.pipeline", "steerlang.report")),
        # The report is handed everything as data (steerlang/report/record.py).
        ("steerlang.report", ("steerlang.pipeline", "steerlang.commands")),
        # The model side is below the stages that use it.
        ("steerlang.model", ("steerlang.pipeline", "steerlang.report", "steerlang.training")),
        # Datasets are read by the stages, never the other way round.
        ("steerlang.data", ("steerlang.pipeline", "steerlang.report", "steerlang.training")),
        # The shipped zoo loads artefacts; its builder lives in steerlang/training/zoo/.
        ("steerlang.zoo", ("steerlang.training", "steerlang.pipeline", "steerlang.report")),
        # Stages never import the command line.
        ("steerlang.pipeline", ("steerlang.commands", "steerlang.cli")),
        ("steerlang.training", ("steerlang.commands", "steerlang.cli")),
    ],
)
def test_arrows_follow_the_data_flow(
    graph: dict[str, set[str]], lower: str, upper: tuple[str, ...]
) -> None:
    bad = {
        m: sorted(d for d in deps if _in(d, *upper))
        for m, deps in graph.items()
        if _in(m, lower) and any(_in(d, *upper) for d in deps)
    }
    assert bad == {}


def test_shared_modules_import_nothing_above_them(graph: dict[str, set[str]]) -> None:
    """plan, facts, files, errors and diagnostics are the floor every layer stands on."""
    floor = ("steerlang.plan", "steerlang.facts", "steerlang.files", "steerlang.errors")
    floor += ("steerlang.diagnostics",)
    for mod in floor:
        assert graph[mod] <= set(floor), (mod, sorted(graph[mod] - set(floor)))
