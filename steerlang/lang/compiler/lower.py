"""Pass: build the `steerlang.plan.RecipeIR` and validate it with the pydantic models the runtime
reads; every validation error is mapped back to the span that produced the value (E401)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from steerlang.diagnostics import Edit
from steerlang.errors import did_you_mean
from steerlang.facts import SITE_KINDS
from steerlang.lang import ast
from steerlang.lang.compiler.state import CompileState, ir_span


def lower(st: CompileState) -> None:
    """The IR, when nothing before reported an error."""
    if any(d.is_error for d in st.diags):
        return
    recipe_stmt = st.singles.get("recipe")
    if isinstance(recipe_stmt, ast.RecipeDecl):
        name = recipe_stmt.name.name
        desc = recipe_stmt.description.value if recipe_stmt.description else ""
    else:
        name = os.path.splitext(os.path.basename(st.root))[0] if st.root else "recipe"
        desc = ""
    h = hashlib.sha256()
    for f in st.file_order:
        h.update(hashlib.sha256(st.sources[f].encode("utf-8")).digest())
    header = st.recipes[st.root].header
    data = {
        "language_version": header.version if header and header.version else 1,
        "name": name,
        "description": desc,
        "source": st.root,
        "source_hash": h.hexdigest(),
        "model": st.model_ref,
        "dataset": st.dataset,
        "task": st.task,
        "groups": st.groups,
        "concepts": {
            n: {"name": n, "expr": c.ir, "span": ir_span(c.span)}
            for n, c in st.concepts.items()
            if c.ir is not None
        },
        "params": {
            n: {"name": n, "type": p.type, "value": p.value, "span": ir_span(p.span)}
            for n, p in st.params.items()
        },
        "saes": st.saes,
        "settings": st.settings,
        "includes": [f for f in st.file_order[1:] if f is not None],
        "rules": [r for _i, _s, r in st.rule_irs],
    }
    st.ir = _validate(st, data)


def _validate(st: CompileState, data: dict) -> Any:
    from pydantic import ValidationError

    from steerlang.plan import RecipeIR

    try:
        return RecipeIR.model_validate(data)
    except ValidationError as err:
        pydantic_errors(st, err, st.span_map)
        return None


def pydantic_errors(st: CompileState, err: Any, span_map: dict) -> None:
    """E401 for each problem pydantic found, at the span that produced the value (`span_map`:
    IR path -> span; the longest known prefix of the error's path wins)."""
    seen: set[tuple] = set()
    for e in err.errors():
        loc = tuple(e["loc"])
        # Union members repeat one problem per alternative; report the path once.
        key = tuple(x for x in loc if isinstance(x, int) or x in _IR_FIELDS)
        if key in seen:
            continue
        seen.add(key)
        span = None
        for n in range(len(loc), -1, -1):
            if loc[:n] in span_map:
                span = span_map[loc[:n]]
                break
        field_ = next((x for x in reversed(key) if isinstance(x, str)), "value")
        value = e.get("input")
        shown = st.text_of(span) or str(value)
        if field_ == "site":
            choices = SITE_KINDS
            guess = did_you_mean(str(value), choices)
            st.emit(
                "E401",
                f"invalid site `{shown}`",
                span,
                label="not a site",
                help=f"did you mean `{guess}`?" if guess else None,
                notes=["sites are " + ", ".join(f"`{c}`" for c in choices)],
                fix=Edit(span, guess) if guess and span else None,
            )
        elif field_ == "tokens":
            choices = ("all", "cls", "patches")
            guess = did_you_mean(str(value), choices)
            st.emit(
                "E401",
                f"invalid token scope `{shown}`",
                span,
                label="not a token scope",
                help=f"did you mean `{guess}`?" if guess else None,
                notes=["token scopes are `all`, `cls`, `patches` or a list such as `[0, 3]`"],
                fix=Edit(span, guess) if guess and span else None,
            )
        else:
            msg = str(e.get("msg", "invalid value"))
            msg = msg[0].lower() + msg[1:] if msg else "invalid value"
            st.emit(
                "E401",
                f"invalid `{field_}`: {msg.rstrip('.')}",
                span,
                label="rejected by the Recipe IR",
                notes=[f"IR field: {'.'.join(str(x) for x in loc)}"],
            )


def valid_site(st: CompileState, ident: ast.Ident) -> bool:
    """Validate a site name through the plan's own model (mapped to E401)."""
    from pydantic import ValidationError

    from steerlang.plan import SiteRef

    try:
        SiteRef(layer=0, site=ident.name)  # type: ignore[arg-type]
    except ValidationError as err:
        pydantic_errors(st, err, {(): ident.span, ("site",): ident.span})
        return False
    return True


_IR_FIELDS = {
    "rules",
    "scope",
    "site",
    "tokens",
    "layers",
    "action",
    "selector",
    "params",
    "concepts",
    "task",
    "settings",
    "saes",
    "value",
    "k",
    "by",
    "where",
    "ids",
}
