"""Pass: the classification task and the group columns."""

from __future__ import annotations

from typing import Any

from steerlang.diagnostics import SourceSpan
from steerlang.lang import ast
from steerlang.lang.compiler.expressions import check_column
from steerlang.lang.compiler.state import CompileState
from steerlang.lang.spans import join


def check_task(st: CompileState) -> None:
    task = st.singles.get("task")
    if isinstance(task, ast.TaskDecl) and not task.broken:
        st.task = _task(st, task)
    g = st.singles.get("groups")
    if isinstance(g, ast.GroupsDecl) and not g.broken:
        seen: set[str] = set()
        for n in g.names:
            check_column(st, n.name, n.span, "group")
            if n.name in seen:
                st.emit(
                    "W310",
                    f"group column `{n.name}` is listed twice",
                    n.span,
                    label="listed again here",
                    help=f"remove the second `{n.name}`",
                )
            else:
                st.groups.append(n.name)
            seen.add(n.name)


def _task(st: CompileState, t: ast.TaskDecl) -> dict | None:
    check_column(st, t.label.name, t.label.span, "label")
    classes = [c.value for c in t.classes]
    ok = True
    if len(classes) < 2:
        st.emit(
            "E212",
            "a classification task needs at least two classes",
            join(t.classes[0].span, t.classes[-1].span) if t.classes else t.span,
            label=f"{len(classes)} class{'es' if len(classes) != 1 else ''}",
            help="list every class name in label order",
        )
        ok = False
    seen: dict[str, SourceSpan | None] = {}
    for c in t.classes:
        if not c.value.strip():
            st.emit("E212", "class name is empty", c.span, label="empty class name")
            ok = False
        elif c.value in seen:
            st.emit(
                "E212",
                f'class "{c.value}" is listed twice',
                c.span,
                label="repeated class",
                help="class names must be distinct",
                secondary=[(seen[c.value], "first listed here")] if seen[c.value] else None,
            )
            ok = False
        seen[c.value] = c.span
    prompts = [p.value for p in t.prompts]
    for p in t.prompts:
        if not p.value.strip():
            st.emit("E212", "prompt is empty", p.span, label="empty prompt")
            ok = False
        elif "{}" not in p.value:
            st.emit(
                "W309",
                "prompt has no `{}` placeholder",
                p.span,
                label="every class gets the same text",
                help='add `{}` where the class name goes, e.g. "a photo of a {}."',
            )
    if not ok:
        return None
    out: dict[str, Any] = {"kind": "classify", "label": t.label.name, "classes": classes}
    if prompts:
        out["prompts"] = prompts
    return out


# ------------------------------------------------------------------ lints
